//! The one layer that decides whether a request may reach its route: its token and the scope
//! the route needs ([`super::ACCESS`]), or, in open mode, the checks that keep a web page in
//! the operator's browser out (a loopback or allowed `Host`; state-changing requests only with
//! a non-simple content type or the `x-driftless-client` header).
//!
//! It runs before the body is read, so nothing of a refused request is stored or buffered; what
//! a refused client still sends is read and dropped (up to the upload limit), so it reads the
//! refusal instead of a connection reset.

use super::error::ApiError;
use super::{ACCESS, AppState, route_matches};
use crate::tokens::{Caller, Denied, Scope};
use crate::wire::ErrorCode;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The header the CLI sends on every request; in open mode, a state-changing request needs it
/// or a non-simple content type (a browser sends neither cross-site without CORS, which this
/// daemon never grants).
pub const CLIENT_HEADER: &str = "x-driftless-client";

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: health, readiness and the API description.
    Open,
    /// A token with this scope (`admin` grants every scope).
    Scope(Scope),
    /// Any valid token, whatever its scopes (`/v1/whoami`: what the token may do).
    Token,
}

/// What `method path` needs; `None` when no route matches (any valid token may then learn
/// that from the router's 404 or 405).
pub fn access(method: &Method, path: &str) -> Option<Access> {
    let method = if *method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ACCESS
        .iter()
        .find(|(m, p, _)| *m == method && route_matches(p, path))
        .map(|(_, _, a)| *a)
}

/// The layer: authenticate, authorize, and hand the [`Caller`] to the handler as an extension.
pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let needs = access(request.method(), request.uri().path());
    if needs == Some(Access::Open) {
        return next.run(request).await;
    }
    let refused = match state.node.tokens().caller(bearer(request.headers())).await {
        Err(denied) => denial(denied),
        Ok(caller) => match refusal(&state, &request, &caller, needs) {
            Some(refused) => refused,
            None => {
                request.extensions_mut().insert(caller);
                return next.run(request).await;
            }
        },
    };
    super::body::discard(request.into_body(), state.node.config().max_upload_bytes).await;
    refused
}

/// The answer to a request that was not authenticated.
fn denial(denied: Denied) -> Response {
    match denied {
        Denied::Missing => unauthorized(
            "this node requires a token and the request carried none: send `Authorization: Bearer TOKEN` (the CLI: --token or DRIFTLESS_TOKEN); an admin makes tokens with `driftless tokens create NAME --scope SCOPE`",
            None,
        ),
        Denied::Invalid => unauthorized(
            "the token is not valid: it is unknown, mistyped or revoked; check --token / DRIFTLESS_TOKEN, or ask an admin for a token (`driftless tokens list` shows which exist)",
            Some("invalid_token"),
        ),
        Denied::Store(e) => ApiError::from(e).into_response(),
    }
}

/// Why `caller` may not make this request, if it may not: a scope its token lacks, or in open
/// mode what a web page could have sent.
fn refusal(
    state: &AppState,
    request: &Request,
    caller: &Caller,
    needs: Option<Access>,
) -> Option<Response> {
    match (caller, needs) {
        (Caller::Open, _) => open_mode_refusal(state, request).map(IntoResponse::into_response),
        (Caller::Token(grant), Some(Access::Scope(scope))) if !grant.allows(scope) => Some(
            forbidden(&grant.name, scope, request.method(), request.uri().path()),
        ),
        (Caller::Token(_), _) => None,
    }
}

/// The secret of an `Authorization: Bearer SECRET` header. Another scheme or an unreadable
/// header is presented as an empty secret, which matches no token.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?;
    let text = value.to_str().unwrap_or("");
    let (scheme, secret) = text.split_once(' ').unwrap_or((text, ""));
    Some(if scheme.eq_ignore_ascii_case("bearer") {
        secret.trim()
    } else {
        ""
    })
}

/// 401 `unauthorized` with `WWW-Authenticate: Bearer` (RFC 6750).
fn unauthorized(message: &str, error: Option<&str>) -> Response {
    let mut response = ApiError::new(ErrorCode::Unauthorized, message).into_response();
    let challenge = match error {
        Some(e) => format!("Bearer realm=\"driftless\", error=\"{e}\""),
        None => "Bearer realm=\"driftless\"".to_string(),
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&challenge).expect("a valid header"),
    );
    response
}

