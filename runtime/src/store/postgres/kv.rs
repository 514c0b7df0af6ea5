//! The `driftless:kv` data in PostgreSQL. Keys sort by bytes (`COLLATE "C"`), as in SQLite.

use super::{GenericClient, col, exec, opt, pg, rows};
use crate::host::KvBackendError;
use crate::store::*;
use deadpool_postgres::Object;

const KV_UPSERT: &str = "INSERT INTO kv (scope, bucket, key, value) VALUES ($1, $2, $3, $4)
     ON CONFLICT (scope, bucket, key) DO UPDATE SET value = EXCLUDED.value";

/// The value under (scope, bucket, key).
pub(super) async fn get(
    c: &impl GenericClient,
    scope: &str,
    bucket: &str,
    key: &str,
) -> StoreResult<Option<Vec<u8>>> {
    opt(
        c,
        "SELECT value FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3",
        &[&scope, &bucket, &key],
    )
    .await?
    .map(|r| col(&r, 0))
    .transpose()
}

/// Replace the value.
pub(super) async fn set(
    c: &impl GenericClient,
    scope: &str,
    bucket: &str,
    key: &str,
    value: &[u8],
) -> StoreResult<()> {
    exec(c, KV_UPSERT, &[&scope, &bucket, &key, &value]).await?;
    Ok(())
}

/// Remove; true if it existed.
pub(super) async fn delete(
    c: &impl GenericClient,
    scope: &str,
    bucket: &str,
    key: &str,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "DELETE FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3",
        &[&scope, &bucket, &key],
    )
    .await?;
    Ok(n == 1)
}

/// Keys with a prefix, in byte order.
pub(super) async fn list(
    c: &impl GenericClient,
    scope: &str,
    bucket: &str,
    prefix: &str,
) -> StoreResult<Vec<String>> {
    // `key` sorts by bytes (COLLATE "C"); `key >= $3` lets the primary key find the range.
    rows(
        c,
        "SELECT key FROM kv WHERE scope = $1 AND bucket = $2 AND key >= $3 AND starts_with(key, $3) ORDER BY key",
        &[&scope, &bucket, &prefix],
    )
    .await?
    .iter()
    .map(|r| col(r, 0))
    .collect()
}

/// Add to a decimal integer (missing = 0) under the row's lock; a key created meanwhile by
/// another caller is read again. A value that is not a number, or an overflow, is the inner
/// error, and nothing is written.
pub(super) async fn increment(
    c: &mut Object,
    scope: &str,
    bucket: &str,
    key: &str,
    delta: i64,
) -> StoreResult<Result<i64, KvBackendError>> {
    loop {
        let tx = c.transaction().await.map_err(pg)?;
        let current: Option<Vec<u8>> = opt(
            &tx,
            "SELECT value FROM kv WHERE scope = $1 AND bucket = $2 AND key = $3 FOR UPDATE",
            &[&scope, &bucket, &key],
        )
        .await?
        .map(|r| col(&r, 0))
        .transpose()?;
        // Not a number, or overflow: nothing is written (dropping `tx` rolls back).
        let next = match crate::host::services::add_to_counter(key, current.as_deref(), delta) {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        let value = next.to_string().into_bytes();
        if current.is_some() {
            exec(
                &tx,
                "UPDATE kv SET value = $4 WHERE scope = $1 AND bucket = $2 AND key = $3",
                &[&scope, &bucket, &key, &value],
            )
            .await?;
        } else {
            let n = exec(
                &tx,
                "INSERT INTO kv (scope, bucket, key, value) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&scope, &bucket, &key, &value],
            )
            .await?;
            if n == 0 {
                // Another caller created the key meanwhile: read it again, under lock.
                continue;
            }
        }
        tx.commit().await.map_err(pg)?;
        return Ok(Ok(next));
    }
}
