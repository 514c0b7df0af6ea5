//! One error type for the HTTP API: a status, a stable `code`, a message that says what to do,
//! and the compat report where one applies.

use crate::admission::AdmissionError;
use crate::compat::CompatReport;
use crate::engine::{PoolError, PrepareError};
use crate::store::StoreError;
use crate::wire::{ErrorBody, ErrorCode, ErrorDetail};
use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::response::{IntoResponse, Response};

/// An API error; its HTTP status is its code's.
#[derive(Debug)]
pub struct ApiError {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
    /// The compat report, for version-check rejections.
    pub report: Option<Box<CompatReport>>,
    /// When retrying can help: answered as `Retry-After` (whole seconds).
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// An error without a report.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            report: None,
            retry_after: None,
        }
    }

    /// With the compat report.
    pub fn with_report(mut self, report: Box<CompatReport>) -> Self {
        self.report = Some(report);
        self
    }

    /// With a `Retry-After` header.
    pub fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// 400 `bad-request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// 404 `not-found`.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::NotFound,
            format!(
                "{what} does not exist; check the name or id ({})",
                if what.to_string().starts_with("job") {
                    "GET /v1/jobs lists jobs"
                } else {
                    "GET /v1/tasks lists tasks and their versions"
                }
            ),
        )
    }

    /// 404 for a job id the store does not have: `job-expired` when the id (`job_` and a
    /// UUIDv7, which carries the time it was made) is older than `retention` at `now_ms`, as
    /// the job was then most likely deleted by retention; `not-found` otherwise.
    pub fn job_missing(id: &str, retention: std::time::Duration, now_ms: i64) -> Self {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        match job_created_ms(id) {
            Some(created) if created < now_ms.saturating_sub(retention_ms) => Self::new(
                ErrorCode::JobExpired,
                format!(
                    "job {id} is no longer stored: it was submitted {} ago, and finished jobs are deleted {} after they end (the daemon's --retention), with their attempts, events, logs and output. Read results within the retention, or start the daemons with a longer --retention (DRIFTLESS_RETENTION) to keep jobs longer",
                    ago(now_ms - created),
                    crate::node::format_duration(retention)
                ),
            ),
            _ => Self::not_found(format!("job {id}")),
        }
    }
}

/// When a job id was made, in milliseconds since the epoch: job ids are `job_` and a UUIDv7
/// in simple form (32 hex digits), whose first 48 bits are that time.
pub fn job_created_ms(id: &str) -> Option<i64> {
    let hex = id.strip_prefix("job_").filter(|h| h.len() == 32)?;
    let uuid = uuid::Uuid::try_parse(hex).ok()?;
    if uuid.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = uuid.get_timestamp()?.to_unix();
    Some(secs as i64 * 1000 + i64::from(nanos / 1_000_000))
}

/// A past span for people: `3 days`, `5 hours`, `12 minutes`, `40 seconds`.
fn ago(ms: i64) -> String {
    let secs = (ms / 1000).max(0);
    let (n, unit) = match secs {
        s if s >= 2 * 86_400 => (s / 86_400, "days"),
        s if s >= 2 * 3600 => (s / 3600, "hours"),
        s if s >= 120 => (s / 60, "minutes"),
        s => (s, "seconds"),
    };
    format!("{n} {unit}")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
            report: self.report,
        };
        let mut response = (self.code.status(), Json(body)).into_response();
        if let Some(after) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(after.as_secs().max(1)),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            StoreError::TaskVersionGone { task, version } => ApiError::new(
                ErrorCode::TaskVersionUnregistered,
                format!(
                    "version {version} of task {task} was unregistered, so nothing was stored; submit to `{task}` (its current version) or another version (GET /v1/tasks/{task} lists them)"
                ),
            ),
            StoreError::StaleLease | StoreError::IdentityLost(_) => {
                ApiError::new(ErrorCode::StaleLease, e.to_string())
            }
            StoreError::Contention(_) => ApiError::new(ErrorCode::StoreBusy, e.to_string()),
            StoreError::CannotWrite(why) => {
                tracing::error!(error = %why, "the store cannot write");
                ApiError::new(ErrorCode::StoreUnavailable, why.to_string())
            }
            StoreError::Backend(m) => {
                tracing::error!(error = %m, "store failure");
                ApiError::new(
                    ErrorCode::StoreUnavailable,
                    "the job store failed; nothing was changed. Retry shortly; if it persists, check the daemon's log and disk",
                )
            }
        }
    }
}

