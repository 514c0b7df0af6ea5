//! The HTTP server's transport: the accept loop, TLS, the connection cap and the deadlines
//! that keep slow or idle clients from holding the node.
//!
//! - [`serve`] accepts connections until told to stop, then stops accepting, asks every open
//!   connection to finish (HTTP/1.1 graceful close: the request in flight is answered, then the
//!   connection closes) and returns once they all have;
//! - over [`ServerConfig::max_connections`] a new connection is answered `503` with
//!   `Retry-After` and closed, before the process runs out of descriptors; accept errors
//!   (out of descriptors above all) back off instead of spinning;
//! - `connection`: one connection's deadlines (headers, keep-alive idle, request body);
//! - `tls`: the certificate and key behind `--tls-cert` / `--tls-key`;
//! - `limits`: the descriptor limit, raised to its hard maximum at start.

mod connection;
mod limits;
mod tls;

pub use limits::{DescriptorLimit, raise_descriptor_limit};
pub use tls::{TlsError, TlsFiles};

use crate::wire::{ErrorBody, ErrorCode, ErrorDetail};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

/// Descriptors kept free for everything but client connections (store, compile cache,
/// PostgreSQL pool and listeners, refusals, logs).
const RESERVED_DESCRIPTORS: u64 = 256;
/// The default connection cap never exceeds this, however high the descriptor limit.
const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;
/// Connections over the cap being answered `503` at once; beyond this they are closed
/// without an answer.
const MAX_REFUSING: usize = 64;
/// How long refusing one connection may take (handshake, answer, the client's close).
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// How long the accept loop waits after an accept error (out of descriptors, above all).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The server's settings (`driftless serve`'s transport flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long a client has to send a request's headers: from the connection's start (TLS
    /// handshake included) for its first request, from the first byte for a later one.
    /// A connection that misses it is closed.
    pub header_timeout: Duration,
    /// How long a client has to send a request's whole body, from the end of its headers;
    /// missed: `408 request-timeout` and the connection is closed.
    pub body_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request; then it is closed.
    pub idle_timeout: Duration,
    /// Most client connections served at once (`None`: the descriptor limit less 256, at most
    /// 10,000). Over it, new connections are answered `503 too-many-connections` and closed.
    pub max_connections: Option<usize>,
    /// The certificate and key to serve HTTPS with (`None`: plain HTTP).
    pub tls: Option<TlsFiles>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            max_connections: None,
            tls: None,
        }
    }
}

impl ServerConfig {
    /// The connection cap for a process whose descriptor limit is `descriptors`: the
    /// configured one, lowered (with a warning) to what the limit allows.
    pub fn connection_cap(&self, descriptors: u64) -> usize {
        let allowed = if descriptors > RESERVED_DESCRIPTORS * 2 {
            descriptors - RESERVED_DESCRIPTORS
        } else {
            descriptors / 2
        }
        .max(1);
        match self.max_connections {
            Some(n) if n as u64 > allowed => {
                tracing::warn!(
                    max_connections = n,
                    allowed,
                    descriptors,
                    "--max-connections is more than the descriptor limit allows; serving at most {allowed} connections (raise the hard limit, `ulimit -Hn`, to allow more)"
                );
                allowed as usize
            }
            Some(n) => n.max(1),
            None => allowed.min(DEFAULT_MAX_CONNECTIONS) as usize,
        }
    }
}

