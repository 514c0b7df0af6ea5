//! A node: one daemon process's shared parts (store, sandbox, wake-ups, running attempts,
//! metrics), used by the API and the agents.

use crate::cluster::Cluster;
use crate::engine::{CancelToken, PrepareError, Prepared, Sandbox};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::tasks::Resolver;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
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
            grace: Duration::from_secs(30),
            node_heartbeat: Duration::from_secs(1),
            node_ttl: Duration::from_secs(10),
            remember_nodes: Duration::from_secs(600),
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
    /// Attempts running on this node, by job id.
    pub running: Mutex<HashMap<String, Running>>,
    /// This process, as the holder of its agent identities (`host:pid:start`).
    pub holder: String,
    /// The identities this node's agents hold.
    pub identities: Mutex<Vec<String>>,
    /// Set while draining: agents claim nothing new and `/readyz` fails.
    pub draining: AtomicBool,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// What task references resolve to, cached.
    pub resolver: Resolver,
    /// The registry as this node sees it, and the job classes it may claim.
    pub cluster: Cluster,
}

impl Node {
    /// A node over `store` and `sandbox`.
    pub fn new(config: NodeConfig, store: Arc<dyn Store>, sandbox: Arc<Sandbox>) -> Arc<Node> {
        let (finished, _) = broadcast::channel(4096);
        Arc::new(Node {
            resolver: Resolver::new(config.node.clone(), store.clone()),
            cluster: Cluster::new(sandbox.catalog().clone()),
            config,
            store,
            sandbox,
            wake: Notify::new(),
            finished,
            running: Mutex::default(),
            holder: crate::identity::this_process(),
            identities: Mutex::default(),
            draining: AtomicBool::new(false),
            metrics: Metrics::default(),
        })
    }

    /// A stored component prepared on this node: reused by hash when this node prepared it
    /// before (no blob read, no rehash), else read from the store and judged against this
    /// node's catalog.
    pub async fn prepare_stored(
        &self,
        hash: &str,
        extra_optional: &[String],
    ) -> Result<Arc<Prepared>, PrepareStoredError> {
        if let Some(prepared) = self.sandbox.cached(hash, extra_optional) {
            return Ok(prepared);
        }
        let bytes = self
            .store
            .get_blob(hash)
            .await?
            .ok_or(PrepareStoredError::Missing)?;
        Ok(self.sandbox.prepare_with(&bytes, extra_optional)?)
    }

    /// How many identities this node's agents choose from: twice the agents, so a second
    /// process on the same node name (a hand-over) finds free ones.
    pub fn identity_pool(&self) -> usize {
        self.config.agents * 2
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Start or stop draining; wakes the agents either way.
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Interrupt every attempt still running here: each stops within milliseconds and goes
    /// back to the queue without using up an attempt. Returns how many.
    pub fn interrupt_all(&self) -> usize {
        let running = self.running.lock().expect("running lock");
        for r in running.values() {
            r.interrupted.store(true, Ordering::SeqCst);
            r.cancel.cancel();
        }
        running.len()
    }
}

/// Why [`Node::prepare_stored`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareStoredError {
    /// No component with that hash is stored.
    #[error("the component is not in the store")]
    Missing,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The component does not pass admission on this node.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
}

/// An attempt running on this node.
#[derive(Clone)]
pub struct Running {
    /// The agent identity running it.
    pub agent: String,
    /// The attempt's number.
    pub attempt: u32,
    /// When it started (ms since epoch).
    pub started_ms: i64,
    /// Stops it.
    pub cancel: CancelToken,
    /// Set when a draining node stopped it (the attempt is then not charged).
    pub interrupted: Arc<AtomicBool>,
}
