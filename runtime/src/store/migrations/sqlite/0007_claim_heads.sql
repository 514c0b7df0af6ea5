-- driftless store, SQLite, schema version 7: claims find the head of each runnable class
-- (PostgreSQL version 5).
--
-- A claim looks at the oldest runnable job of each class the node can run (and of jobs
-- without a class, as ''), one index probe each, and takes the oldest of those heads: a
-- backlog of jobs no live node can run never stands in a claim's way, however long it is.
CREATE INDEX queue_heads ON queue (COALESCE(class, ''), run_after_ms, seq);
DROP INDEX queue_order;
