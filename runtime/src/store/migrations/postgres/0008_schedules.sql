-- driftless store, PostgreSQL, schema version 8: cron schedules (SQLite version 10).
--
-- A schedule names a task, a cron pattern read in a time zone, and the input of the jobs it
-- makes. `next_tick_ms` is its next tick: every node's schedule loop fires a due schedule by
-- moving it on with a compare-and-set (on `revision` and `next_tick_ms`) in the transaction
-- that stores the tick's job, so one node fires each tick (a concurrent firing waits for the
-- row, then finds it moved on and changes nothing). `revision` grows with every put.
CREATE TABLE schedules (
    name          TEXT COLLATE "C" PRIMARY KEY,
    task          TEXT COLLATE "C" NOT NULL,
    cron          TEXT NOT NULL,
    timezone      TEXT NOT NULL,
    input         BYTEA NOT NULL,                     -- the jobs' input, JSON
    created_ms    BIGINT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    revision      BIGINT NOT NULL,
    next_tick_ms  BIGINT NOT NULL,
    last_tick_ms  BIGINT,                             -- the tick that fired last
    last_job      TEXT,                               -- the job it made
    fired         BIGINT NOT NULL DEFAULT 0,          -- ticks fired since it was created
    skipped       BIGINT NOT NULL DEFAULT 0           -- missed ticks skipped since it was created
);
CREATE INDEX schedules_next ON schedules (next_tick_ms);

-- The schedule and tick that made a job: one job per schedule and tick, whatever fires it.
ALTER TABLE jobs ADD COLUMN schedule_name TEXT COLLATE "C", ADD COLUMN schedule_tick_ms BIGINT;
CREATE UNIQUE INDEX jobs_schedule_tick ON jobs (schedule_name, schedule_tick_ms) WHERE schedule_name IS NOT NULL;
