//! The body of every error the API answers with, and its stable codes.

use super::CompatReport;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Declares [`ErrorCode`] with each code's name on the wire and its HTTP status, so the list
/// the OpenAPI test compares is complete by construction.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal, $status:ident;)*) => {
        /// A stable, machine-readable error code. Each code always comes with the same status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* #[serde(rename = $name)] $variant,)*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant),*];

            /// Its name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                }
            }

            /// The HTTP status it comes with.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    /// The request is malformed (query, path, multipart body, rollback body).
    BadRequest = "bad-request", BAD_REQUEST;
    /// The job spec is not valid or its limits are out of range.
    BadSpec = "bad-spec", BAD_REQUEST;
    /// The bytes are not a driftless component.
    InvalidComponent = "invalid-component", BAD_REQUEST;
    /// The task name or reference is not valid.
    BadTaskName = "bad-task-name", BAD_REQUEST;
    /// A schedule's name, cron pattern or time zone is not valid.
    BadSchedule = "bad-schedule", BAD_REQUEST;
    /// The request carries no token, or one that is not valid (unknown or revoked); the answer
    /// has a `WWW-Authenticate: Bearer` header.
    Unauthorized = "unauthorized", UNAUTHORIZED;
    /// The token is valid but lacks the scope the route needs; the message names both.
    Forbidden = "forbidden", FORBIDDEN;
    /// Open mode: the `Host` header is not a loopback name nor an `--allowed-host`.
    HostNotAllowed = "host-not-allowed", FORBIDDEN;
    /// Open mode: a state-changing request a web page could have sent (a simple content type
    /// and no `x-driftless-client` header).
    CrossSiteRequest = "cross-site-request", FORBIDDEN;
    /// No such job.
    NotFound = "not-found", NOT_FOUND;
    /// The job is no longer stored: its id was made longer ago than the daemon's
    /// `--retention`, so it was deleted after it finished, with its attempts, logs and output.
    JobExpired = "job-expired", NOT_FOUND;
    /// A JSON submission names a component hash that is not stored.
    UnknownComponent = "unknown-component", NOT_FOUND;
    /// No such task or version.
    UnknownTask = "unknown-task", NOT_FOUND;
    /// No such schedule.
    UnknownSchedule = "unknown-schedule", NOT_FOUND;
    /// The path is not an API route.
    NoSuchRoute = "no-such-route", NOT_FOUND;
    /// The path exists but does not take this method.
    MethodNotAllowed = "method-not-allowed", METHOD_NOT_ALLOWED;
    /// The request conflicts with stored state.
    Conflict = "conflict", CONFLICT;
    /// An attempt's lease is no longer valid.
    StaleLease = "stale-lease", CONFLICT;
    /// The job has no output (it has not succeeded).
    NoOutput = "no-output", CONFLICT;
    /// The task version is pinned by queued or running jobs.
    VersionInUse = "version-in-use", CONFLICT;
    /// The job names (or resolved to) a task version that was unregistered.
    TaskVersionUnregistered = "task-version-unregistered", CONFLICT;
    /// The upload is larger than the node accepts.
    TooLarge = "too-large", PAYLOAD_TOO_LARGE;
    /// The job's JSON input (or the JSON body carrying it) is larger than `--max-input-bytes`.
    InputTooLarge = "input-too-large", PAYLOAD_TOO_LARGE;
    /// The submission's Content-Type is not accepted.
    UnsupportedMediaType = "unsupported-media-type", UNSUPPORTED_MEDIA_TYPE;
    /// The component's imports fail the version check; the body carries the report.
    Rejected = "rejected", UNPROCESSABLE_ENTITY;
    /// The component passed the version check but does not compile on this runtime.
    DoesNotCompile = "does-not-compile", UNPROCESSABLE_ENTITY;
    /// The linker refused imports the version check accepted; the body carries the report.
    LinkFailed = "link-failed", UNPROCESSABLE_ENTITY;
    /// The `Idempotency-Key` named a job submitted with a different request.
    IdempotencyKeyReused = "idempotency-key-reused", UNPROCESSABLE_ENTITY;
    /// The job store failed; nothing was changed.
    StoreUnavailable = "store-unavailable", SERVICE_UNAVAILABLE;
    /// The job store is busy with other writers; nothing was changed.
    StoreBusy = "store-busy", SERVICE_UNAVAILABLE;
    /// The store does not answer (`GET /readyz`).
    NotReady = "not-ready", SERVICE_UNAVAILABLE;
    /// The node is draining (`GET /readyz`).
    Draining = "draining", SERVICE_UNAVAILABLE;
    /// Every compile worker is busy and the compile queue is full; retry after `Retry-After`.
    CompileBusy = "compile-busy", SERVICE_UNAVAILABLE;
    /// Inspecting and compiling the component took longer than the compile deadline; the
    /// compile goes on and is cached, so a retry after `Retry-After` is answered at once.
    CompileTimeout = "compile-timeout", SERVICE_UNAVAILABLE;
    /// The request body did not arrive within the body timeout; the connection is closed.
    RequestTimeout = "request-timeout", REQUEST_TIMEOUT;
    /// The node serves its maximum of connections; the connection is closed, retry later.
    TooManyConnections = "too-many-connections", SERVICE_UNAVAILABLE;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The code and message of an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable and machine-readable.
    pub code: ErrorCode,
    /// What happened, why, and what to do.
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
    /// The compat report, for `rejected` and `link-failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<CompatReport>>,
}
