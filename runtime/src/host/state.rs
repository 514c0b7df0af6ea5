//! The per-attempt state every host module reads: who the job is, what the host provides,
//! and where kv, progress, checkpoints and log lines go.

use super::joblog::JobLog;
use super::kvtxn::KvTxn;
use super::services::AttemptServices;
use crate::compat::Catalog;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Which job and attempt is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job's id.
    pub job_id: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Attempts the job may use in all.
    pub max_attempts: u32,
    /// `name@version` when the job runs a deployed task.
    pub task: Option<String>,
    /// The kv scope: the task name, or the job id for raw components.
    pub kv_scope: String,
}

impl JobInfo {
    /// A one-off job (the CLI's `run`): attempt 1 of 1, kv scoped to `scope`.
    pub fn one_off(job_id: &str, scope: &str) -> Self {
        JobInfo {
            job_id: job_id.into(),
            attempt: 1,
            max_attempts: 1,
            task: None,
            kv_scope: scope.into(),
        }
    }
}

/// One import as the host read it, for `driftless:versioning.declared`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredImport {
    /// `driftless:kv/store`.
    pub name: String,
    /// `1.1.0`.
    pub version: Option<String>,
    /// Declared optional by the job.
    pub optional: bool,
    /// Functions the job uses that this host lacks.
    pub missing_functions: Vec<String>,
}

/// The host side of one attempt.
pub struct HostState {
    /// Which job and attempt.
    pub job: JobInfo,
    /// What this host provides.
    pub catalog: Arc<Catalog>,
    /// What the job imports, with what the host lacks.
    pub declared: Arc<Vec<DeclaredImport>>,
    /// The attempt's kv transaction: reads of the committed data, buffered writes.
    pub kv: KvTxn,
    /// Where progress and checkpoints go.
    pub services: Arc<dyn AttemptServices>,
    /// The attempt's capped log.
    pub log: JobLog,
}
