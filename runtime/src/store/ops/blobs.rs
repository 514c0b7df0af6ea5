//! Components, stored once per blake3 hash, with the time each was last used (stored or
//! uploaded again), which retention goes by.

use crate::store::sql::{Sql, params};
use crate::store::*;

/// When a stored component was last used (`None`: not stored).
pub(crate) async fn used(s: &mut impl Sql, hash: &str) -> StoreResult<Option<i64>> {
    s.row("SELECT used_ms FROM blobs WHERE hash = $1", params![hash])
        .await?
        .map(|r| r.get("used_ms"))
        .transpose()
}

/// Record a use of a stored component; false when it is not stored (retention deleted it).
pub(crate) async fn touch(s: &mut impl Sql, hash: &str, now: i64) -> StoreResult<bool> {
    let n = s
        .exec(
            "UPDATE blobs SET used_ms = $2 WHERE hash = $1 AND used_ms < $2",
            params![hash, now],
        )
        .await?;
    Ok(n == 1 || used(s, hash).await?.is_some())
}

/// Store a component unless stored; true when the bytes were new.
pub(crate) async fn put(s: &mut impl Sql, hash: &str, bytes: &[u8], now: i64) -> StoreResult<bool> {
    let n = s
        .exec(
            "INSERT INTO blobs (hash, bytes, size, created_ms, used_ms) VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING",
            params![hash, bytes, bytes.len() as i64, now],
        )
        .await?;
    Ok(n == 1)
}

/// A stored component's bytes.
pub(crate) async fn get(s: &mut impl Sql, hash: &str) -> StoreResult<Option<Vec<u8>>> {
    s.row("SELECT bytes FROM blobs WHERE hash = $1", params![hash])
        .await?
        .map(|r| r.get("bytes"))
        .transpose()
}
