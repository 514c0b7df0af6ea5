-- driftless store, SQLite, schema version 2: deployed tasks.
-- A task is a name with immutable, numbered versions, each pinning one stored component;
-- `current` moves only inside the transaction that records the version or the rollback, with
-- an audit row. `generation` grows with every change of any task's `current`; nodes compare it
-- with the generation their resolution cache was filled at.

CREATE TABLE tasks (
    name            TEXT PRIMARY KEY,
    current_version INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    FOREIGN KEY (name, current_version) REFERENCES task_versions (task, version)
        DEFERRABLE INITIALLY DEFERRED
);

CREATE TABLE task_versions (
    task        TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    component   TEXT NOT NULL REFERENCES blobs(hash),
    report      TEXT NOT NULL,                       -- JSON compat report at deploy
    created_ms  INTEGER NOT NULL,
    deployed_by TEXT NOT NULL,
    deleted_ms  INTEGER,                             -- unregistered (numbers are never reused)
    PRIMARY KEY (task, version)
);
CREATE INDEX task_versions_component ON task_versions (task, component);

CREATE TABLE task_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task        TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('deploy', 'rollback', 'delete-version')),
    actor       TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    old_version INTEGER,
    new_version INTEGER
);
CREATE INDEX task_audit_task ON task_audit (task, id);

-- One row: the generation of task resolutions.
CREATE TABLE task_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
);
INSERT INTO task_generation (id, generation) VALUES (1, 0);

-- What each node resolves each task's `current` to, as it last reported.
CREATE TABLE task_resolutions (
    node        TEXT NOT NULL,
    task        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    PRIMARY KEY (node, task)
);

-- Jobs pinned to a task version, for the delete check and per-version counts.
CREATE INDEX jobs_task ON jobs (task, status) WHERE task IS NOT NULL;

-- Admission reports, stored once per distinct report (every job of one component against one
-- catalog has the same report) instead of inline in each job row. From schema 2 on,
-- `jobs.report` is empty and `jobs.report_hash` names the report.
CREATE TABLE reports (
    hash    TEXT PRIMARY KEY,                    -- blake3 of the report JSON, hex
    report  TEXT NOT NULL
);
ALTER TABLE jobs ADD COLUMN report_hash TEXT REFERENCES reports(hash);
