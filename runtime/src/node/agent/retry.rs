//! What happens to a job when an attempt ends: the retry policy, in one place.

use crate::engine::{Outcome, TrapReason};
use crate::store::{AttemptState, JobFailure, Next};

/// Delay before retry number `attempt` (1-based attempt that just failed): 200 ms doubling,
/// at most 30 s.
pub fn backoff_ms(attempt: u32) -> i64 {
    (200i64 << attempt.saturating_sub(1).min(10)).min(30_000)
}

/// Whether another attempt could end differently after this trap.
pub fn trap_is_retryable(reason: TrapReason) -> bool {
    match reason {
        TrapReason::Timeout
        | TrapReason::ResourceLimit
        | TrapReason::WasmTrap
        | TrapReason::HostError => true,
        TrapReason::Cancelled
        | TrapReason::MemoryLimit
        | TrapReason::StackOverflow
        | TrapReason::OutputTooLarge
        | TrapReason::MissingImport => false,
    }
}

/// The attempt's final state and what happens to its job.
pub fn decide(outcome: &Outcome, attempt: u32, max_attempts: u32) -> (AttemptState, Next) {
    let failure = match outcome {
        Outcome::Succeeded { output } => {
            return (AttemptState::Succeeded, Next::Succeed(output.clone()));
        }
        Outcome::Trapped {
            reason: TrapReason::Cancelled,
            ..
        } => return (AttemptState::Cancelled, Next::Cancel),
        Outcome::Failed {
            code,
            message,
            retryable,
        } => JobFailure {
            code: code.clone(),
            message: message.clone(),
            retryable: *retryable,
        },
        Outcome::Trapped { reason, message } => JobFailure {
            code: serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            message: message.clone(),
            retryable: trap_is_retryable(*reason),
        },
    };
    after_failure(failure, attempt, max_attempts)
}

/// What happens to a job whose attempt number `attempt` failed: retry after a backoff while
/// the failure is retryable and attempts are left, else fail for good.
pub fn after_failure(failure: JobFailure, attempt: u32, max_attempts: u32) -> (AttemptState, Next) {
    if failure.retryable && attempt < max_attempts {
        let after_ms = backoff_ms(attempt);
        (AttemptState::Failed, Next::Retry { failure, after_ms })
    } else {
        let mut failure = failure;
        if failure.retryable {
            failure.message = format!(
                "{} (attempt {attempt} of {max_attempts}: no attempts left)",
                failure.message
            );
        }
        (AttemptState::Failed, Next::Fail(failure))
    }
}

/// The outcome as stored with the attempt: output bytes are kept with the job, not here.
pub fn outcome_record(outcome: &Outcome) -> serde_json::Value {
    match outcome {
        Outcome::Succeeded { output } => {
            serde_json::json!({"kind": "succeeded", "output_bytes": output.len()})
        }
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_retryable_failures_while_attempts_remain() {
        let timeout = Outcome::Trapped {
            reason: TrapReason::Timeout,
            message: "slow".into(),
        };
        assert!(matches!(
            decide(&timeout, 1, 3).1,
            Next::Retry { after_ms: 200, .. }
        ));
        assert!(matches!(
            decide(&timeout, 2, 3).1,
            Next::Retry { after_ms: 400, .. }
        ));
        let Next::Fail(f) = decide(&timeout, 3, 3).1 else {
            panic!("out of attempts must fail")
        };
        assert_eq!(f.code, "timeout");
        assert!(f.message.contains("no attempts left"));
        let bomb = Outcome::Trapped {
            reason: TrapReason::MemoryLimit,
            message: "big".into(),
        };
        assert!(matches!(decide(&bomb, 1, 3).1, Next::Fail(_)));
        let fatal = Outcome::Failed {
            code: "bad-input".into(),
            message: "no".into(),
            retryable: false,
        };
        assert!(matches!(decide(&fatal, 1, 3).1, Next::Fail(_)));
        assert_eq!(backoff_ms(40), 30_000);
    }
}
