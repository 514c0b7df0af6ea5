//! `/v1/whoami`: what the presented token may do, so a client offers only what it may (the
//! console hides write buttons from a read-only token).

use super::AppState;
use crate::tokens::{Caller, Scope};
use crate::wire::WhoAmI;
use axum::Json;
use axum::extract::{Extension, State};

/// `GET /v1/whoami`: the token's name and scopes (every scope in open mode).
pub async fn whoami(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<WhoAmI> {
    let node = state.node.config().node.clone();
    Json(match caller {
        Caller::Open => WhoAmI {
            token: None,
            open: true,
            scopes: Scope::ALL.to_vec(),
            node,
        },
        Caller::Token(grant) => {
            let mut scopes = grant.scopes;
            scopes.sort();
            scopes.dedup();
            WhoAmI {
                token: Some(grant.name),
                open: false,
                scopes,
                node,
            }
        }
    })
}
