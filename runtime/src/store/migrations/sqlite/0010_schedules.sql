-- driftless store, SQLite, schema version 10: cron schedules (PostgreSQL version 8).
--
-- A schedule names a task, a cron pattern read in a time zone, and the input of the jobs it
-- makes. `next_tick_ms` is its next tick: every node's schedule loop fires a due schedule by
-- moving it on with a compare-and-set (on `revision` and `next_tick_ms`) in the transaction
-- that stores the tick's job, so one node fires each tick. `revision` grows with every put.
CREATE TABLE schedules (
    name          TEXT PRIMARY KEY,
    task          TEXT NOT NULL,
    cron          TEXT NOT NULL,
    timezone      TEXT NOT NULL,
    input         BLOB NOT NULL,                      -- the jobs' input, JSON
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    revision      INTEGER NOT NULL,
    next_tick_ms  INTEGER NOT NULL,
    last_tick_ms  INTEGER,                            -- the tick that fired last
    last_job      TEXT,                               -- the job it made
    fired         INTEGER NOT NULL DEFAULT 0,         -- ticks fired since it was created
    skipped       INTEGER NOT NULL DEFAULT 0          -- missed ticks skipped since it was created
);
CREATE INDEX schedules_next ON schedules (next_tick_ms);

-- The schedule and tick that made a job: one job per schedule and tick, whatever fires it.
ALTER TABLE jobs ADD COLUMN schedule_name TEXT;
ALTER TABLE jobs ADD COLUMN schedule_tick_ms INTEGER;
CREATE UNIQUE INDEX jobs_schedule_tick ON jobs (schedule_name, schedule_tick_ms) WHERE schedule_name IS NOT NULL;
