//! The typed result of one attempt.

use crate::host::LogContents;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Why an attempt was stopped from outside the job's own logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrapReason {
    /// The wall-clock limit passed.
    Timeout,
    /// The attempt was cancelled (by a user, or a draining node).
    Cancelled,
    /// The job grew its memory (or a table) past the limit.
    MemoryLimit,
    /// The job exhausted its stack (deep or endless recursion).
    StackOverflow,
    /// The job returned more output than the limit.
    OutputTooLarge,
    /// The job called a function of an optional import this host does not provide.
    MissingImport,
    /// Too many instances, tables or memories, or the node has no free instance slot.
    ResourceLimit,
    /// The job trapped (unreachable, a panic, an out-of-bounds access, ...).
    WasmTrap,
    /// A host service the job used failed or refused (e.g. the attempt's lease was lost).
    HostError,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// `run` returned output.
    Succeeded {
        /// The output bytes (JSON for SDK jobs).
        output: Vec<u8>,
    },
    /// `run` returned a job error.
    Failed {
        /// The job's error code.
        code: String,
        /// The job's message.
        message: String,
        /// Whether the job says a retry could help.
        retryable: bool,
    },
    /// The attempt was stopped.
    Trapped {
        /// Why.
        reason: TrapReason,
        /// What happened and what to do, with the wasm backtrace when there is one.
        message: String,
    },
}

impl Outcome {
    /// The trap reason, if the attempt trapped.
    pub fn trap_reason(&self) -> Option<TrapReason> {
        match self {
            Outcome::Trapped { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// One attempt's outcome, log and duration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptResult {
    /// How it ended.
    pub outcome: Outcome,
    /// What it logged (capped).
    pub log: LogContents,
    /// Wall-clock time from instantiation to the end.
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// The part of `duration` spent making the store and instance (the rest is `run`).
    #[serde(skip)]
    pub instantiate: Duration,
    /// What the attempt read from and wrote to kv: its writes commit only with a success.
    #[serde(skip)]
    pub kv: crate::host::KvEffects,
}

mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}
