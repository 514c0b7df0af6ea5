//! api: the HTTP API (axum), versioned under `/v1`. [`router`] builds the whole app, so tests
//! can serve it on `127.0.0.1:0` exactly as the daemon does.

mod admin;
pub mod auth;
mod body;
pub mod error;
mod jobs;
mod nodes;
mod page;
mod schedules;
pub mod submission;
mod system;
mod tasks;
mod tokens;
mod view;
mod whoami;

#[cfg(test)]
mod openapi_check;

use crate::node::Node;
use crate::tokens::Scope;
use auth::Access;
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
    ("GET", "/v1/jobs/{id}/output"),
    ("PUT", "/v1/components"),
    ("GET", "/v1/tasks"),
    ("PUT", "/v1/tasks/{name}"),
    ("GET", "/v1/tasks/{name}"),
    ("POST", "/v1/tasks/{name}/rollback"),
    ("DELETE", "/v1/tasks/{name}/versions/{version}"),
    ("GET", "/v1/schedules"),
    ("PUT", "/v1/schedules/{name}"),
    ("GET", "/v1/schedules/{name}"),
    ("DELETE", "/v1/schedules/{name}"),
    ("POST", "/v1/check"),
    ("GET", "/v1/modules"),
    ("GET", "/v1/nodes"),
    ("POST", "/v1/nodes/{node}/drain"),
    ("POST", "/v1/nodes/{node}/resume"),
    ("GET", "/v1/activity"),
    ("GET", "/v1/whoami"),
    ("GET", "/"),
    ("GET", "/console/{file}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/admin/drain"),
    ("POST", "/v1/admin/resume"),
    ("GET", "/v1/admin/inflight"),
    ("POST", "/v1/admin/tokens"),
    ("GET", "/v1/admin/tokens"),
    ("DELETE", "/v1/admin/tokens/{name}"),
];

/// What each route of [`ROUTES`] needs when tokens are on (a unit test holds the two lists to
/// the same routes). `admin` grants every scope. Open: health and readiness (for load
/// balancers and orchestrators), the API description (public, static, the same as the
/// README's) and the console's static files (they hold no data; the page asks the API for
/// everything with the operator's token). `/v1/whoami` takes any valid token. `/metrics` needs `read`: it tells the node's load and jobs, and Prometheus sends a
/// bearer token (`authorization` in its scrape config).
pub const ACCESS: &[(&str, &str, Access)] = &[
    ("POST", "/v1/jobs", Access::Scope(Scope::Submit)),
    ("GET", "/v1/jobs", Access::Scope(Scope::Read)),
    ("GET", "/v1/jobs/{id}", Access::Scope(Scope::Read)),
    ("POST", "/v1/jobs/{id}/cancel", Access::Scope(Scope::Submit)),
    ("GET", "/v1/jobs/{id}/logs", Access::Scope(Scope::Read)),
    ("GET", "/v1/jobs/{id}/events", Access::Scope(Scope::Read)),
    ("GET", "/v1/jobs/{id}/output", Access::Scope(Scope::Read)),
    ("PUT", "/v1/components", Access::Scope(Scope::Submit)),
    ("GET", "/v1/tasks", Access::Scope(Scope::Read)),
    ("PUT", "/v1/tasks/{name}", Access::Scope(Scope::Deploy)),
    ("GET", "/v1/tasks/{name}", Access::Scope(Scope::Read)),
    (
        "POST",
        "/v1/tasks/{name}/rollback",
        Access::Scope(Scope::Deploy),
    ),
    (
        "DELETE",
        "/v1/tasks/{name}/versions/{version}",
        Access::Scope(Scope::Deploy),
    ),
    ("GET", "/v1/schedules", Access::Scope(Scope::Read)),
    ("PUT", "/v1/schedules/{name}", Access::Scope(Scope::Deploy)),
    ("GET", "/v1/schedules/{name}", Access::Scope(Scope::Read)),
    (
        "DELETE",
        "/v1/schedules/{name}",
        Access::Scope(Scope::Deploy),
    ),
    ("POST", "/v1/check", Access::Scope(Scope::Submit)),
    ("GET", "/v1/modules", Access::Scope(Scope::Read)),
    ("GET", "/v1/nodes", Access::Scope(Scope::Read)),
    (
        "POST",
        "/v1/nodes/{node}/drain",
        Access::Scope(Scope::Admin),
    ),
    (
        "POST",
        "/v1/nodes/{node}/resume",
        Access::Scope(Scope::Admin),
    ),
    ("GET", "/v1/activity", Access::Scope(Scope::Read)),
    ("GET", "/v1/whoami", Access::Token),
    ("GET", "/", Access::Open),
    ("GET", "/console/{file}", Access::Open),
    ("GET", "/healthz", Access::Open),
    ("GET", "/readyz", Access::Open),
    ("GET", "/metrics", Access::Scope(Scope::Read)),
    ("GET", "/openapi.json", Access::Open),
    ("POST", "/v1/admin/drain", Access::Scope(Scope::Admin)),
    ("POST", "/v1/admin/resume", Access::Scope(Scope::Admin)),
    ("GET", "/v1/admin/inflight", Access::Scope(Scope::Admin)),
    ("POST", "/v1/admin/tokens", Access::Scope(Scope::Admin)),
    ("GET", "/v1/admin/tokens", Access::Scope(Scope::Admin)),
    (
        "DELETE",
        "/v1/admin/tokens/{name}",
        Access::Scope(Scope::Admin),
    ),
];

