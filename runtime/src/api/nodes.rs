//! `/v1/nodes`: the node registry, as an operator reads it during a rolling upgrade.

use super::error::{ApiError, Query};
use super::{AppState, page};
use crate::node::registry;
use crate::store::NodeRecord;
use crate::wire::{LimitQuery, NodeInfo, NodeList};
use axum::Json;
use axum::extract::State;

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
