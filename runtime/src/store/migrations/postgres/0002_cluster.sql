-- driftless store, PostgreSQL, schema version 2: the node registry and catalog-aware claiming
-- (SQLite schema version 4).
--
-- A job's compatibility class names what it needs from a host (its imports with their
-- functions, and its optional-import patterns); jobs with equal requirements share a class.
-- Each node judges a class against its own catalog once and claims only jobs of the classes
-- it satisfies. Jobs without a class may be claimed by any node.
--
-- Nodes catch up on classes by `seq` ("the classes after the last one I saw"), so a class must
-- never become visible after one with a higher `seq`. An identity column would not promise
-- that (numbers are taken at insert, not at commit); `seq` is instead assigned as MAX + 1
-- under a transaction-level advisory lock held until the insert commits (see postgres.rs).

CREATE TABLE requirement_classes (
    seq         BIGINT PRIMARY KEY,                  -- order of first appearance (commit order)
    class       TEXT NOT NULL UNIQUE,                -- blake3 of spec, hex
    spec        TEXT NOT NULL,                       -- JSON {imports, optional}
    created_ms  BIGINT NOT NULL
);

ALTER TABLE jobs ADD COLUMN class TEXT REFERENCES requirement_classes (class);
ALTER TABLE queue ADD COLUMN class TEXT;               -- the job's class, to claim by it

-- Node processes: one row per process (`host:pid:start`), since two processes of one node name
-- run side by side during a hand-over.
CREATE TABLE nodes (
    process       TEXT COLLATE "C" PRIMARY KEY,
    node          TEXT NOT NULL,
    address       TEXT NOT NULL,
    version       TEXT NOT NULL,
    catalog       TEXT NOT NULL,                     -- JSON list of modules with functions
    agents        INTEGER NOT NULL,
    started_ms    BIGINT NOT NULL,
    heartbeat_ms  BIGINT NOT NULL,
    draining      BOOLEAN NOT NULL DEFAULT FALSE,
    inflight      INTEGER NOT NULL DEFAULT 0,
    gone_ms       BIGINT
);
CREATE INDEX nodes_live ON nodes (heartbeat_ms) WHERE gone_ms IS NULL;
