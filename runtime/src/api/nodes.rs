//! `/v1/nodes`: the node registry, as an operator reads it during a rolling upgrade.

use super::AppState;
use super::error::ApiError;
use crate::node::registry;
use crate::store::now_ms;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// `GET /v1/nodes`: every live node process and those gone within `remember_nodes`, with
/// its catalog, version of driftless, heartbeat, draining flag and in-flight count.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let node = &state.node;
    let now = now_ms();
    let records = node
        .store()
        .list_nodes(now - node.config().remember_nodes.as_millis() as i64)
        .await?;
    let nodes: Vec<Value> = records
        .iter()
        .map(|n| {
            let mut v = json!(n);
            v["state"] = json!(registry::state_of(n));
            v["catalog"] = json!(registry::catalog_of(n).map(|c| c.ids()).unwrap_or_default());
            v["heartbeat_age_ms"] = json!((now - n.heartbeat_ms).max(0));
            v["this_process"] = json!(n.process == node.holder());
            v
        })
        .collect();
    Ok(Json(json!({
        "this_process": node.holder(),
        "node_ttl_ms": node.config().node_ttl.as_millis() as u64,
        "nodes": nodes,
    })))
}
