//! `/v1/admin`: drain and resume this node, and see what is still running on it.

use super::AppState;
use crate::wire::{Inflight, InflightAttempt};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// `POST /v1/admin/drain`: claim nothing new, fail `/readyz`; reads and submissions go on.
pub async fn drain(State(state): State<AppState>) -> Json<Inflight> {
    state.node.set_draining(true);
    tracing::info!("draining (requested over the API)");
    inflight(State(state)).await
}

/// `POST /v1/admin/resume`: claim again, pass `/readyz`.
pub async fn resume(State(state): State<AppState>) -> Json<Inflight> {
    state.node.set_draining(false);
    tracing::info!("resumed");
    inflight(State(state)).await
}

/// `GET /v1/admin/inflight`: the attempts running on this node.
pub async fn inflight(State(state): State<AppState>) -> Json<Inflight> {
    let now = crate::store::now_ms();
    let mut attempts: Vec<InflightAttempt> = state
        .node
        .inflight()
        .into_iter()
        .map(|(job, r)| InflightAttempt {
            job,
            agent: r.agent,
            attempt: r.attempt,
            running_ms: now - r.started_ms,
        })
        .collect();
    attempts.sort_by(|a, b| a.agent.cmp(&b.agent));
    Json(Inflight {
        node: state.node.config().node.clone(),
        draining: state.node.is_draining(),
        count: attempts.len(),
        attempts,
        agents: state.node.identities(),
        holder: state.node.holder().to_string(),
    })
}

/// While draining, every response asks the client to close its connection, so clients move to
/// the process that replaces this one instead of reusing a connection that is about to go.
pub async fn close_connections_while_draining(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if state.node.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
