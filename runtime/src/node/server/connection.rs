//! One HTTP/1.1 connection and its deadlines.
//!
//! hyper's own header timeout also runs while a keep-alive connection waits for its next
//! request, so it cannot be told apart from an idle timeout; this module keeps both itself.
//! A connection is in one of four phases:
//!
//! - `Fresh`: accepted, no request yet: the first request's headers must arrive within the
//!   header timeout of the accept (a TLS handshake counts);
//! - `Busy`: a request is being served (from its headers until its response is sent or
//!   dropped); its body must arrive within the body timeout (`408` otherwise);
//! - `Idle`: between requests: the next must start within the idle timeout, or the
//!   connection is closed gracefully;
//! - `Head`: bytes of the next request arrived: its headers must be complete within the
//!   header timeout of the first byte.
//!
//! A connection that misses a header deadline is dropped at once. When the server stops,
//! each connection is closed gracefully: the request in flight is answered first.

use crate::wire::{ErrorBody, ErrorCode, ErrorDetail};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::ServerConfig;

/// Serve one connection until it closes, misses a deadline, or the server stops.
pub(super) async fn serve<S>(
    io: S,
    peer: SocketAddr,
    started: Instant,
    app: Router,
    config: &ServerConfig,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(started));
    let service = Service {
        app,
        activity: activity.clone(),
        body_timeout: config.body_timeout,
        peer,
    };
    let io = TokioIo::new(Watched {
        io,
        activity: activity.clone(),
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = *stopping.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let due = activity.due(config);
        let changed = activity.changed.notified();
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                return;
            }
            _ = changed => {}
            _ = tokio::time::sleep_until(due.map_or(started, |(at, _)| at)), if due.is_some() => {
                match activity.due(config) {
                    Some((at, Missed::Headers)) if at <= Instant::now() => {
                        tracing::debug!(%peer, "request headers not received within the header timeout; closed");
                        return;
                    }
                    Some((at, Missed::Idle)) if at <= Instant::now() && !closing => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ => {}
                }
            }
            _ = stopping.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Which deadline a connection can miss next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missed {
    /// A request's headers (close at once).
    Headers,
    /// The next request on a keep-alive connection (close gracefully).
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fresh,
    Busy,
    Idle,
    Head,
}

struct State {
    phase: Phase,
    /// When the phase began (for `Head`: the first byte of the request).
    since: Instant,
    in_flight: usize,
}

/// What a connection is doing, as its reads and its requests tell.
struct Activity {
    state: Mutex<State>,
    /// Signalled when the phase changes, so the deadline is looked at again.
    changed: Notify,
}

impl Activity {
    fn new(started: Instant) -> Activity {
        Activity {
            state: Mutex::new(State {
                phase: Phase::Fresh,
                since: started,
                in_flight: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next deadline and what missing it means (`None` while a request is served).
    fn due(&self, config: &ServerConfig) -> Option<(Instant, Missed)> {
        let state = self.state();
        match state.phase {
            Phase::Busy => None,
            Phase::Fresh | Phase::Head => {
                Some((state.since + config.header_timeout, Missed::Headers))
            }
            Phase::Idle => Some((state.since + config.idle_timeout, Missed::Idle)),
        }
    }

    /// Bytes arrived: on an idle connection, a request begins.
    fn read(&self) {
        let mut state = self.state();
        if state.phase == Phase::Idle {
            state.phase = Phase::Head;
            state.since = Instant::now();
            drop(state);
            self.changed.notify_one();
        }
    }

    /// A request's headers arrived; it is served until the guard drops.
    fn request_started(self: &Arc<Self>) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.phase = Phase::Busy;
        drop(state);
        self.changed.notify_one();
        InFlight(self.clone())
    }
}

/// A request being served; when the last one's response is sent (or dropped), the
/// connection is idle.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.phase = Phase::Idle;
            state.since = Instant::now();
            drop(state);
            self.0.changed.notify_one();
        }
    }
}

/// The connection's stream, reporting reads to its [`Activity`].
struct Watched<S> {
    io: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The app as one connection's hyper service: each request is counted in flight until its
/// response is sent, carries the peer's address (`ConnectInfo`), and has its body read under
/// the body deadline.
#[derive(Clone)]
struct Service {
    app: Router,
    activity: Arc<Activity>,
    body_timeout: Duration,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.request_started();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let expired = Arc::new(AtomicBool::new(false));
        let body = if body.is_end_stream() {
            Body::new(body)
        } else {
            Body::new(Deadline {
                body,
                sleep: Box::pin(tokio::time::sleep(self.body_timeout)),
                expired: expired.clone(),
            })
        };
        let app = self.app.clone();
        let timeout = self.body_timeout;
        Box::pin(async move {
            let Ok(response) = app.oneshot(Request::from_parts(parts, body)).await;
            let response = if expired.load(Ordering::Relaxed) {
                body_timed_out(timeout)
            } else {
                response
            };
            // The response's body holds the request in flight until hyper has sent it.
            Ok(response.map(|body| {
                Body::new(Held {
                    body,
                    _in_flight: in_flight,
                })
            }))
        })
    }
}

/// A response body that keeps its request in flight until it is dropped (sent, or the
/// connection closed).
struct Held {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Held {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// `408 request-timeout`, closing the connection (the rest of the body is not read).
fn body_timed_out(timeout: Duration) -> Response<Body> {
    let body = ErrorBody {
        error: ErrorDetail {
            code: ErrorCode::RequestTimeout,
            message: format!(
                "the request body did not arrive within {} ms (--body-timeout-ms); send it faster, or ask the operator for a longer body timeout",
                timeout.as_millis()
            ),
        },
        report: None,
    };
    let mut response = axum::response::IntoResponse::into_response((
        StatusCode::REQUEST_TIMEOUT,
        axum::Json(body),
    ));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The body deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body timeout")]
struct BodyTimedOut;

/// A request body that fails once its deadline passes (and says so in `expired`).
struct Deadline {
    body: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for Deadline {
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
