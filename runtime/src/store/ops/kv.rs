//! The `driftless:kv` data. Keys sort by bytes (PostgreSQL: `COLLATE "C"`), as in SQLite.
//!
//! An attempt reads committed values with their versions and buffers its writes; when it
//! succeeds, [`changed`] checks that nothing it read has changed since, and [`apply`] writes
//! its effects in the transaction that records its success. A key's version grows with every
//! committed write; a deleted key keeps its row (value `NULL`), so versions never go back.

use crate::store::sql::{Sql, params};
use crate::store::*;

/// The value under (scope, bucket, key), with its version (0: never written).
pub(crate) async fn read(
    s: &mut impl Sql,
    scope: &str,
    bucket: &str,
    key: &str,
) -> StoreResult<KvValue> {
    match s
        .row(
            "SELECT value, version FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3",
            params![scope, bucket, key],
        )
        .await?
    {
        Some(r) => Ok(KvValue {
            value: r.get("value")?,
            version: r.get("version")?,
        }),
        None => Ok(KvValue::default()),
    }
}

/// The keys present under a prefix, with their versions, in byte order (`key >= prefix` lets
/// the primary key find the range).
pub(crate) async fn keys(
    s: &mut impl Sql,
    scope: &str,
    bucket: &str,
    prefix: &str,
) -> StoreResult<Vec<(String, u64)>> {
    s.rows(
        "SELECT key, version FROM kv WHERE scope = $1 AND bucket = $2 AND key >= $3 AND substr(key, 1, length($3)) = $3 AND value IS NOT NULL ORDER BY key",
        params![scope, bucket, prefix],
    )
    .await?
    .iter()
    .map(|r| Ok((r.get("key")?, r.get("version")?)))
    .collect()
}

/// What of an attempt's reads changed since it read them (`bucket/key` or `bucket/prefix*`),
/// in the order it read them; empty when its writes may commit.
pub(crate) async fn changed(s: &mut impl Sql, fx: &KvEffects) -> StoreResult<Vec<String>> {
    let mut changed = Vec::new();
    for read in &fx.reads {
        match read {
            KvObserved::Key {
                bucket,
                key,
                version,
            } => {
                if read_version(s, &fx.scope, bucket, key).await? != *version {
                    changed.push(format!("{bucket}/{key}"));
                }
            }
            KvObserved::Keys {
                bucket,
                prefix,
                seen,
            } => {
                if keys(s, &fx.scope, bucket, prefix).await? != *seen {
                    changed.push(format!("{bucket}/{prefix}*"));
                }
            }
        }
    }
    changed.dedup();
    Ok(changed)
}

async fn read_version(s: &mut impl Sql, scope: &str, bucket: &str, key: &str) -> StoreResult<u64> {
    Ok(s.row(
        "SELECT version FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3",
        params![scope, bucket, key],
    )
    .await?
    .map(|r| r.get("version"))
    .transpose()?
    .unwrap_or(0))
}

/// Write an attempt's effects: each key's new value (or its deletion), one version up.
pub(crate) async fn apply(s: &mut impl Sql, fx: &KvEffects) -> StoreResult<()> {
    for w in &fx.writes {
        s.exec(
            "INSERT INTO kv (scope, bucket, key, value, version) VALUES ($1, $2, $3, $4, 1)
             ON CONFLICT (scope, bucket, key) DO UPDATE SET value = excluded.value, version = kv.version + 1",
            params![&fx.scope, &w.bucket, &w.key, w.value.clone()],
        )
        .await?;
    }
    Ok(())
}
