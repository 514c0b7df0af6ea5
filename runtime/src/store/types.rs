//! The records the store keeps.

use crate::engine::Limits;
use serde::{Deserialize, Serialize};

/// Where a job is in its life. Terminal: succeeded, failed, cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for an agent (possibly until a retry's backoff passes).
    Queued,
    /// An agent holds a lease on an attempt.
    Running,
    /// Finished with output.
    Succeeded,
    /// Finished without output: a fatal error, or out of attempts.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    /// The lowercase name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Parse a stored or requested name.
    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the job is finished.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// How an attempt ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptState {
    /// Its agent holds the lease.
    Running,
    /// `run` returned output.
    Succeeded,
    /// A job error or a trap.
    Failed,
    /// Its agent died or lost the lease; the job was returned to the queue.
    Lost,
    /// Stopped by a draining node; not charged to the job.
    Interrupted,
    /// Stopped by cancellation.
    Cancelled,
}

impl AttemptState {
    /// The lowercase name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Running => "running",
            AttemptState::Succeeded => "succeeded",
            AttemptState::Failed => "failed",
            AttemptState::Lost => "lost",
            AttemptState::Interrupted => "interrupted",
            AttemptState::Cancelled => "cancelled",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<AttemptState> {
        [
            AttemptState::Running,
            AttemptState::Succeeded,
            AttemptState::Failed,
            AttemptState::Lost,
            AttemptState::Interrupted,
            AttemptState::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// Why a job failed, as shown in its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    /// The job's code, or the trap reason (`timeout`, `memory-limit`, ...).
    pub code: String,
    /// What happened and what to do.
    pub message: String,
    /// Whether the last attempt's failure was retryable (the job may have run out of attempts).
    pub retryable: bool,
}

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id.
    pub id: String,
    /// The component's blake3 hash (the blob must be stored first).
    pub component: String,
    /// Input bytes for `run`.
    pub input: Vec<u8>,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Per-attempt limits.
    pub limits: Limits,
    /// Extra optional imports declared at submission.
    pub optional_imports: Vec<String>,
    /// The compat report at admission (JSON).
    pub report: serde_json::Value,
    /// kv scope.
    pub kv_scope: String,
    /// `name@version` for task jobs.
    pub task: Option<String>,
    /// Idempotency key, if the client sent one.
    pub idempotency_key: Option<String>,
    /// When it was accepted.
    pub now_ms: i64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// Queue position; the pagination cursor.
    pub seq: i64,
    /// The component's hash.
    pub component: String,
    /// Where it is.
    pub status: JobStatus,
    /// Input bytes.
    #[serde(skip)]
    pub input: Vec<u8>,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Attempts started so far (interrupted ones are not counted).
    pub attempts: u32,
    /// Per-attempt limits.
    pub limits: Limits,
    /// Extra optional imports.
    pub optional_imports: Vec<String>,
    /// The compat report at admission.
    #[serde(skip)]
    pub report: serde_json::Value,
    /// kv scope.
    pub kv_scope: String,
    /// `name@version` for task jobs.
    pub task: Option<String>,
    /// Earliest time of the next attempt (ms since epoch).
    pub run_after_ms: i64,
    /// Accepted at.
    pub created_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// Finished at.
    pub finished_ms: Option<i64>,
    /// Output of a succeeded job.
    #[serde(skip)]
    pub output: Option<Vec<u8>>,
    /// Why it failed (or why the last attempt did).
    pub error: Option<JobFailure>,
    /// Latest progress.
    pub progress: Option<(u8, String)>,
    /// Whether cancellation was requested.
    pub cancel_requested: bool,
}

/// One attempt as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// The agent identity that ran it.
    pub agent: String,
    /// How it ended (or `running`).
    pub state: AttemptState,
    /// Started at.
    pub started_ms: i64,
    /// Ended at.
    pub finished_ms: Option<i64>,
    /// When the lease expires (running attempts).
    pub lease_expires_ms: i64,
    /// The engine outcome (without output bytes), JSON.
    pub outcome: Option<serde_json::Value>,
    /// What the attempt logged.
    #[serde(skip)]
    pub log: Option<String>,
}

/// A job with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// Its attempts, oldest first.
    pub attempt_list: Vec<Attempt>,
}

/// The result of [`Store::insert_job`](super::Store::insert_job).
#[derive(Debug, Clone, PartialEq)]
pub struct Inserted {
    /// The job (new, or the one the idempotency key already named).
    pub job: Job,
    /// False when the idempotency key named an existing job.
    pub created: bool,
}

/// A claimed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The job (status running; `attempts` counts this one).
    pub job: Job,
    /// The attempt's number among all the job's attempts (interrupted ones included).
    pub attempt: u32,
    /// The lease token fencing every write about this attempt.
    pub lease_token: String,
    /// When the lease expires unless extended.
    pub lease_expires_ms: i64,
}

/// What to do with the job when an attempt ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Succeed with output.
    Succeed(Vec<u8>),
    /// Fail for good.
    Fail(JobFailure),
    /// Queue again after `after_ms` (the attempt was charged).
    Retry {
        /// Why the attempt failed.
        failure: JobFailure,
        /// Backoff.
        after_ms: i64,
    },
    /// Cancelled.
    Cancel,
    /// Queue again at once without charging the attempt (a draining node stopped it).
    Requeue,
}

/// How an attempt ended, for [`Store::finish_attempt`](super::Store::finish_attempt).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptEnd {
    /// The attempt's final state.
    pub state: AttemptState,
    /// The engine outcome (JSON, output omitted).
    pub outcome: serde_json::Value,
    /// The attempt's log.
    pub log: String,
    /// What happens to the job.
    pub next: Next,
}

/// One event in a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The attempt it concerns.
    pub attempt: Option<u32>,
    /// When.
    pub at_ms: i64,
    /// `queued`, `claimed`, `succeeded`, `retry`, `lost`, ...
    pub kind: String,
    /// A sentence.
    pub message: String,
}

/// Counts for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Jobs by status.
    pub jobs: Vec<(JobStatus, u64)>,
}
