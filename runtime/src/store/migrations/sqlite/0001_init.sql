-- driftless store, SQLite, schema version 1.
-- States are closed sets guarded by CHECK constraints; every write about an attempt is fenced
-- by its lease token in the WHERE clause (see sqlite.rs).

CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,              -- blake3, hex
    bytes       BLOB NOT NULL,
    size        INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE jobs (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,   -- queue order and pagination cursor
    id              TEXT NOT NULL UNIQUE,
    component       TEXT NOT NULL REFERENCES blobs(hash),
    input           BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
    attempts        INTEGER NOT NULL DEFAULT 0,
    limits          TEXT NOT NULL,                       -- JSON engine::Limits
    optional        TEXT NOT NULL,                       -- JSON list of extra optional imports
    report          TEXT NOT NULL,                       -- JSON compat report at admission
    kv_scope        TEXT NOT NULL,
    task            TEXT,
    idempotency_key TEXT UNIQUE,
    run_after_ms    INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    finished_ms     INTEGER,
    output          BLOB,
    error           TEXT,                                -- JSON {code, message, retryable, reason?}
    progress        INTEGER,
    progress_msg    TEXT,
    checkpoint      BLOB,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    CHECK ((status IN ('succeeded', 'failed', 'cancelled')) = (finished_ms IS NOT NULL)),
    CHECK (status <> 'succeeded' OR output IS NOT NULL)
);
CREATE INDEX jobs_queue ON jobs (run_after_ms, seq) WHERE status = 'queued';
CREATE INDEX jobs_status ON jobs (status, seq);

CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          TEXT NOT NULL REFERENCES jobs(id),
    number          INTEGER NOT NULL,
    agent           TEXT NOT NULL,
    lease_token     TEXT NOT NULL UNIQUE,
    lease_expires_ms INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'lost', 'interrupted', 'cancelled')),
    started_ms      INTEGER NOT NULL,
    finished_ms     INTEGER,
    outcome         TEXT,                                -- JSON engine::Outcome (output omitted)
    log             TEXT,
    CHECK ((state = 'running') = (finished_ms IS NULL)),
    UNIQUE (job_id, number)
);
CREATE INDEX attempts_running ON attempts (agent) WHERE state = 'running';
CREATE INDEX attempts_leases ON attempts (lease_expires_ms) WHERE state = 'running';

CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id   TEXT NOT NULL REFERENCES jobs(id),
    attempt  INTEGER,
    at_ms    INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX events_job ON events (job_id, id);

CREATE TABLE kv (
    scope   TEXT NOT NULL,
    bucket  TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   BLOB NOT NULL,
    PRIMARY KEY (scope, bucket, key)
) WITHOUT ROWID;

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,                      -- <node>/<n>
    node          TEXT NOT NULL,
    started_ms    INTEGER NOT NULL,
    heartbeat_ms  INTEGER NOT NULL
);
