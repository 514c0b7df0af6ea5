-- driftless store, PostgreSQL, schema version 4: API tokens (SQLite version 6).
--
-- A token is a name, the scopes it grants and the blake3 hash of its secret; the secret itself
-- is shown once, when the token is made, and never stored. Revoking a token deletes its row.
-- Every node of a cluster reads this table, so a token made on one node works on all of them.
CREATE TABLE tokens (
    name          TEXT COLLATE "C" PRIMARY KEY,
    hash          TEXT NOT NULL UNIQUE,                -- blake3 of the secret, hex
    scopes        TEXT NOT NULL,                       -- space-separated: read submit deploy admin
    created_ms    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,                       -- the name of the token that made it
    last_used_ms  BIGINT                               -- recorded at most once a minute per node
);
