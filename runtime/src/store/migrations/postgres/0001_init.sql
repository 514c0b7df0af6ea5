-- driftless store, PostgreSQL, schema version 1: the SQLite schema versions 1 to 3 in one.
-- States are closed sets guarded by CHECK constraints; every write about an attempt is fenced
-- by its lease token in the WHERE clause (see postgres.rs). Times are milliseconds since the
-- Unix epoch. Names that are ordered or matched by prefix (kv keys, task names, node names) use
-- the "C" collation, so they sort by bytes as they do in SQLite, whatever the database's locale.

CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,                    -- blake3, hex
    bytes       BYTEA NOT NULL,
    size        BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- Admission reports, stored once per distinct report (every job of one component against one
-- catalog has the same report); `jobs.report_hash` names a job's report.
CREATE TABLE reports (
    hash    TEXT PRIMARY KEY,                        -- blake3 of the report JSON, hex
    report  TEXT NOT NULL
);

CREATE TABLE jobs (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- queue order, page cursor
    id              TEXT NOT NULL UNIQUE,
    component       TEXT NOT NULL REFERENCES blobs (hash),
    input           BYTEA NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
    attempts        INTEGER NOT NULL DEFAULT 0,      -- charged attempts (not interrupted ones)
    attempt_rows    INTEGER NOT NULL DEFAULT 0,      -- attempt rows so far: the last one's number
    limits          TEXT NOT NULL,                   -- JSON engine::Limits
    optional        TEXT NOT NULL,                   -- JSON list of extra optional imports
    report_hash     TEXT NOT NULL REFERENCES reports (hash),
    kv_scope        TEXT NOT NULL,
    task            TEXT COLLATE "C",                -- name@version for task jobs
    idempotency_key TEXT UNIQUE,
    run_after_ms    BIGINT NOT NULL,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    finished_ms     BIGINT,
    output          BYTEA,
    error           TEXT,                            -- JSON {code, message, retryable}
    progress        SMALLINT,
    progress_msg    TEXT,
    checkpoint      BYTEA,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    CHECK ((status IN ('succeeded', 'failed', 'cancelled')) = (finished_ms IS NOT NULL)),
    CHECK (status <> 'succeeded' OR output IS NOT NULL)
);
CREATE INDEX jobs_status ON jobs (status, seq);
-- Jobs pinned to a task version, for the delete check and per-version counts.
CREATE INDEX jobs_task ON jobs (task, status) WHERE task IS NOT NULL;

-- The claimable jobs: one row per job whose status is 'queued', kept by the same statements
-- that move a job into or out of the queue. Claims lock and delete a row here (FOR UPDATE SKIP
-- LOCKED on the head), then update the job. Locking rows of this small table, not of `jobs`,
-- means a claimer whose snapshot still shows a just-claimed job finds its row deleted and
-- moves on, instead of locking the running job's row until it commits and making that job's
-- agent wait to record its result.
CREATE TABLE queue (
    job_id        TEXT PRIMARY KEY,
    run_after_ms  BIGINT NOT NULL,
    seq           BIGINT NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
CREATE INDEX queue_order ON queue (run_after_ms, seq);

CREATE TABLE attempts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          TEXT NOT NULL REFERENCES jobs (id),
    number          INTEGER NOT NULL,
    agent           TEXT NOT NULL,
    lease_token     TEXT NOT NULL UNIQUE,
    lease_expires_ms BIGINT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'lost', 'interrupted', 'cancelled')),
    started_ms      BIGINT NOT NULL,
    finished_ms     BIGINT,
    outcome         TEXT,                            -- JSON engine::Outcome (output omitted)
    log             TEXT,
    CHECK ((state = 'running') = (finished_ms IS NULL)),
    UNIQUE (job_id, number)
);
CREATE INDEX attempts_running ON attempts (agent) WHERE state = 'running';
CREATE INDEX attempts_leases ON attempts (lease_expires_ms) WHERE state = 'running';

CREATE TABLE events (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id   TEXT NOT NULL REFERENCES jobs (id),
    attempt  INTEGER,
    at_ms    BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX events_job ON events (job_id, id);

CREATE TABLE kv (
    scope   TEXT NOT NULL,
    bucket  TEXT NOT NULL,
    key     TEXT COLLATE "C" NOT NULL,
    value   BYTEA NOT NULL,
    PRIMARY KEY (scope, bucket, key)
);

-- Agent identities (`<node>/<n>`). An identity is held by at most one live process: `holder`
-- names the process (host, pid and start time), and the hold lasts until `lease_expires_ms`
-- unless renewed. Taking an identity is a compare-and-set on `holder`.
CREATE TABLE agents (
    id               TEXT COLLATE "C" PRIMARY KEY,
    node             TEXT NOT NULL,
    started_ms       BIGINT NOT NULL,
    heartbeat_ms     BIGINT NOT NULL,
    holder           TEXT,
    lease_expires_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX agents_holder ON agents (holder) WHERE holder IS NOT NULL;

-- Deployed tasks. A task is a name with immutable, numbered versions, each pinning one stored
-- component; `current` moves only inside the transaction that records the version or the
-- rollback, with an audit row. `generation` grows with every change of any task's `current`;
-- nodes compare it with the generation their resolution cache was filled at.
CREATE TABLE task_versions (
    task        TEXT COLLATE "C" NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    component   TEXT NOT NULL REFERENCES blobs (hash),
    report      TEXT NOT NULL,                       -- JSON compat report at deploy
    created_ms  BIGINT NOT NULL,
    deployed_by TEXT NOT NULL,
    deleted_ms  BIGINT,                              -- unregistered (numbers are never reused)
    PRIMARY KEY (task, version)
);
CREATE INDEX task_versions_component ON task_versions (task, component);

CREATE TABLE tasks (
    name            TEXT COLLATE "C" PRIMARY KEY,
    current_version INTEGER NOT NULL,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    FOREIGN KEY (name, current_version) REFERENCES task_versions (task, version)
        DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE task_audit (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task        TEXT COLLATE "C" NOT NULL,
    at_ms       BIGINT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('deploy', 'rollback', 'delete-version')),
    actor       TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    old_version INTEGER,
    new_version INTEGER
);
CREATE INDEX task_audit_task ON task_audit (task, id);

-- One row: the generation of task resolutions. Its row lock also serialises every change of
-- tasks across nodes (deploy, rollback, delete-version).
CREATE TABLE task_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO task_generation (id, generation) VALUES (1, 0);

-- What each node resolves each task's `current` to, as it last reported.
CREATE TABLE task_resolutions (
    node        TEXT COLLATE "C" NOT NULL,
    task        TEXT COLLATE "C" NOT NULL,
    version     INTEGER NOT NULL,
    generation  BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    PRIMARY KEY (node, task)
);
