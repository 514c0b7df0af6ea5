//! The schema of each backend, one SQL file per version under `migrations/<backend>/`, and the
//! one rule for applying them: a database lacking versions gets them in order, each in its own
//! transaction; a database from a newer driftless is refused, naming both versions.

use super::{StoreError, StoreResult};

/// SQLite's schema versions (the database's `PRAGMA user_version` counts those applied).
pub(crate) const SQLITE: &[&str] = &[
    include_str!("migrations/sqlite/0001_init.sql"),
    include_str!("migrations/sqlite/0002_tasks.sql"),
    include_str!("migrations/sqlite/0003_identities.sql"),
    include_str!("migrations/sqlite/0004_cluster.sql"),
    include_str!("migrations/sqlite/0005_one_shape.sql"),
    include_str!("migrations/sqlite/0006_tokens.sql"),
    include_str!("migrations/sqlite/0007_claim_heads.sql"),
    include_str!("migrations/sqlite/0008_scheduling.sql"),
    include_str!("migrations/sqlite/0009_retention.sql"),
    include_str!("migrations/sqlite/0010_schedules.sql"),
];

/// PostgreSQL's schema versions (`schema_migrations` records those applied).
pub(crate) const POSTGRES: &[&str] = &[
    include_str!("migrations/postgres/0001_init.sql"),
    include_str!("migrations/postgres/0002_cluster.sql"),
    include_str!("migrations/postgres/0003_one_shape.sql"),
    include_str!("migrations/postgres/0004_tokens.sql"),
    include_str!("migrations/postgres/0005_claim_heads.sql"),
    include_str!("migrations/postgres/0006_scheduling.sql"),
    include_str!("migrations/postgres/0007_retention.sql"),
    include_str!("migrations/postgres/0008_schedules.sql"),
];

/// The migrations a database at schema version `applied` lacks, numbered from 1; refuses a
/// database newer than `known`. `database` names it for the message.
pub(crate) fn pending<'a>(
    known: &'a [&'a str],
    applied: usize,
    database: &str,
) -> StoreResult<impl Iterator<Item = (usize, &'a str)>> {
    if applied > known.len() {
        return Err(StoreError::Backend(format!(
            "the database {database} has schema version {applied}, newer than this driftless knows (versions 1 to {}): upgrade driftless, or point driftless at another database (--store / --data-dir)",
            known.len()
        )));
    }
    Ok((1..).zip(known.iter().copied()).skip(applied))
}

/// A migration that failed: nothing of it was applied.
pub(crate) fn failed(version: usize, database: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!(
        "migration {version} failed on the database {database} (nothing of it was applied): {why}"
    ))
}
