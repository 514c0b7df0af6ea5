//! The `driftless:kv` data. Keys sort by bytes (PostgreSQL: `COLLATE "C"`), as in SQLite.

use crate::host::KvBackendError;
use crate::store::sql::{Dialect, Sql, params};
use crate::store::*;

/// The value under (scope, bucket, key).
pub(crate) async fn get(
    s: &mut impl Sql,
    scope: &str,
    bucket: &str,
    key: &str,
) -> StoreResult<Option<Vec<u8>>> {
    s.row(
        "SELECT value FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3",
        params![scope, bucket, key],
    )
    .await?
    .map(|r| r.get("value"))
    .transpose()
}

/// Replace the value.
pub(crate) async fn set(
    s: &mut impl Sql,
    scope: &str,
    bucket: &str,
    key: &str,
    value: &[u8],
) -> StoreResult<()> {
    s.exec(
        "INSERT INTO kv (scope, bucket, key, value) VALUES ($1, $2, $3, $4)
         ON CONFLICT (scope, bucket, key) DO UPDATE SET value = excluded.value",
        params![scope, bucket, key, value],
    )
    .await?;
    Ok(())
}

/// Remove; true if it existed.
pub(crate) async fn delete(
    s: &mut impl Sql,
    scope: &str,
    bucket: &str,
    key: &str,
) -> StoreResult<bool> {
    let n = s
        .exec(
            "DELETE FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3",
            params![scope, bucket, key],
        )
        .await?;
    Ok(n == 1)
}

/// Keys with a prefix, in byte order (`key >= prefix` lets the primary key find the range).
pub(crate) async fn list(
    s: &mut impl Sql,
    scope: &str,
    bucket: &str,
    prefix: &str,
) -> StoreResult<Vec<String>> {
    s.rows(
        "SELECT key FROM kv WHERE scope = $1 AND bucket = $2 AND key >= $3 AND substr(key, 1, length($3)) = $3 ORDER BY key",
        params![scope, bucket, prefix],
    )
    .await?
    .iter()
    .map(|r| r.get("key"))
    .collect()
}

/// Add to a decimal integer (missing = 0) under the row's lock (PostgreSQL `FOR UPDATE`). A
/// value that is not a number, or an overflow, is the inner error and nothing is written.
/// `Ok(None)`: another caller created the key meanwhile; roll back and call again.
pub(crate) async fn increment(
    s: &mut impl Sql,
    (scope, bucket, key): (&str, &str, &str),
    delta: i64,
) -> StoreResult<Option<Result<i64, KvBackendError>>> {
    let sql = match s.dialect() {
        Dialect::Postgres => {
            "SELECT value FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3 FOR UPDATE"
        }
        Dialect::Sqlite => "SELECT value FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3",
    };
    let current: Option<Vec<u8>> = s
        .row(sql, params![scope, bucket, key])
        .await?
        .map(|r| r.get("value"))
        .transpose()?;
    let next = match crate::host::services::add_to_counter(key, current.as_deref(), delta) {
        Ok(n) => n,
        Err(e) => return Ok(Some(Err(e))),
    };
    let value = next.to_string().into_bytes();
    if current.is_some() {
        s.exec(
            "UPDATE kv SET value = $4 WHERE scope = $1 AND bucket = $2 AND key = $3",
            params![scope, bucket, key, value],
        )
        .await?;
    } else if s
        .exec(
            "INSERT INTO kv (scope, bucket, key, value) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            params![scope, bucket, key, value],
        )
        .await?
        == 0
    {
        return Ok(None);
    }
    Ok(Some(Ok(next)))
}
