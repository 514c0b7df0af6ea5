//! The job and attempt state machine: what each way of ending an attempt does to its job, and
//! the event that tells it.

use super::states::{JobFailure, JobStatus, Next};

/// The kinds of event a job's history holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Accepted and stored.
    Queued,
    /// An agent claimed an attempt.
    Claimed,
    /// An attempt succeeded.
    Succeeded,
    /// An attempt failed and the job failed.
    Failed,
    /// An attempt failed and the job waits for another.
    Retry,
    /// The job was cancelled.
    Cancelled,
    /// Cancellation of a running job was requested.
    CancelRequested,
    /// A draining node stopped an attempt; the job is queued again.
    Interrupted,
    /// An attempt was lost; the job is queued again.
    Lost,
    /// An attempt's kv reads changed before it committed; it runs again.
    Conflict,
}

impl EventKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Queued => "queued",
            EventKind::Claimed => "claimed",
            EventKind::Succeeded => "succeeded",
            EventKind::Failed => "failed",
            EventKind::Retry => "retry",
            EventKind::Cancelled => "cancelled",
            EventKind::CancelRequested => "cancel-requested",
            EventKind::Interrupted => "interrupted",
            EventKind::Lost => "lost",
            EventKind::Conflict => "kv-conflict",
        }
    }
}

/// The placeholder for an attempt's number in [`Told::message`], filled in by the backend
/// when the number is only known inside its statement.
pub const ATTEMPT: &str = "{attempt}";

/// An event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    /// Its kind.
    pub kind: EventKind,
    /// Its sentence; may hold [`ATTEMPT`] where the attempt's number goes.
    pub message: String,
}

impl Told {
    fn new(kind: EventKind, message: String) -> Told {
        Told { kind, message }
    }

    /// The sentence with the attempt's number filled in.
    pub fn message_for(&self, attempt: u32) -> String {
        self.message.replace(ATTEMPT, &attempt.to_string())
    }
}

/// What happens to a running job's row when its attempt ends.
#[derive(Debug, Clone, PartialEq)]
pub struct JobMove {
    /// Its status after.
    pub status: JobStatus,
    /// Output to record (a success).
    pub output: Option<Vec<u8>>,
    /// The job's `error` after: `Some(None)` clears it, `None` keeps it.
    pub error: Option<Option<JobFailure>>,
    /// The next attempt's earliest start, when the job is queued again.
    pub run_after_ms: Option<i64>,
    /// Whether the attempt is given back (not charged): a draining node stopped it, or its
    /// kv reads changed before it committed.
    pub uncharge: bool,
    /// Whether this move is a re-run for a kv conflict (counted against the bound).
    pub conflict: bool,
    /// The event that tells it.
    pub told: Told,
}

impl JobMove {
    /// Queued again, nothing else changed: the base every move is written from.
    fn base() -> JobMove {
        JobMove {
            status: JobStatus::Queued,
            output: None,
            error: None,
            run_after_ms: None,
            uncharge: false,
            conflict: false,
            told: Told::new(EventKind::Queued, String::new()),
        }
    }

    /// The job's `error` column after, as JSON, when it changes (`Some(None)`: cleared).
    pub fn error_json(&self) -> Option<Option<String>> {
        self.error.as_ref().map(|e| {
            e.as_ref()
                .map(|f| serde_json::to_string(f).expect("a failure serializes"))
        })
    }

    /// When the job finished, if this move finishes it.
    pub fn finished_ms(&self, now: i64) -> Option<i64> {
        self.status.is_terminal().then_some(now)
    }
}

/// The job's move when its attempt ends as `next` (decided by the agent).
pub fn ended(next: &Next, now: i64) -> JobMove {
    let keep = JobMove::base();
    match next {
        Next::Succeed(output) => JobMove {
            status: JobStatus::Succeeded,
            output: Some(output.clone()),
            error: Some(None),
            told: Told::new(EventKind::Succeeded, format!("attempt {ATTEMPT} succeeded")),
            ..keep
        },
        Next::Fail(f) => JobMove {
            status: JobStatus::Failed,
            error: Some(Some(f.clone())),
            told: Told::new(
                EventKind::Failed,
                format!("attempt {ATTEMPT} failed: {}: {}", f.code, f.message),
            ),
            ..keep
        },
        Next::Retry {
            failure: f,
            after_ms,
        } => JobMove {
            status: JobStatus::Queued,
            error: Some(Some(f.clone())),
            run_after_ms: Some(now + after_ms),
            told: Told::new(
                EventKind::Retry,
                format!(
                    "attempt {ATTEMPT} failed ({}: {}); retrying in {after_ms} ms",
                    f.code, f.message
                ),
            ),
            ..keep
        },
        Next::Cancel => JobMove {
            status: JobStatus::Cancelled,
            told: Told::new(
                EventKind::Cancelled,
                format!("attempt {ATTEMPT} was stopped by cancellation"),
            ),
            ..keep
        },
        Next::Requeue => JobMove {
            status: JobStatus::Queued,
            run_after_ms: Some(now),
            uncharge: true,
            told: Told::new(
                EventKind::Interrupted,
                format!(
                    "attempt {ATTEMPT} was interrupted by a draining node and queued again; it is not charged"
                ),
            ),
            ..keep
        },
    }
}