/// A bound server, ready to [`serve`](Server::serve).
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
    max_connections: usize,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Server {
    /// A server on `listener`: loads the TLS certificate and key if configured.
    pub fn new(
        listener: TcpListener,
        config: ServerConfig,
        max_connections: usize,
    ) -> Result<Server, TlsError> {
        let tls = config.tls.as_ref().map(TlsFiles::acceptor).transpose()?;
        Ok(Server {
            listener,
            config,
            max_connections,
            tls,
        })
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serve `app` until `stop` resolves; then stop accepting and finish every open
    /// connection (the caller bounds how long that may take).
    pub async fn serve(self, app: Router, stop: impl Future<Output = ()>) {
        let Server {
            listener,
            config,
            max_connections,
            tls,
        } = self;
        let config = Arc::new(config);
        let (open, _) = watch::channel(0usize);
        let open = Arc::new(open);
        let refusing = Arc::new(AtomicUsize::new(0));
        let (stopping, _) = watch::channel(false);
        let mut last_accept_warning: Option<Instant> = None;
        tokio::pin!(stop);
        loop {
            let accepted = tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    if last_accept_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(5)) {
                        tracing::warn!(error = %e, "cannot accept connections (out of descriptors?); backing off");
                        last_accept_warning = Some(Instant::now());
                    }
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            };
            let started = Instant::now();
            let _ = stream.set_nodelay(true);
            if *open.borrow() >= max_connections {
                refuse(stream, tls.clone(), &refusing, max_connections);
                continue;
            }
            open.send_modify(|n| *n += 1);
            let slot = Slot(open.clone());
            let app = app.clone();
            let config = config.clone();
            let tls = tls.clone();
            let stopping = stopping.subscribe();
            tokio::spawn(async move {
                let _slot = slot;
                let Some(tls) = tls else {
                    connection::serve(stream, peer, started, app, &config, stopping).await;
                    return;
                };
                let handshake =
                    tokio::time::timeout_at(started + config.header_timeout, tls.accept(stream));
                match handshake.await {
                    Ok(Ok(stream)) => {
                        connection::serve(stream, peer, started, app, &config, stopping).await
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake not done within the header timeout; closed")
                    }
                }
            });
        }
        // Stop accepting (connections still queued on this socket are reset, as a process
        // replacing this one has its own socket by now), then let every connection finish.
        drop(listener);
        stopping.send_replace(true);
        let mut open = open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }
}

/// One open connection; counted until dropped.
struct Slot(Arc<watch::Sender<usize>>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// Accept errors about one connection only (it was reset before it was accepted): accept the
/// next at once. Every other error (out of descriptors or memory) backs off.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

/// Answer a connection over the cap `503 too-many-connections` and close it, in the
/// background and within [`REFUSAL_TIME`]; beyond [`MAX_REFUSING`] at once, close it at once.
fn refuse(
    stream: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    refusing: &Arc<AtomicUsize>,
    max_connections: usize,
) {
    if refusing.fetch_add(1, Ordering::Relaxed) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let refusing = refusing.clone();
    tokio::spawn(async move {
        let answer = over_cap_answer(max_connections);
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            match tls {
                None => answer_and_close(stream, &answer).await,
                Some(tls) => answer_and_close(tls.accept(stream).await?, &answer).await,
            }
        })
        .await;
        refusing.fetch_sub(1, Ordering::Relaxed);
    });
}

/// The raw `503` answer to a connection over the cap.
fn over_cap_answer(max_connections: usize) -> Vec<u8> {
    let body = serde_json::to_vec(&ErrorBody {
        error: ErrorDetail {
            code: ErrorCode::TooManyConnections,
            message: format!(
                "this node is serving its maximum of {max_connections} connections (--max-connections); retry in a moment, reuse connections, or spread clients over more nodes"
            ),
        },
        report: None,
    })
    .unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

/// Send `answer`, close our side, and read what the client still sends until it closes
/// (at most 64 KiB), so the answer is not lost to a reset.
async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    answer: &[u8],
) -> std::io::Result<()> {
    io.write_all(answer).await?;
    io.shutdown().await?;
    let mut buf = [0u8; 4096];
    let mut read = 0;
    while read < 64 << 10 {
        match io.read(&mut buf).await? {
            0 => break,
            n => read += n,
        }
    }
    Ok(())
}

/// The address a server announces: `http://ADDR` or `https://ADDR`.
pub fn url(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{addr}", if tls { "https" } else { "http" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_descriptors_for_the_rest() {
        let config = ServerConfig::default();
        assert_eq!(config.connection_cap(1024), 768);
        assert_eq!(config.connection_cap(1 << 20), 10_000);
        assert_eq!(config.connection_cap(300), 150);
    }

    #[test]
    fn an_explicit_cap_is_lowered_to_what_the_descriptors_allow() {
        let config = ServerConfig {
            max_connections: Some(5000),
            ..ServerConfig::default()
        };
        assert_eq!(config.connection_cap(1024), 768);
        assert_eq!(config.connection_cap(20_000), 5000);
    }
}
