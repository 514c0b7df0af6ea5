//! The bodies of `/v1/admin/tokens`: making, listing and revoking API tokens.

use crate::tokens::Scope;
use serde::{Deserialize, Serialize};

/// `POST /v1/admin/tokens`: a new token's name and scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// Unique name; the audit trail's actor for requests made with the token.
    pub name: String,
    /// What it may do (`admin` grants every scope).
    pub scopes: Vec<Scope>,
}

/// A token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// When it was made.
    pub created_ms: i64,
    /// The token that made it.
    pub created_by: String,
    /// When a node last recorded its use (at most once a minute per node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_ms: Option<i64>,
}

/// `POST /v1/admin/tokens`'s answer: the token with its secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreated {
    /// The token.
    #[serde(flatten)]
    pub token: TokenInfo,
    /// The secret to send as `Authorization: Bearer SECRET`; only its hash is stored.
    pub secret: String,
}

/// `GET /v1/admin/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    /// Every token made through the API, by name (the admin token given at `serve` is not
    /// stored and not listed).
    pub tokens: Vec<TokenInfo>,
}

/// `DELETE /v1/admin/tokens/{name}`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRevoked {
    /// The token's name.
    pub name: String,
    /// Always true: an unknown name is a 404.
    pub revoked: bool,
}

/// `GET /v1/whoami`: what the presented token may do, so a client (the console) offers only
/// what it may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The token's name (`admin` for the token given at `serve`); `None` in open mode.
    pub token: Option<String>,
    /// Whether the node runs in open mode (no token needed, on loopback).
    pub open: bool,
    /// What the caller may do: its token's scopes (`admin` grants every other one), or every
    /// scope in open mode.
    pub scopes: Vec<Scope>,
    /// The answering node's name.
    pub node: String,
}
