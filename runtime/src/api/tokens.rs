//! `/v1/admin/tokens`: make, list and revoke API tokens. Only a hash of each secret is stored,
//! in the store every node of a cluster shares; the secret is in the answer that makes it,
//! once.

use super::AppState;
use super::error::{ApiError, Path};
use crate::store::{TokenRecord, now_ms};
use crate::tokens::{self, Caller, Scope};
use crate::wire::{ErrorCode, TokenCreated, TokenInfo, TokenList, TokenRevoked, TokenSpec};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, body::Bytes};

/// `POST /v1/admin/tokens`: a new token; 201 with its secret.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let spec: TokenSpec = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the token request is not valid ({e}); send {{\"name\": \"ci-deploy\", \"scopes\": [\"deploy\"]}} with scopes from read, submit, deploy, admin"
        ))
    })?;
    tokens::check_name(&spec.name).map_err(ApiError::bad_request)?;
    let mut scopes = spec.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(ApiError::bad_request(
            "a token needs at least one scope: read, submit, deploy or admin (admin grants every scope)",
        ));
    }
    let secret = tokens::new_secret();
    let record = TokenRecord {
        name: spec.name,
        hash: tokens::hash(&secret),
        scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
        created_ms: now_ms(),
        created_by: super::tasks::actor(&caller, &headers),
        last_used_ms: None,
    };
    state.node.store().create_token(record.clone()).await?;
    state.node.tokens().forget().await;
    tracing::info!(token = %record.name, scopes = ?scopes, by = %record.created_by, "token made");
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token: info(record),
            secret,
        }),
    ))
}

/// `GET /v1/admin/tokens`: every stored token, without secrets.
pub async fn list(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let tokens = state.node.store().list_tokens().await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(info).collect(),
    }))
}

/// `DELETE /v1/admin/tokens/{name}`: revoke a token; every node refuses it within about a
/// second ([`tokens::FRESH`]).
pub async fn revoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TokenRevoked>, ApiError> {
    if !state.node.store().revoke_token(&name).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "there is no token named `{name}`; GET /v1/admin/tokens (driftless tokens list) lists them"
            ),
        ));
    }
    state.node.tokens().forget().await;
    tracing::info!(token = %name, "token revoked");
    Ok(Json(TokenRevoked {
        name,
        revoked: true,
    }))
}

fn info(t: TokenRecord) -> TokenInfo {
    TokenInfo {
        scopes: t.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        name: t.name,
        created_ms: t.created_ms,
        created_by: t.created_by,
        last_used_ms: t.last_used_ms,
    }
}
