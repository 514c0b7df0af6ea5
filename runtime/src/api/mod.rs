//! api: the HTTP API (axum), versioned under `/v1`. [`router`] builds the whole app, so tests
//! can serve it on `127.0.0.1:0` exactly as the daemon does.

pub mod error;
mod jobs;
mod system;
mod view;

use crate::node::Node;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post, put};
use std::sync::Arc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The node.
    pub node: Arc<Node>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API's routes, for the router and for the OpenAPI check: (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/{id}"),
    ("POST", "/v1/jobs/{id}/cancel"),
    ("GET", "/v1/jobs/{id}/logs"),
    ("GET", "/v1/jobs/{id}/events"),
    ("PUT", "/v1/components"),
    ("POST", "/v1/check"),
    ("GET", "/v1/modules"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

/// The whole app.
pub fn router(node: Arc<Node>) -> Router {
    let limit = node.config.max_upload_bytes;
    let state = AppState { node };
    Router::new()
        .route("/v1/jobs", post(jobs::submit).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/jobs/{id}/logs", get(jobs::logs))
        .route("/v1/jobs/{id}/events", get(jobs::events))
        .route("/v1/components", put(jobs::put_component))
        .route("/v1/check", post(system::check))
        .route("/v1/modules", get(system::modules))
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .fallback(system::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