/// Whether a concrete path matches a route template (`{x}` matches one segment).
fn route_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

/// The whole app.
pub fn router(node: Arc<Node>) -> Router {
    let limit = node.config().max_upload_bytes;
    let state = AppState { node };
    Router::new()
        .route("/v1/jobs", post(jobs::submit).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/jobs/{id}/logs", get(jobs::logs))
        .route("/v1/jobs/{id}/events", get(jobs::events))
        .route("/v1/jobs/{id}/output", get(jobs::output))
        .route("/v1/components", put(jobs::put_component))
        .route("/v1/tasks", get(tasks::list))
        .route("/v1/tasks/{name}", put(tasks::deploy).get(tasks::get))
        .route("/v1/tasks/{name}/rollback", post(tasks::rollback))
        .route(
            "/v1/tasks/{name}/versions/{version}",
            axum::routing::delete(tasks::delete_version),
        )
        .route("/v1/schedules", get(schedules::list))
        .route(
            "/v1/schedules/{name}",
            put(schedules::put)
                .get(schedules::get)
                .delete(schedules::delete),
        )
        .route("/v1/check", post(system::check))
        .route("/v1/modules", get(system::modules))
        .route("/v1/nodes", get(nodes::list))
        .route("/v1/nodes/{node}/drain", post(nodes::drain))
        .route("/v1/nodes/{node}/resume", post(nodes::resume))
        .route("/v1/activity", get(jobs::activity))
        .route("/v1/whoami", get(whoami::whoami))
        .route("/", get(crate::console::index))
        .route("/console/{file}", get(crate::console::asset))
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .route("/v1/admin/drain", post(admin::drain))
        .route("/v1/admin/resume", post(admin::resume))
        .route("/v1/admin/inflight", get(admin::inflight))
        .route("/v1/admin/tokens", post(tokens::create).get(tokens::list))
        .route(
            "/v1/admin/tokens/{name}",
            axum::routing::delete(tokens::revoke),
        )
        .fallback(system::not_found)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::close_connections_while_draining,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The checked-in OpenAPI document describes exactly the routes the router serves.
    #[test]
    fn openapi_document_matches_the_routes() {
        let doc: serde_json::Value =
            serde_json::from_str(system::OPENAPI).expect("openapi.json is JSON");
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .expect("operations")
                    .keys()
                    .filter(|k| !matches!(k.as_str(), "parameters" | "summary" | "description"))
                    .map(move |m| (m.to_uppercase(), path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty() && stale.is_empty(),
            "runtime/openapi.json is out of sync with api::ROUTES: undocumented {undocumented:?}, documented but not served {stale:?}"
        );
    }

    /// Every route has exactly one entry in [`ACCESS`], and [`ACCESS`] names no other route:
    /// a new route cannot be served without deciding what it needs.
    #[test]
    fn every_route_has_one_access_rule() {
        for (m, p) in ROUTES {
            let rules = ACCESS
                .iter()
                .filter(|(am, ap, _)| am == m && ap == p)
                .count();
            assert_eq!(
                rules, 1,
                "{m} {p} has {rules} entries in api::ACCESS; give it one"
            );
        }
        for (m, p, _) in ACCESS {
            assert!(
                ROUTES.contains(&(*m, *p)),
                "api::ACCESS names {m} {p}, which api::ROUTES does not serve"
            );
        }
        assert_eq!(
            auth::access(&axum::http::Method::HEAD, "/v1/jobs/job_1"),
            Some(Access::Scope(Scope::Read))
        );
        assert_eq!(auth::access(&axum::http::Method::GET, "/v1/nope"), None);
    }

    #[test]
    fn route_templates_match_one_segment_per_parameter() {
        assert!(route_matches("/v1/jobs/{id}", "/v1/jobs/job_1"));
        assert!(!route_matches("/v1/jobs/{id}", "/v1/jobs/job_1/logs"));
        assert!(!route_matches("/v1/jobs/{id}", "/v1/jobs/"));
        assert!(route_matches("/healthz", "/healthz"));
    }
}
