//! A node's settings: its name, how many agents it runs, and the timings of its leases,
//! heartbeats and polls.

use crate::engine::CompileConfig;
use std::time::Duration;

/// A node's settings (`driftless serve`'s flags): its name, its agents, leases and polling.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's name; agent identities are `<node>/<n>`.
    pub node: String,
    /// Agents (concurrent attempts) on this node.
    pub agents: usize,
    /// How long a claim's lease lasts without a heartbeat.
    pub lease: Duration,
    /// How often a running attempt's lease is extended.
    pub heartbeat: Duration,
    /// How often idle agents look for work when no wake-up arrives (the backstop).
    pub poll: Duration,
    /// How often expired leases are reaped.
    pub reap_every: Duration,
    /// How often the task resolution cache is compared with the store's generation (the
    /// backstop for deploys made through other nodes).
    pub refresh_tasks: Duration,
    /// Largest component upload, in bytes.
    pub max_upload_bytes: usize,
    /// Largest job input (compact JSON), in bytes; a JSON body or multipart `spec` part may be
    /// 64 KiB larger for the spec's other fields.
    pub max_input_bytes: usize,
    /// How long a stopping node lets in-flight attempts finish before it interrupts them.
    pub grace: Duration,
    /// How often the node heartbeats in the registry (and judges new compatibility classes).
    pub node_heartbeat: Duration,
    /// A node process silent for this long is marked gone: its identities are freed and its
    /// attempts go back to the queue.
    pub node_ttl: Duration,
    /// How long gone node processes still count for admission: a job that only a node gone
    /// this recently can run is accepted and waits for it (a node restarting in a rolling
    /// upgrade), where one no node ever ran is refused.
    pub remember_nodes: Duration,
    /// Who may call the API: the admin token, open mode, allowed hosts.
    pub auth: crate::tokens::AuthConfig,
    /// The compile pool: workers, queue and deadline for inspecting and compiling components.
    pub compile: CompileConfig,
}

/// Agents per core by default: an agent spends most of an attempt of a short job waiting for
/// the store's commits, not on a core, so a node needs several per core to keep them busy.
pub const AGENTS_PER_CORE: usize = 4;

/// The default number of agents: [`AGENTS_PER_CORE`] per core.
pub fn default_agents() -> usize {
    AGENTS_PER_CORE * std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node: "node-1".into(),
            agents: default_agents(),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            poll: Duration::from_millis(250),
            reap_every: Duration::from_secs(5),
            refresh_tasks: Duration::from_secs(1),
            max_upload_bytes: 32 << 20,
            max_input_bytes: 1 << 20,
            grace: Duration::from_secs(30),
            node_heartbeat: Duration::from_secs(1),
            node_ttl: Duration::from_secs(10),
            remember_nodes: Duration::from_secs(600),
            auth: crate::tokens::AuthConfig::default(),
            compile: CompileConfig::default(),
        }
    }
}
