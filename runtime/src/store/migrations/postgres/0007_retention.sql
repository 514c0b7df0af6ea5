-- driftless store, PostgreSQL, schema version 7: retention (SQLite version 9).
--
-- Retention: finished jobs are deleted some time after they end (--retention), and then the
-- components no job and no task version references, once unused for as long.
-- A component's last use: stored, or uploaded again (a job's insert references it, and a
-- referenced component is never deleted).
ALTER TABLE blobs ADD COLUMN used_ms BIGINT NOT NULL DEFAULT 0;
UPDATE blobs SET used_ms = created_ms;
CREATE INDEX blobs_used ON blobs (used_ms);
-- The oldest finished jobs first (finished_ms is set exactly when a job is finished).
CREATE INDEX jobs_finished ON jobs (finished_ms) WHERE finished_ms IS NOT NULL;
-- Whether a component is still referenced, by jobs and by task versions.
CREATE INDEX jobs_component ON jobs (component);
CREATE INDEX task_versions_blob ON task_versions (component);
