//! `/v1/nodes` and `/v1/admin`: the registry, placement, and what runs on a node.

use super::{CompatReport, Verdict};
use serde::{Deserialize, Serialize};

/// A registered node process's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Heartbeating and claiming.
    Live,
    /// Heartbeating, claiming nothing new.
    Draining,
    /// Left, or stopped heartbeating.
    Gone,
}

impl NodeState {
    /// The state of a process that is `gone` or `draining` (gone wins).
    pub fn of(gone: bool, draining: bool) -> NodeState {
        match (gone, draining) {
            (true, _) => NodeState::Gone,
            (false, true) => NodeState::Draining,
            (false, false) => NodeState::Live,
        }
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeState::Live => "live",
            NodeState::Draining => "draining",
            NodeState::Gone => "gone",
        })
    }
}

/// One node process's verdict on a job's requirements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeVerdict {
    /// The node name.
    pub node: String,
    /// The process (`host:pid:start`).
    pub process: String,
    /// Its API address.
    pub address: String,
    /// Its state.
    pub state: NodeState,
    /// What its catalog says about the job.
    pub verdict: Verdict,
    /// Why, in words.
    pub summary: String,
    /// The whole report: every import of the job against its catalog.
    pub report: CompatReport,
}

/// Where a queued job can run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Live, non-draining nodes whose catalog satisfies the job.
    pub runnable_on: Vec<String>,
    /// Why the job is waiting, when no live node can run it now.
    pub waiting: Option<String>,
    /// Every registered node process's verdict.
    pub nodes: Vec<NodeVerdict>,
}

/// A node process as `GET /v1/nodes` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The process (`host:pid:start`).
    pub process: String,
    /// The node name.
    pub node: String,
    /// Where its API listens.
    pub address: String,
    /// The version of driftless it runs.
    pub version: String,
    /// The modules it provides (`driftless:kv@1.1.0`, ...).
    pub catalog: Vec<String>,
    /// How many agents it runs.
    pub agents: u32,
    /// The agent identities it holds now.
    pub identities: Vec<String>,
    /// When it registered.
    pub started_ms: i64,
    /// Its last heartbeat.
    pub heartbeat_ms: i64,
    /// How long ago that was, by the answering node's clock.
    pub heartbeat_age_ms: i64,
    /// Whether it is draining.
    pub draining: bool,
    /// Attempts running on it at its last heartbeat.
    pub inflight: u32,
    /// When it left or was marked gone.
    pub gone_ms: Option<i64>,
    /// Its state.
    pub state: NodeState,
    /// Whether it is the process answering.
    pub this_process: bool,
}

/// `GET /v1/nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeList {
    /// The process answering.
    pub this_process: String,
    /// How long a process may miss heartbeats before it counts as gone.
    pub node_ttl_ms: u64,
    /// Live processes and those gone recently.
    pub nodes: Vec<NodeInfo>,
}

/// The answer to `POST /v1/nodes/{node}/drain` and `POST /v1/nodes/{node}/resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRequested {
    /// The node asked.
    pub node: String,
    /// True: asked to drain; false: to resume.
    pub draining: bool,
    /// How many live processes of the node were asked.
    pub processes: u64,
    /// When it takes effect, in words.
    pub message: String,
}

/// An attempt running on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InflightAttempt {
    /// The job.
    pub job: String,
    /// The agent identity running it.
    pub agent: String,
    /// The attempt's number.
    pub attempt: u32,
    /// For how long.
    pub running_ms: i64,
}

/// `GET /v1/admin/inflight` (and the answer to drain and resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inflight {
    /// The node's name.
    pub node: String,
    /// Whether it is draining.
    pub draining: bool,
    /// How many attempts run on it.
    pub count: usize,
    /// Those attempts, by agent.
    pub attempts: Vec<InflightAttempt>,
    /// The agent identities it holds.
    pub agents: Vec<String>,
    /// The process (`host:pid:start`).
    pub holder: String,
}
