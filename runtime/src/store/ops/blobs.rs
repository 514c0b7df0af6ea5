//! Components, stored once per blake3 hash.

use crate::store::sql::{Sql, params};
use crate::store::*;

/// Whether a component is stored.
pub(crate) async fn has(s: &mut impl Sql, hash: &str) -> StoreResult<bool> {
    Ok(
        s.row("SELECT 1 AS one FROM blobs WHERE hash = $1", params![hash])
            .await?
            .is_some(),
    )
}

/// Store a component unless stored; true when the bytes were new.
pub(crate) async fn put(s: &mut impl Sql, hash: &str, bytes: &[u8], now: i64) -> StoreResult<bool> {
    let n = s
        .exec(
            "INSERT INTO blobs (hash, bytes, size, created_ms) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
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