impl From<PrepareError> for ApiError {
    fn from(e: PrepareError) -> Self {
        match e {
            PrepareError::Invalid(i) => ApiError::new(ErrorCode::InvalidComponent, i.to_string()),
            PrepareError::Rejected(report) => ApiError::new(
                ErrorCode::Rejected,
                format!(
                    "the job's imports do not fit this host, so nothing was stored: {}",
                    report.summary
                ),
            )
            .with_report(report),
            PrepareError::Compile(m) => ApiError::new(ErrorCode::DoesNotCompile, m),
            PrepareError::Link { report, message } => {
                ApiError::new(ErrorCode::LinkFailed, message).with_report(report)
            }
            PrepareError::Pool(e) => e.into(),
        }
    }
}

impl From<AdmissionError> for ApiError {
    fn from(e: AdmissionError) -> Self {
        match e {
            AdmissionError::Invalid(i) => PrepareError::Invalid(i).into(),
            AdmissionError::Prepare(p) => p.into(),
            AdmissionError::Store(s) => s.into(),
            AdmissionError::UnknownComponent(_) => {
                ApiError::new(ErrorCode::UnknownComponent, e.to_string())
            }
            AdmissionError::UnknownTask { .. } => {
                ApiError::new(ErrorCode::UnknownTask, e.to_string())
            }
            AdmissionError::Rejected(report) => {
                ApiError::new(ErrorCode::Rejected, crate::admission::refusal(&report))
                    .with_report(report)
            }
        }
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        let code = match e {
            PoolError::Busy { .. } => ErrorCode::CompileBusy,
            PoolError::TimedOut { .. } => ErrorCode::CompileTimeout,
            PoolError::Failed(_) => ErrorCode::DoesNotCompile,
        };
        let error = ApiError::new(code, e.to_string());
        match e.retry_after() {
            Some(after) => error.with_retry_after(after),
            None => error,
        }
    }
}

/// `axum::extract::Query` whose rejection is the API's JSON error (`bad-request`).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::bad_request(format!(
            "the query string is not valid: {}; see GET /openapi.json for each route's parameters",
            e.body_text()
        ))
    }
}

/// `axum::extract::Path` whose rejection is the API's JSON error (`bad-request`).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::bad_request(format!(
            "the path is not valid: {}; see GET /openapi.json for each route's parameters",
            e.body_text()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_missing_job_older_than_the_retention_is_told_expired_else_not_found() {
        let id = format!("job_{}", uuid::Uuid::now_v7().simple());
        let made = job_created_ms(&id).unwrap();
        let now = crate::store::now_ms();
        assert!(
            (now - made).abs() < 5_000,
            "a v7 id carries its time: {made} vs {now}"
        );
        let day = Duration::from_secs(86_400);
        let later = made + 3 * 86_400_000;
        let expired = ApiError::job_missing(&id, day, later);
        assert_eq!(expired.code, ErrorCode::JobExpired);
        assert_eq!(expired.code.status(), axum::http::StatusCode::NOT_FOUND);
        assert!(
            expired.message.contains("submitted 3 days ago")
                && expired.message.contains("deleted 1d after they end")
                && expired.message.contains("--retention"),
            "{}",
            expired.message
        );
        // Within the retention, or not a v7 job id: simply not found.
        assert_eq!(
            ApiError::job_missing(&id, day, made + 1000).code,
            ErrorCode::NotFound
        );
        for other in [
            "job_nope",
            "nope",
            &format!("job_{}", uuid::Uuid::new_v4().simple()),
        ] {
            assert_eq!(
                ApiError::job_missing(other, day, later).code,
                ErrorCode::NotFound
            );
        }
    }
}
