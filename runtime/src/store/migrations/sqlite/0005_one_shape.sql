-- driftless store, SQLite, schema version 5: the same shape as PostgreSQL's (version 3).
--
-- The claimable jobs: one row per job whose status is 'queued', kept by the same statements
-- that move a job into or out of the queue (insert, claim, retry, requeue, loss, cancel).
-- PostgreSQL needs it so claimers lock rows of a small table instead of `jobs`; SQLite has it
-- too so both backends run the same operations on the same tables.
CREATE TABLE queue (
    job_id        TEXT PRIMARY KEY,
    run_after_ms  INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    class         TEXT
);
CREATE INDEX queue_order ON queue (run_after_ms, seq);
INSERT INTO queue (job_id, run_after_ms, seq, class)
    SELECT id, run_after_ms, seq, class FROM jobs WHERE status = 'queued';
DROP INDEX jobs_queue;

-- Attempt rows so far (the last one's number): a claim numbers its attempt from it.
ALTER TABLE jobs ADD COLUMN attempt_rows INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET attempt_rows = (SELECT COALESCE(MAX(number), 0) FROM attempts a WHERE a.job_id = jobs.id);

-- A task job's pin as two columns instead of `name@version` (task names have no `@`).
ALTER TABLE jobs ADD COLUMN task_name TEXT;
ALTER TABLE jobs ADD COLUMN task_version INTEGER;
UPDATE jobs SET task_name = substr(task, 1, instr(task, '@') - 1),
                task_version = CAST(substr(task, instr(task, '@') + 1) AS INTEGER)
    WHERE task IS NOT NULL;
DROP INDEX jobs_task;
ALTER TABLE jobs DROP COLUMN task;
CREATE INDEX jobs_task ON jobs (task_name, task_version, status) WHERE task_name IS NOT NULL;

-- Reports live in `reports` only; jobs from schema 1 keep theirs under a synthetic hash.
INSERT OR IGNORE INTO reports (hash, report)
    SELECT 'schema-1:' || id, report FROM jobs WHERE report_hash IS NULL AND report <> '';
UPDATE jobs SET report_hash = 'schema-1:' || id WHERE report_hash IS NULL AND report <> '';
ALTER TABLE jobs DROP COLUMN report;

-- kv keys carry a version that grows with every committed write, and a deleted key keeps its
-- row (value NULL) so its version never goes back: an attempt's kv reads are checked against
-- these versions when its writes commit with its result.
CREATE TABLE kv_versioned (
    scope   TEXT NOT NULL,
    bucket  TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   BLOB,                                   -- NULL: deleted
    version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (scope, bucket, key)
) WITHOUT ROWID;
INSERT INTO kv_versioned (scope, bucket, key, value, version) SELECT scope, bucket, key, value, 1 FROM kv;
DROP TABLE kv;
ALTER TABLE kv_versioned RENAME TO kv;

-- How many times a job's attempt was run again because its kv reads changed before it
-- committed (those re-runs are not charged, up to a bound).
ALTER TABLE jobs ADD COLUMN conflicts INTEGER NOT NULL DEFAULT 0;

-- What makes a submission one request (a hash of its component, input and options): a reused
-- idempotency key must come with the same request.
ALTER TABLE jobs ADD COLUMN request_hash TEXT;

-- Every take of an agent identity gets a fresh hold token (`agents.hold`, NULL while free).
-- An attempt records the hold it was claimed under and the process that claimed it; a claim,
-- a heartbeat or a result write under a hold that is no longer the identity's is refused, so
-- a process that lost an identity can neither claim with it nor write for its attempts.
ALTER TABLE agents ADD COLUMN hold TEXT;
ALTER TABLE attempts ADD COLUMN hold TEXT;
ALTER TABLE attempts ADD COLUMN holder TEXT;
