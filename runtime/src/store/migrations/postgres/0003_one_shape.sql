-- driftless store, PostgreSQL, schema version 3: the same shape as SQLite's (version 5).
-- A task job's pin as two columns instead of `name@version` (task names have no `@`).
ALTER TABLE jobs ADD COLUMN task_name TEXT COLLATE "C", ADD COLUMN task_version INTEGER;
UPDATE jobs SET task_name = split_part(task, '@', 1), task_version = split_part(task, '@', 2)::integer
    WHERE task IS NOT NULL;
DROP INDEX jobs_task;
ALTER TABLE jobs DROP COLUMN task;
CREATE INDEX jobs_task ON jobs (task_name, task_version, status) WHERE task_name IS NOT NULL;

-- kv keys carry a version that grows with every committed write, and a deleted key keeps its
-- row (value NULL) so its version never goes back: an attempt's kv reads are checked against
-- these versions when its writes commit with its result.
ALTER TABLE kv ALTER COLUMN value DROP NOT NULL, ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

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
ALTER TABLE attempts ADD COLUMN hold TEXT, ADD COLUMN holder TEXT;
