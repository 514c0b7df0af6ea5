//! API tokens: the hash of each secret with its name and scopes, made, listed, used and
//! revoked (a revoked token's row is deleted).

use crate::store::sql::{Record, Sql, params};
use crate::store::*;

/// Store a new token; a name already taken is a conflict and changes nothing.
pub(crate) async fn create(s: &mut impl Sql, token: &TokenRecord) -> StoreResult<()> {
    let n = s
        .exec(
            "INSERT INTO tokens (name, hash, scopes, created_ms, created_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            params![
                &token.name,
                &token.hash,
                token.scopes.join(" "),
                token.created_ms,
                &token.created_by
            ],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "a token named {} already exists; choose another name, or revoke it first (DELETE /v1/admin/tokens/{})",
            token.name, token.name
        )));
    }
    Ok(())
}

/// Every token, by name.
pub(crate) async fn list(s: &mut impl Sql) -> StoreResult<Vec<TokenRecord>> {
    s.rows(
        "SELECT name, hash, scopes, created_ms, created_by, last_used_ms FROM tokens ORDER BY name",
        params![],
    )
    .await?
    .iter()
    .map(token)
    .collect()
}

/// Delete a token; whether it existed.
pub(crate) async fn revoke(s: &mut impl Sql, name: &str) -> StoreResult<bool> {
    Ok(s.exec("DELETE FROM tokens WHERE name = $1", params![name])
        .await?
        == 1)
}

/// Record that a token was used at `now`.
pub(crate) async fn touch(s: &mut impl Sql, name: &str, now: i64) -> StoreResult<()> {
    s.exec(
        "UPDATE tokens SET last_used_ms = $2 WHERE name = $1",
        params![name, now],
    )
    .await?;
    Ok(())
}

fn token(r: &Record) -> StoreResult<TokenRecord> {
    Ok(TokenRecord {
        name: r.get("name")?,
        hash: r.get("hash")?,
        scopes: r
            .get::<String>("scopes")?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        created_ms: r.get("created_ms")?,
        created_by: r.get("created_by")?,
        last_used_ms: r.get("last_used_ms")?,
    })
}
