-- driftless store, SQLite, schema version 8: priorities, delayed jobs and concurrency keys
-- (PostgreSQL version 6).
--
-- A job has a priority (higher runs first), may wait for a time before it runs, and may share
-- a concurrency key with other jobs (at most its limit of them hold a slot at once; a job
-- holds one while it is ready or running).
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN concurrency_key TEXT;
ALTER TABLE jobs ADD COLUMN concurrency_limit INTEGER;
CREATE INDEX jobs_running_key ON jobs (concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;

-- A queue row is `ready` (claims take it), `delayed` (until its run_after_ms: a delayed job or
-- a retry's backoff; the node's timer loop makes it ready, or parked, when its time comes) or
-- `parked` (due, waiting for a slot of its concurrency key). Claims look at ready rows only,
-- so neither delayed nor parked jobs, however many, stand in a claim's way.
ALTER TABLE queue ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'delayed', 'parked'));
ALTER TABLE queue ADD COLUMN concurrency_key TEXT;
UPDATE queue SET state = 'delayed'
    WHERE run_after_ms > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
DROP INDEX queue_heads;
CREATE INDEX queue_heads ON queue (COALESCE(class, ''), priority DESC, run_after_ms, seq) WHERE state = 'ready';
CREATE INDEX queue_timers ON queue (run_after_ms) WHERE state = 'delayed';
CREATE INDEX queue_keys ON queue (concurrency_key, state, priority DESC, run_after_ms, seq) WHERE concurrency_key IS NOT NULL;

-- One row per concurrency key, written by every change that settles the key (see
-- ops/turns.rs): the write serializes those changes, so each counts what the one before it
-- committed (PostgreSQL: a READ COMMITTED transaction waits for the row; a SERIALIZABLE one
-- whose snapshot is older than the row's last write is refused and run again).
CREATE TABLE concurrency_keys (
    key      TEXT PRIMARY KEY,
    settles  BIGINT NOT NULL
);

-- A task version may limit how many of its task's jobs run at once: a job of the task without
-- a concurrency key of its own gets the key `task:<name>` with this limit when it is submitted.
ALTER TABLE task_versions ADD COLUMN max_concurrency INTEGER;

-- A drain or resume asked of a node through any node's API: the node's next heartbeat reads
-- it and acts on it (NULL once the node's draining flag matches it).
ALTER TABLE nodes ADD COLUMN drain_request BOOLEAN;
