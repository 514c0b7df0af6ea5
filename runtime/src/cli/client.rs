//! The HTTP client behind the CLI's daemon commands: one place that turns connection failures
//! and the API's JSON errors into messages that say what to do.

use anyhow::{Context, Result, anyhow};
use driftless::wire::ErrorBody;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// Where the daemon is.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// The daemon's base URL.
    #[arg(long, env = "DRIFTLESS_URL", default_value = "http://127.0.0.1:7878")]
    pub url: String,
}

/// A client of one daemon.
pub struct Client {
    base: String,
    http: reqwest::Client,
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
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Client { base, http })
    }

    /// A request to `path` (which starts with `/`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Send, and turn a failure to connect or an API error into a message.
    pub async fn send(&self, request: RequestBuilder) -> Result<reqwest::Response> {
        let response = request.send().await.map_err(|e| {
            if e.is_connect() || e.is_timeout() {
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
        Err(ApiFailure { status, body }.into())
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
}

/// A daemon's JSON answer as a [`wire`](driftless::wire) type.
pub fn decode<T: DeserializeOwned>(answer: &Value) -> Result<T> {
    T::deserialize(answer).context(
        "the daemon's answer is not shaped as this driftless expects; use the driftless CLI of the daemon's version",
    )
}
