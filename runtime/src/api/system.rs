//! Dry-run admission, the catalog, health, readiness and metrics.

use super::AppState;
use super::error::ApiError;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// `POST /v1/check`: the compat report for a component, without storing anything.
pub async fn check(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let limit = state.node.config.max_upload_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the upload is larger than this node accepts ({limit} bytes)"),
        )
    })?;
    let (_, report) =
        state.node.sandbox.check(&bytes).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid-component", e.to_string())
        })?;
    Ok(Json(
        json!({"accepted": report.accepted(), "report": report, "text": report.to_string()}),
    ))
}

/// `GET /v1/modules`: this node's catalog.
pub async fn modules(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"node": state.node.config.node, "modules": state.node.sandbox.catalog().modules()}))
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: ready to take jobs (the store answers).
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.node.store.stats().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            format!("the store does not answer: {e}"),
        )
    })?;
    Ok("ready\n")
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let stats = state.node.store.stats().await?;
    let text = state
        .node
        .metrics
        .render(&stats, state.node.sandbox.engine().cache_stats());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// Anything else: a JSON 404 that lists what exists.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no-such-route",
        format!(
            "{} is not an API route; the routes are {}",
            uri.path(),
            super::ROUTES
                .iter()
                .map(|(m, p)| format!("{m} {p}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}
