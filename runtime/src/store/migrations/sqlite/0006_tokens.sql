-- driftless store, SQLite, schema version 6: API tokens (PostgreSQL version 4).
--
-- A token is a name, the scopes it grants and the blake3 hash of its secret; the secret itself
-- is shown once, when the token is made, and never stored. Revoking a token deletes its row.
CREATE TABLE tokens (
    name          TEXT PRIMARY KEY,
    hash          TEXT NOT NULL UNIQUE,                -- blake3 of the secret, hex
    scopes        TEXT NOT NULL,                       -- space-separated: read submit deploy admin
    created_ms    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,                       -- the name of the token that made it
    last_used_ms  INTEGER                              -- recorded at most once a minute per node
);