/// Why running attempts are lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossCause {
    /// The agent identity started again: its earlier incarnation is gone.
    AgentRestarted,
    /// Nobody renewed the lease in time.
    LeaseExpired,
}

impl LossCause {
    /// The reason, as events and failures word it.
    pub fn why(self) -> &'static str {
        match self {
            LossCause::AgentRestarted => "its agent restarted under the same identity",
            LossCause::LeaseExpired => "its lease expired",
        }
    }
}

/// A running attempt about to be lost, with what decides its job's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostAttempt {
    /// The job.
    pub job: String,
    /// The attempt's number.
    pub number: u32,
    /// The agent that ran it.
    pub agent: String,
    /// The job's charged attempts (this one included).
    pub attempts: u32,
    /// The attempts the job allows.
    pub max_attempts: u32,
    /// Whether cancellation was requested.
    pub cancel_requested: bool,
}

/// The job's move when its attempt is lost: cancelled if cancellation was requested, failed
/// when it has no attempts left, else queued again at once.
pub fn lost(a: &LostAttempt, cause: LossCause, now: i64) -> JobMove {
    let (why, number, agent) = (cause.why(), a.number, &a.agent);
    let keep = JobMove::base();
    if a.cancel_requested {
        JobMove {
            status: JobStatus::Cancelled,
            told: Told::new(
                EventKind::Cancelled,
                format!(
                    "attempt {number} on {agent} was lost ({why}) after cancellation was requested; the job is cancelled"
                ),
            ),
            ..keep
        }
    } else if a.attempts >= a.max_attempts {
        let failure = JobFailure {
            code: "lost".into(),
            message: format!(
                "attempt {number} was lost ({why}) and the job has no attempts left ({} allowed)",
                a.max_attempts
            ),
            retryable: true,
        };
        JobMove {
            status: JobStatus::Failed,
            told: Told::new(EventKind::Failed, failure.message.clone()),
            error: Some(Some(failure)),
            ..keep
        }
    } else {
        JobMove {
            status: JobStatus::Queued,
            run_after_ms: Some(now),
            told: Told::new(
                EventKind::Lost,
                format!("attempt {number} on {agent} was lost ({why}); the job is queued again"),
            ),
            ..keep
        }
    }
}

/// How many times one job's attempts may run again for kv conflicts without being charged;
/// after that a conflict is charged like a retryable failure.
pub const FREE_CONFLICTS: u32 = 25;

/// A succeeded attempt whose kv reads changed before it could commit, with what decides its
/// job's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflicted {
    /// The attempt's number.
    pub number: u32,
    /// The job's charged attempts (this one included).
    pub attempts: u32,
    /// The attempts the job allows.
    pub max_attempts: u32,
    /// The job's uncharged conflict re-runs so far.
    pub conflicts: u32,
    /// What changed (`bucket/key`, `bucket/prefix*`).
    pub changed: Vec<String>,
}

/// The job's move when its attempt succeeded but another attempt changed what it read in kv
/// first: its writes are discarded and it runs again at once, not charged, up to
/// [`FREE_CONFLICTS`] times; then the conflict counts as a retryable failure.
pub fn conflicted(c: &Conflicted, now: i64) -> JobMove {
    let (number, changed) = (c.number, c.changed.join(", "));
    let keep = JobMove {
        run_after_ms: Some(now),
        uncharge: true,
        conflict: true,
        ..JobMove::base()
    };
    if c.conflicts < FREE_CONFLICTS {
        return JobMove {
            told: Told::new(
                EventKind::Conflict,
                format!(
                    "attempt {number} succeeded, but kv data it read changed before it could commit ({changed}); its kv writes were discarded and it runs again, not charged (conflict {} of {FREE_CONFLICTS})",
                    c.conflicts + 1
                ),
            ),
            ..keep
        };
    }
    let failure = JobFailure {
        code: "kv-conflict".into(),
        message: format!(
            "attempt {number}'s kv reads kept changing before it could commit ({changed}; {FREE_CONFLICTS} re-runs); its kv writes were discarded. Fewer jobs writing the same keys at once, or smaller read sets, avoid this"
        ),
        retryable: true,
    };
    let out_of_attempts = c.attempts >= c.max_attempts;
    JobMove {
        status: if out_of_attempts {
            JobStatus::Failed
        } else {
            JobStatus::Queued
        },
        run_after_ms: (!out_of_attempts).then_some(now),
        uncharge: false,
        conflict: false,
        told: Told::new(
            if out_of_attempts {
                EventKind::Failed
            } else {
                EventKind::Retry
            },
            failure.message.clone(),
        ),
        error: Some(Some(failure)),
        ..keep
    }
}

