//! The states of a job and of its attempts, and what an agent decides when an attempt ends:
//! the closed sets the lifecycle's rules move between (the store keeps them, guarded by
//! `CHECK` constraints).

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
