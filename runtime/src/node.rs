//! A node: one daemon process's shared parts (store, sandbox, wake-ups, running attempts,
//! metrics), used by the API and the agents.

use crate::engine::{CancelToken, Sandbox};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tasks::Resolver;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast};

/// Timings of leases and polling.
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
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node: "node-1".into(),
            agents: std::thread::available_parallelism().map_or(2, |n| n.get()),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            poll: Duration::from_millis(250),
            reap_every: Duration::from_secs(5),
            refresh_tasks: Duration::from_secs(1),
            max_upload_bytes: 32 << 20,
        }
    }
}

/// What the API and the agents share.
pub struct Node {
    /// Settings.
    pub config: NodeConfig,
    /// The durable store.
    pub store: Arc<dyn Store>,
    /// The engine bound to this node's catalog.
    pub sandbox: Arc<Sandbox>,
    /// Wakes idle agents when work arrives.
    pub wake: Notify,
    /// Ids of jobs that reached a terminal state (for waiting clients).
    pub finished: broadcast::Sender<String>,
    /// Cancel tokens of attempts running on this node, by job id.
    pub running: Mutex<HashMap<String, CancelToken>>,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// What task references resolve to, cached.
    pub resolver: Resolver,
}

impl Node {
    /// A node over `store` and `sandbox`.
    pub fn new(config: NodeConfig, store: Arc<dyn Store>, sandbox: Arc<Sandbox>) -> Arc<Node> {
        let (finished, _) = broadcast::channel(4096);
        Arc::new(Node {
            resolver: Resolver::new(config.node.clone(), store.clone()),
            config,
            store,
            sandbox,
            wake: Notify::new(),
            finished,
            running: Mutex::default(),
            metrics: Metrics::default(),
        })
    }

    /// Agent identity number `n` of this node.
    pub fn agent_id(&self, n: usize) -> String {
        format!("{}/{n}", self.config.node)
    }
}