/// 403 `forbidden`, naming the token and the scope it lacks.
fn forbidden(name: &str, scope: Scope, method: &Method, path: &str) -> Response {
    let mut response = ApiError::new(
        ErrorCode::Forbidden,
        format!(
            "the token `{name}` lacks the `{scope}` scope, which {method} {path} needs; use a token with `{scope}` (or `admin`): an admin makes one with `driftless tokens create NAME --scope {scope}`"
        ),
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_str(&format!(
            "Bearer realm=\"driftless\", error=\"insufficient_scope\", scope=\"{scope}\""
        ))
        .expect("a valid header"),
    );
    response
}

/// Open mode's refusal of a request a web page could have made, if it is one.
fn open_mode_refusal(state: &AppState, request: &Request) -> Option<ApiError> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let allowed = &state.node.tokens().config().allowed_hosts;
    if !host_allowed(host, allowed) {
        return Some(ApiError::new(
            ErrorCode::HostNotAllowed,
            format!(
                "this node runs without tokens (open mode) and answers only requests addressed to a loopback name (localhost, 127.0.0.1, [::1]), not to `{host}` (a web page could use such a name to reach it); use http://127.0.0.1:PORT, start the node with --allowed-host {}, or configure tokens (DRIFTLESS_ADMIN_TOKEN)",
                strip_port(host)
            ),
        ));
    }
    let changes = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    );
    if changes && !request.headers().contains_key(CLIENT_HEADER) && simple(request.headers()) {
        return Some(ApiError::new(
            ErrorCode::CrossSiteRequest,
            format!(
                "this node runs without tokens (open mode), so it refuses state-changing requests a web page could send: add the header `{CLIENT_HEADER}: 1` (the driftless CLI always does) or send a JSON or application/wasm body; or configure tokens (DRIFTLESS_ADMIN_TOKEN)"
            ),
        ));
    }
    None
}

/// Whether the content type is one a cross-site form or `fetch` may send without asking
/// (CORS's "simple" types), or absent.
fn simple(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "" | "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
    )
}

/// `host` without its port (`[::1]:80` → `[::1]`).
fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i)
            if !host[i..].contains(']') && host[i + 1..].chars().all(|c| c.is_ascii_digit()) =>
        {
            &host[..i]
        }
        _ => host,
    }
}

/// Whether open mode answers a request with this `Host`: a loopback name or an allowed host
/// (either given with this port or without one), case-insensitively.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = strip_port(host).to_ascii_lowercase();
    let loopback = name == "localhost"
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback
        || allowed
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_allowed_hosts_pass_others_do_not() {
        let allowed = vec!["node1.internal".to_string(), "10.0.0.5:7878".to_string()];
        for ok in [
            "localhost",
            "localhost:7878",
            "127.0.0.1:1",
            "127.9.0.1",
            "[::1]:7878",
            "[::1]",
            "NODE1.internal:99",
            "10.0.0.5:7878",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost.evil.example",
            "10.0.0.5",
            "10.0.0.5:80",
            "",
            "[::2]:7878",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }

    #[test]
    fn simple_content_types_are_the_ones_a_form_can_send() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            simple(&h)
        };
        assert!(simple(&HeaderMap::new()));
        assert!(with("text/plain;charset=UTF-8"));
        assert!(with("Multipart/Form-Data; boundary=x"));
        assert!(with("application/x-www-form-urlencoded"));
        assert!(!with("application/json"));
        assert!(!with("application/wasm"));
    }

    #[test]
    fn bearer_reads_the_scheme_case_insensitively() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            bearer(&h).map(str::to_string)
        };
        assert_eq!(bearer(&HeaderMap::new()), None);
        assert_eq!(with("Bearer dl_abc").as_deref(), Some("dl_abc"));
        assert_eq!(with("bearer  dl_abc ").as_deref(), Some("dl_abc"));
        assert_eq!(with("Basic dXNlcjpwdw==").as_deref(), Some(""));
    }
}
