//! The HTTP client behind the CLI's daemon commands: one place that turns connection failures
//! and the API's JSON errors into messages that say what to do.

use anyhow::{Result, anyhow};
use driftless::compat::CompatReport;
use reqwest::{Method, RequestBuilder, StatusCode};
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

/// An error answer of the API: its status, stable code, message and compat report.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub report: Option<CompatReport>,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, HTTP {})",
            self.message,
            self.code,
            self.status.as_u16()
        )?;
        if let Some(report) = &self.report {
            write!(f, "\n{report}")?;
        }
        Ok(())
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
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let error = &body["error"];
        Err(ApiFailure {
            status,
            code: error["code"].as_str().unwrap_or("unknown").to_string(),
            message: error["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("the daemon answered {status} without an error body")),
            report: serde_json::from_value(body["report"].clone()).ok(),
        }
        .into())
    }

    /// Send and decode a JSON answer.
    pub async fn json(&self, request: RequestBuilder) -> Result<Value> {
        Ok(self.send(request).await?.json().await?)
    }

    /// `GET path` as JSON.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.json(self.request(Method::GET, path)).await
    }
}
