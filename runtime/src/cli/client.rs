//! The HTTP client behind the CLI's daemon commands: one place that turns connection failures
//! and the API's JSON errors into messages that say what to do.

use anyhow::{Context, Result, anyhow};
use driftless::api::auth::CLIENT_HEADER;
use driftless::wire::ErrorBody;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Where the daemon is, and the token to call it with.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The daemon's base URL.
    #[arg(long, env = "DRIFTLESS_URL", default_value = "http://127.0.0.1:7878")]
    pub url: String,
    /// The API token, sent as `Authorization: Bearer TOKEN` (not needed by a daemon in open
    /// mode, on loopback without tokens).
    #[arg(long, env = "DRIFTLESS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Trust this CA certificate (PEM; may hold several) for an https:// daemon, besides the
    /// system's trust store.
    #[arg(long, env = "DRIFTLESS_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// A client of one daemon.
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// Whether requests carry a token.
    token: bool,
}

/// An error answer of the API: its status, and its body (code, message, compat report), or
/// the answer's text when it is not an error body this CLI reads.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub body: Result<ErrorBody, String>,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status.as_u16();
        match &self.body {
            Ok(body) => {
                let e = &body.error;
                write!(f, "{} ({}, HTTP {status})", e.message, e.code)?;
                if let Some(report) = &body.report {
                    write!(f, "\n{report}")?;
                }
                Ok(())
            }
            Err(text) if text.trim().is_empty() => write!(
                f,
                "the daemon answered {} without an error body (HTTP {status})",
                self.status
            ),
            Err(text) => write!(
                f,
                "the daemon answered {} with an error this driftless does not read (HTTP {status}): {}",
                self.status,
                text.trim()
            ),
        }
    }
}

impl std::error::Error for ApiFailure {}

impl Client {
    /// A client for `args.url`.
    pub fn new(args: &ClientArgs) -> Result<Client> {
        let base = args.url.trim_end_matches('/').to_string();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--url {base} is not an http:// or https:// URL; give the daemon's address, e.g. http://127.0.0.1:7878"
        );
        // Every request says it comes from a client, not a web page (open mode refuses
        // state-changing requests without it), and carries the token when one is given.
        let mut headers = HeaderMap::new();
        headers.insert(CLIENT_HEADER, HeaderValue::from_static("1"));
        let token = args
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                anyhow!("--token / DRIFTLESS_TOKEN holds characters a header cannot carry; paste the token exactly as `driftless tokens create` printed it")
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let mut http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .default_headers(headers);
        if let Some(path) = &args.ca_cert {
            for root in ca_certificates(path)? {
                http = http.add_root_certificate(root);
            }
        }
        Ok(Client {
            base,
            http: http.build()?,
            token: token.is_some(),
        })
    }

    /// A request to `path` (which starts with `/`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Send, and turn a failure to connect or an API error into a message.
    pub async fn send(&self, request: RequestBuilder) -> Result<reqwest::Response> {
        let response = request.send().await.map_err(|e| {
            if let Some(tls) = tls_failure(&e) {
                if tls.contains("certificate") {
                    anyhow!(
                        "the daemon at {} presented a TLS certificate this client does not trust ({tls}); pass the CA certificate that signed it with --ca-cert FILE (or DRIFTLESS_CA_CERT), or add it to the system's trust store",
                        self.base
                    )
                } else {
                    anyhow!(
                        "the TLS connection to {} failed ({tls}); if the daemon serves plain HTTP, use an http:// URL",
                        self.base
                    )
                }
            } else if e.is_connect() || e.is_timeout() {
                anyhow!(
                    "cannot reach the daemon at {} ({e}); start it with `driftless serve`, or point --url / DRIFTLESS_URL at a running one",
                    self.base
                )
            } else {
                anyhow!("the request to {} failed: {e}", self.base)
            }
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str::<ErrorBody>(&text).map_err(|_| text);
        let failure = ApiFailure { status, body };
        match status {
            StatusCode::UNAUTHORIZED if !self.token => Err(anyhow!(
                "{failure}\nthe daemon at {} requires a token: pass --token TOKEN or set DRIFTLESS_TOKEN (an admin makes one with `driftless tokens create NAME --scope read --scope submit`)",
                self.base
            )),
            StatusCode::UNAUTHORIZED => Err(anyhow!(
                "{failure}\nthe token given with --token / DRIFTLESS_TOKEN was refused: check it for typos, or ask an admin whether it was revoked (`driftless tokens list`)"
            )),
            _ => Err(failure.into()),
        }
    }

    /// Send and decode a JSON answer: a [`wire`](driftless::wire) type, or a [`Value`] to
    /// print as the daemon sent it.
    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let value: Value = self.send(request).await?.json().await?;
        decode(&value)
    }

    /// `GET path` as JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(self.request(Method::GET, path)).await
    }

    /// Every page of the listing at `path` (each answer is bounded), handled as it comes:
    /// `page` gets each answer and whether it is the first, and returns the next page's
    /// cursor (`None`: stop).
    pub async fn each_page(
        &self,
        path: &str,
        mut page: impl FnMut(&Value, bool) -> Result<Option<String>>,
    ) -> Result<()> {
        let mut after: Option<String> = None;
        let mut first = true;
        loop {
            let query = driftless::wire::PageQuery {
                limit: None,
                after: after.take(),
            };
            let raw: Value = self
                .json(self.request(Method::GET, path).query(&query))
                .await?;
            match page(&raw, first)? {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
            first = false;
        }
    }
}

/// The CA certificates in a PEM file.
fn ca_certificates(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).with_context(|| {
        format!(
            "cannot read --ca-cert {}; give the PEM file of the CA that signed the daemon's certificate",
            path.display()
        )
    })?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
        format!(
            "--ca-cert {} is not a PEM certificate file; give the CA certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )
    })?;
    anyhow::ensure!(
        !roots.is_empty(),
        "--ca-cert {} holds no certificate; give the CA certificate (-----BEGIN CERTIFICATE-----)",
        path.display()
    );
    Ok(roots)
}

/// What TLS said, when TLS is what failed a request. The rustls error sits under several
/// layers of connector errors (some boxed twice, some inside an `io::Error` whose `source`
/// skips it), so each layer is looked at as a rustls error and then by its text.
fn tls_failure(e: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for layer in [Some(err), inner].into_iter().flatten() {
            if let Some(tls) = layer.downcast_ref::<rustls::Error>() {
                return Some(tls.to_string());
            }
            let text = layer.to_string();
            if text.contains("invalid peer certificate") || text.starts_with("received fatal alert")
            {
                return Some(text);
            }
        }
        next = err.source();
    }
    None
}

/// A daemon's JSON answer as a [`wire`](driftless::wire) type.
pub fn decode<T: DeserializeOwned>(answer: &Value) -> Result<T> {
    T::deserialize(answer).context(
        "the daemon's answer is not shaped as this driftless expects; use the driftless CLI of the daemon's version",
    )
}
