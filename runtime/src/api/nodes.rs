//! `/v1/nodes`: the node registry, as an operator reads it during a rolling upgrade.

use super::error::{ApiError, Path, Query};
use super::{AppState, page};
use crate::node::registry;
use crate::store::NodeRecord;
use crate::wire::{DrainRequested, ErrorCode, LimitQuery, NodeInfo, NodeList};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

/// `GET /v1/nodes?limit=`: every live node process and those gone within `remember_nodes`
/// (the newest `limit`, 100 by default), with its catalog, version of driftless, heartbeat,
/// draining flag and in-flight count. The registry holds a cluster's processes of the last
/// minutes, so it is read whole and capped here.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<NodeList>, ApiError> {
    let node = &state.node;
    let now = node.store().now();
    let mut records = node
        .store()
        .list_nodes(now - node.config().remember_nodes.as_millis() as i64)
        .await?;
    let size = page::NODES.size(q.limit) as usize;
    if records.len() > size {
        records.drain(..records.len() - size);
    }
    let holder = node.holder().to_string();
    Ok(Json(NodeList {
        nodes: records.iter().map(|n| info(n, now, &holder)).collect(),
        node_ttl_ms: node.config().node_ttl.as_millis() as u64,
        this_process: holder,
    }))
}

/// A registry record as `GET /v1/nodes` shows it, `now` by this node's clock.
fn info(n: &NodeRecord, now: i64, holder: &str) -> NodeInfo {
    NodeInfo {
        process: n.process.clone(),
        node: n.node.clone(),
        address: n.address.clone(),
        version: n.version.clone(),
        catalog: registry::catalog_of(n).map(|c| c.ids()).unwrap_or_default(),
        agents: n.agents,
        identities: n.identities.clone(),
        started_ms: n.started_ms,
        heartbeat_ms: n.heartbeat_ms,
        heartbeat_age_ms: (now - n.heartbeat_ms).max(0),
        draining: n.draining,
        inflight: n.inflight,
        gone_ms: n.gone_ms,
        state: registry::state_of(n),
        this_process: n.process == holder,
    }
}

/// `POST /v1/nodes/{node}/drain`: ask every live process of `node` to drain at its next
/// heartbeat (this process at once, when it is one of them).
pub async fn drain(
    State(state): State<AppState>,
    Path(node): Path<String>,
) -> Result<(StatusCode, Json<DrainRequested>), ApiError> {
    ask(&state, node, true).await
}

/// `POST /v1/nodes/{node}/resume`: ask every live process of `node` to resume.
pub async fn resume(
    State(state): State<AppState>,
    Path(node): Path<String>,
) -> Result<(StatusCode, Json<DrainRequested>), ApiError> {
    ask(&state, node, false).await
}

async fn ask(
    state: &AppState,
    node: String,
    drain: bool,
) -> Result<(StatusCode, Json<DrainRequested>), ApiError> {
    let processes = state.node.store().request_drain(&node, drain).await?;
    if processes == 0 {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no live process of node {node} is registered, so there is nothing to {}; GET /v1/nodes lists the live nodes",
                if drain { "drain" } else { "resume" }
            ),
        ));
    }
    if node == state.node.config().node {
        state.node.set_draining(drain);
    }
    let verb = if drain { "drains" } else { "resumes" };
    tracing::info!(node = %node, draining = drain, "asked a node to {}", if drain { "drain" } else { "resume" });
    Ok((
        StatusCode::ACCEPTED,
        Json(DrainRequested {
            message: format!(
                "{node} {verb} at its next heartbeat (every {} ms){}",
                state.node.config().node_heartbeat.as_millis(),
                if processes > 1 {
                    format!("; all {processes} of its live processes were asked")
                } else {
                    String::new()
                }
            ),
            node,
            draining: drain,
            processes,
        }),
    ))
}
