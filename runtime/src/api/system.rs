//! Dry-run admission, the catalog, health, readiness and metrics.

use super::AppState;
use super::error::ApiError;
use crate::wire::{CheckAnswer, ErrorCode, ModuleList};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};

/// `POST /v1/check`: the compat report for a component, without storing anything.
pub async fn check(
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<CheckAnswer>, ApiError> {
    let bytes = super::jobs::read_body(&state, body).await?;
    let report = state.node.sandbox().judge_pooled(bytes).await?.report;
    Ok(Json(CheckAnswer {
        accepted: report.accepted(),
        text: report.to_string(),
        report,
    }))
}

/// `GET /v1/modules`: this node's catalog.
pub async fn modules(State(state): State<AppState>) -> Json<ModuleList> {
    Json(ModuleList {
        node: state.node.config().node.clone(),
        modules: state.node.sandbox().catalog().modules().to_vec(),
    })
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: ready to take jobs (not draining, and the store answers and can write).
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    if state.node.is_draining() {
        return Err(ApiError::new(
            ErrorCode::Draining,
            "this node is draining (a restart or upgrade is under way, or POST /v1/admin/drain); send traffic to another node, or POST /v1/admin/resume",
        ));
    }
    state.node.store().stats().await.map_err(|e| {
        ApiError::new(
            ErrorCode::NotReady,
            format!("the store does not answer: {e}"),
        )
    })?;
    state.node.store().writable().await.map_err(|e| {
        ApiError::new(
            ErrorCode::NotReady,
            format!("the store cannot take writes: {e}"),
        )
    })?;
    Ok("ready\n")
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let stats = state.node.store().stats().await?;
    let text = state.node.metrics().render(
        &stats,
        state.node.sandbox().engine().cache_stats(),
        state.node.sandbox().engine().compile_pool().stats(),
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

/// The OpenAPI document, as checked in.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// A known path with a method it does not have: a JSON 405.
pub async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    let allowed: Vec<&str> = super::ROUTES
        .iter()
        .filter(|(_, p)| super::route_matches(p, uri.path()))
        .map(|(m, _)| *m)
        .collect();
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} does not take {method}; use {}",
            uri.path(),
            allowed.join(" or ")
        ),
    )
}

/// Anything else: a JSON 404 that lists what exists.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NoSuchRoute,
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