/// A job accepted and stored.
pub fn queued(delayed_until: Option<i64>, key: Option<(&str, u32)>) -> Told {
    let mut told = String::from("accepted and queued");
    if let Some(at) = delayed_until {
        told.push_str(&format!("; runs no sooner than {}", rfc3339(at)));
    }
    if let Some((key, limit)) = key {
        told.push_str(&format!(
            "; at most {limit} job(s) of concurrency key {key:?} are ready or running at once"
        ));
    }
    Told::new(EventKind::Queued, told)
}

/// A time (ms since the epoch) as RFC 3339 UTC, to the millisecond.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms since the epoch"))
}

/// An attempt claimed by `agent`.
pub fn claimed(agent: &str) -> Told {
    Told::new(
        EventKind::Claimed,
        format!("attempt {ATTEMPT} claimed by {agent}"),
    )
}

/// What a cancellation request does to a job in `status`: a queued job is cancelled at once
/// (`true`, with its event), a running one is flagged for its agent to stop (`false`), a
/// finished one is left as it is (`None`).
pub fn cancel(status: JobStatus) -> Option<(bool, Told)> {
    match status {
        JobStatus::Queued => Some((
            true,
            Told::new(EventKind::Cancelled, "cancelled before it ran".into()),
        )),
        JobStatus::Running => Some((
            false,
            Told::new(
                EventKind::CancelRequested,
                "cancellation requested; the running attempt is being stopped".into(),
            ),
        )),
        _ => None,
    }
}

/// A fresh lease token: 128 random bits, hex.
pub fn new_token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(attempts: u32, max: u32, cancel: bool) -> LostAttempt {
        LostAttempt {
            job: "j".into(),
            number: attempts,
            agent: "n/0".into(),
            attempts,
            max_attempts: max,
            cancel_requested: cancel,
        }
    }

    #[test]
    fn a_lost_attempt_requeues_fails_or_cancels() {
        let m = lost(&at(1, 3, false), LossCause::LeaseExpired, 7);
        assert_eq!((m.status, m.run_after_ms), (JobStatus::Queued, Some(7)));
        assert_eq!(m.told.kind, EventKind::Lost);
        let m = lost(&at(3, 3, false), LossCause::LeaseExpired, 7);
        assert_eq!(m.status, JobStatus::Failed);
        assert_eq!(m.error.clone().flatten().unwrap().code, "lost");
        let m = lost(&at(3, 3, true), LossCause::AgentRestarted, 7);
        assert_eq!(m.status, JobStatus::Cancelled);
        assert!(m.told.message.contains("restarted"), "{}", m.told.message);
    }

    #[test]
    fn a_kv_conflict_runs_again_uncharged_up_to_the_bound() {
        let mut c = Conflicted {
            number: 2,
            attempts: 1,
            max_attempts: 1,
            conflicts: 0,
            changed: vec!["/n".into()],
        };
        let m = conflicted(&c, 5);
        assert_eq!(
            (m.status, m.uncharge, m.conflict),
            (JobStatus::Queued, true, true)
        );
        assert!(
            m.told.message.contains("conflict 1 of"),
            "{}",
            m.told.message
        );
        c.conflicts = FREE_CONFLICTS;
        let m = conflicted(&c, 5);
        assert_eq!((m.status, m.uncharge), (JobStatus::Failed, false));
        assert_eq!(m.error.flatten().unwrap().code, "kv-conflict");
    }

    #[test]
    fn endings_fill_in_the_attempt_number() {
        let m = ended(&Next::Requeue, 5);
        assert!(m.uncharge);
        assert_eq!(
            m.told.message_for(4),
            "attempt 4 was interrupted by a draining node and queued again; it is not charged"
        );
        assert_eq!(ended(&Next::Succeed(vec![1]), 0).finished_ms(9), Some(9));
        assert_eq!(ended(&Next::Requeue, 0).finished_ms(9), None);
    }
}
