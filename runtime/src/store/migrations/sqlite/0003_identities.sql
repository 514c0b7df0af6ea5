-- driftless store, SQLite, schema version 3: exclusive agent identities.
-- An identity (`<node>/<n>`) is held by at most one live process: `holder` names the process
-- (host, pid and start time), and the hold lasts until `lease_expires_ms` unless renewed.
-- Taking an identity is a compare-and-set on `holder`.

ALTER TABLE agents ADD COLUMN holder TEXT;
ALTER TABLE agents ADD COLUMN lease_expires_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX agents_holder ON agents (holder) WHERE holder IS NOT NULL;
