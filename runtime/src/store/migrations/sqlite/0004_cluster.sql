-- driftless store, SQLite, schema version 4: the node registry and catalog-aware claiming.
--
-- A job's compatibility class names what it needs from a host (its imports with their
-- functions, and its optional-import patterns); jobs with equal requirements share a class.
-- Each node judges a class against its own catalog once and claims only jobs of the classes
-- it satisfies. Jobs stored before this schema have no class: any node may claim them (the
-- check at instantiation still applies).

CREATE TABLE requirement_classes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,     -- order of first appearance
    class       TEXT NOT NULL UNIQUE,                  -- blake3 of spec, hex
    spec        TEXT NOT NULL,                         -- JSON {imports, optional}
    created_ms  INTEGER NOT NULL
);

ALTER TABLE jobs ADD COLUMN class TEXT REFERENCES requirement_classes(class);

-- Node processes: one row per process (`host:pid:start`), since two processes of one node name
-- run side by side during a hand-over.
CREATE TABLE nodes (
    process       TEXT PRIMARY KEY,
    node          TEXT NOT NULL,
    address       TEXT NOT NULL,
    version       TEXT NOT NULL,
    catalog       TEXT NOT NULL,                       -- JSON list of modules with functions
    agents        INTEGER NOT NULL,
    started_ms    INTEGER NOT NULL,
    heartbeat_ms  INTEGER NOT NULL,
    draining      INTEGER NOT NULL DEFAULT 0,
    inflight      INTEGER NOT NULL DEFAULT 0,
    gone_ms       INTEGER
);
CREATE INDEX nodes_live ON nodes (heartbeat_ms) WHERE gone_ms IS NULL;
