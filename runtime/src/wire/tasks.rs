//! `/v1/tasks`: deploy, roll back, unregister, look up.

use super::CompatReport;
use serde::{Deserialize, Serialize};

/// Body of `POST /v1/tasks/{name}/rollback` (empty: the newest registered version below
/// `current`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackSpec {
    /// The version to make current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
}

/// Query of `PUT /v1/tasks/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployQuery {
    /// At most this many of the task's jobs ready or running at once, with this version.
    pub max_concurrency: Option<u32>,
}

/// Query of `DELETE /v1/tasks/{name}/versions/{version}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Wait up to this many seconds for the jobs pinning the version to finish.
    pub wait: Option<u64>,
}

/// The answer to `PUT /v1/tasks/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployAnswer {
    /// The task.
    pub task: String,
    /// The new version; for bytes already deployed, the version with those bytes.
    pub version: u32,
    /// The version current before, if any.
    pub previous: Option<u32>,
    /// False when the bytes were already a registered version (nothing changed).
    pub created: bool,
    /// The component's blake3 hash.
    pub component: String,
    /// The compat report at deploy.
    pub report: CompatReport,
}

/// The answer to `POST /v1/tasks/{name}/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackAnswer {
    /// The task.
    pub task: String,
    /// Now current.
    pub version: u32,
    /// Current before.
    pub previous: Option<u32>,
}

/// The answer to `DELETE /v1/tasks/{name}/versions/{version}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnregisterAnswer {
    /// The task.
    pub task: String,
    /// The version unregistered.
    pub version: u32,
    /// Always true.
    pub deleted: bool,
}

/// A task in `GET /v1/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// Its name.
    pub name: String,
    /// The current version.
    pub current: u32,
    /// Registered (not unregistered) versions.
    pub versions: u32,
    /// Last change of `current`.
    pub updated_ms: i64,
}

/// `GET /v1/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskList {
    /// Tasks, by name.
    pub tasks: Vec<TaskSummary>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Jobs pinned to one version, by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Waiting.
    pub queued: u64,
    /// Running.
    pub running: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
}

/// One version of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskVersion {
    /// Its number (never reused).
    pub version: u32,
    /// Its component's blake3 hash.
    pub component: String,
    /// Deployed at.
    pub created_ms: i64,
    /// Deployed by.
    pub deployed_by: String,
    /// Unregistered at, if it was.
    pub deleted_ms: Option<i64>,
    /// At most this many of the task's jobs ready or running at once (set at deploy).
    pub max_concurrency: Option<u32>,
    /// Its non-WASI imports with their status at deploy.
    pub imports: Vec<String>,
    /// Jobs pinned to it.
    pub jobs: JobCounts,
}

/// One change of a task's `current`, or an unregistered version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub at_ms: i64,
    /// `deploy`, `rollback` or `delete-version`.
    pub action: String,
    /// Who.
    pub actor: String,
    /// The request.
    pub request_id: String,
    /// `current` before (for `delete-version`: the version unregistered).
    pub old_version: Option<u32>,
    /// `current` after.
    pub new_version: Option<u32>,
}

/// What a node last reported it resolves a task's `current` to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeResolution {
    /// The node.
    pub node: String,
    /// The version it resolves `current` to.
    pub version: u32,
    /// The task generation it resolved at.
    pub generation: i64,
    /// When it reported.
    pub at_ms: i64,
}

/// What the answering node resolves a task's `current` to now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThisNode {
    /// The node's name.
    pub node: String,
    /// The task generation of its resolution cache.
    pub generation: i64,
    /// The version, if it has resolved the task.
    pub resolves_current_to: Option<u32>,
}

/// `GET /v1/tasks/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Its name.
    pub name: String,
    /// The current version.
    pub current: u32,
    /// The store's task generation.
    pub generation: i64,
    /// Created at.
    pub created_ms: i64,
    /// Last change of `current`.
    pub updated_ms: i64,
    /// Every version, oldest first, unregistered ones included.
    pub versions: Vec<TaskVersion>,
    /// What each node last reported it resolves `current` to.
    pub nodes: Vec<NodeResolution>,
    /// Changes, oldest first.
    pub audit: Vec<AuditEntry>,
    /// What the answering node resolves `current` to.
    pub this_node: ThisNode,
}
