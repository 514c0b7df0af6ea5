//! [`Node`]: one daemon process's shared state (store, sandbox, registry view, resolution
//! cache, wake-ups, attempts in flight, identities, drain flag, metrics), changed only through
//! verbs, used by the API, the agents and the background loops.

use super::config::NodeConfig;
use super::finish_waits::{FinishWaits, FinishWatch};
use super::registry::Registry;
use super::resolver::{Resolver, TaskRef};
use crate::compat::CompatReport;
use crate::engine::{CancelToken, PrepareError, Prepared, Ready, Sandbox, WhenBusy};
use crate::host::{JobLog, LogContents};
use crate::metrics::Metrics;
use crate::store::{NodeRecord, ResolvedTask, Store, StoreError, StoreResult};
use crate::tokens::Tokens;
use crate::wire::Placement;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, watch};

/// What the API, the agents and the background loops share.
pub struct Node {
    config: NodeConfig,
    store: Arc<dyn Store>,
    sandbox: Arc<Sandbox>,
    /// This process, as the holder of its agent identities (`host:pid:start`).
    holder: String,
    metrics: Metrics,
    resolver: Resolver,
    registry: Registry,
    /// Wakes idle agents when work arrives or the node's state changes.
    wake: Notify,
    /// Clients waiting for jobs to reach a terminal state.
    finished: Arc<FinishWaits>,
    /// Attempts running on this node, by job id; watched by a stopping node.
    inflight: watch::Sender<HashMap<String, Running>>,
    /// The identities this node's agents hold.
    identities: Mutex<Vec<String>>,
    /// Set while draining: agents claim nothing new and `/readyz` fails.
    draining: AtomicBool,
    /// Set once a stopping node interrupted its attempts: any attempt that starts later is
    /// interrupted at once.
    interrupting: AtomicBool,
    /// Who may call the API.
    tokens: Tokens,
}

impl Node {
    /// A node over `store` and `sandbox`.
    pub fn new(config: NodeConfig, store: Arc<dyn Store>, sandbox: Arc<Sandbox>) -> Arc<Node> {
        let tokens = Tokens::new(config.auth.clone(), store.clone());
        Arc::new(Node {
            resolver: Resolver::new(config.node.clone(), store.clone()),
            registry: Registry::new(
                sandbox.catalog().clone(),
                store.clone(),
                config.remember_nodes,
            ),
            config,
            store,
            sandbox,
            holder: super::identity::this_process(),
            metrics: Metrics::default(),
            wake: Notify::new(),
            finished: Arc::default(),
            inflight: watch::Sender::new(HashMap::new()),
            identities: Mutex::default(),
            draining: AtomicBool::new(false),
            interrupting: AtomicBool::new(false),
            tokens,
        })
    }

    /// The API's tokens and this node's auth settings.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The node's settings.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The durable store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The engine bound to this node's catalog.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// This process, as the holder of its agent identities (`host:pid:start`).
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Counters and histograms for `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A stored component prepared on this node: reused by hash when this node prepared it
    /// before (no blob read, no rehash), else read from the store, judged against this
    /// node's catalog and compiled on the compile pool (waiting for a slot when it is full).
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
        match self
            .sandbox
            .judge_and_build(WhenBusy::Wait, hash, bytes.into(), extra_optional)
            .await?
        {
            Ready::Prepared(prepared) => Ok(prepared),
            Ready::Rejected(judged) => Err(PrepareError::Rejected(Box::new(judged.report)).into()),
        }
    }

    // Draining and waking.

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Start or stop draining; wakes the agents either way.
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// Wake idle agents: work may have arrived.
    pub fn wake_agents(&self) {
        self.wake.notify_waiters();
    }

    /// A wake-up to wait on; take it before looking for work, so a wake-up sent meanwhile is
    /// not missed.
    pub(super) fn woken(&self) -> Notified<'_> {
        self.wake.notified()
    }

    // Finished jobs.

    /// Tell waiting clients that job `id` reached a terminal state.
    pub fn announce_finished(&self, id: &str) {
        self.finished.finished(id);
    }

    /// Wait for `job` to reach a terminal state: woken by [`announce_finished`] of that job
    /// (only), until dropped.
    ///
    /// [`announce_finished`]: Self::announce_finished
    pub fn watch_finish(&self, job: &str) -> FinishWatch {
        self.finished.watch(job)
    }

    // Attempts in flight.

    /// Record that `job`'s attempt started here. A node that already interrupted its attempts
    /// (it is stopping) interrupts this one at once.
    pub(super) fn attempt_started(&self, job: &str, running: Running) {
        // Insert first: `interrupt_all` sets the flag before it reads the map, so this attempt
        // is either in the map it reads or sees the flag here.
        self.inflight.send_modify(|m| {
            m.insert(job.to_string(), running.clone());
        });
        if self.interrupting.load(Ordering::SeqCst) {
            running.interrupt();
        }
    }

    /// Record that `job`'s attempt ended here.
    pub(super) fn attempt_ended(&self, job: &str) {
        self.inflight.send_modify(|m| {
            m.remove(job);
        });
    }

    /// What `job`'s attempt number `attempt` has logged so far, when it runs here.
    pub fn live_log(&self, job: &str, attempt: u32) -> Option<LogContents> {
        let inflight = self.inflight.borrow();
        let running = inflight.get(job).filter(|r| r.attempt == attempt)?;
        Some(running.log.contents())
    }

    /// The attempts running here, by job id.
    pub fn inflight(&self) -> Vec<(String, Running)> {
        let inflight = self.inflight.borrow();
        inflight
            .iter()
            .map(|(job, r)| (job.clone(), r.clone()))
            .collect()
    }

    /// How many attempts run here.
    pub fn inflight_count(&self) -> usize {
        self.inflight.borrow().len()
    }

    /// Stop the attempt of `job` running here, if one does (the job was cancelled).
    pub fn stop_attempt(&self, job: &str) {
        if let Some(running) = self.inflight.borrow().get(job) {
            running.cancel.cancel();
        }
    }

    /// Resolves once no attempt runs here.
    pub async fn attempts_ended(&self) {
        let mut inflight = self.inflight.subscribe();
        let _ = inflight.wait_for(HashMap::is_empty).await;
    }

    /// Interrupt every attempt running here, and any that starts from now on: each stops
    /// within milliseconds and goes back to the queue without using up an attempt. Returns
    /// how many were running.
    pub fn interrupt_all(&self) -> usize {
        self.interrupting.store(true, Ordering::SeqCst);
        let inflight = self.inflight.borrow();
        for r in inflight.values() {
            r.interrupt();
        }
        inflight.len()
    }

    // Identities.

    /// How many identities this node's agents choose from: twice the agents, so a second
    /// process on the same node name (a hand-over) finds free ones.
    pub(super) fn identity_pool(&self) -> usize {
        self.config.agents * 2
    }

    /// Record that one of this node's agents took `identity`.
    pub(super) fn took_identity(&self, identity: &str) {
        self.identities
            .lock()
            .expect("identities lock")
            .push(identity.to_string());
    }

    /// Record that one of this node's agents lost `identity` (another process took it over).
    pub(super) fn lost_identity(&self, identity: &str) {
        self.identities
            .lock()
            .expect("identities lock")
            .retain(|id| id != identity);
    }

    /// The identities this node's agents hold, sorted.
    pub fn identities(&self) -> Vec<String> {
        let mut ids = self.identities.lock().expect("identities lock").clone();
        ids.sort();
        ids
    }

    // Task resolution.

    /// The version and component a task reference names now (`current` from this node's
    /// cache).
    pub async fn resolve_task(&self, r: &TaskRef) -> StoreResult<ResolvedTask> {
        self.resolver.resolve(r).await
    }

    /// Forget what `task`'s `current` resolved to (its version was found unregistered).
    pub fn forget_resolution(&self, task: &str) {
        self.resolver.forget(task);
    }

    /// Drop cached resolutions older than `generation` and resolve them again (a deploy or
    /// rollback happened through this node).
    pub async fn invalidate_resolutions(&self, generation: i64) {
        self.resolver.invalidate(generation).await;
    }

    /// Compare the resolution cache with the store's generation, and invalidate it when the
    /// generation moved (a change made through another node).
    pub async fn refresh_resolutions(&self) -> StoreResult<()> {
        self.resolver.refresh().await
    }

    /// What this node resolves each cached task's `current` to, and the cache's generation.
    pub fn resolutions(&self) -> (i64, Vec<ResolvedTask>) {
        self.resolver.snapshot()
    }

    // The registry and job classes.

    /// The job classes this node may claim.
    pub(super) fn runnable_classes(&self) -> Arc<[String]> {
        self.registry.classes()
    }

    /// Record this node's verdict on a job class it judged itself (at admission).
    pub fn learn_class(&self, class: &str, satisfied: bool) {
        self.registry.learn(class, satisfied);
    }

    /// Judge the job classes stored since the last call (jobs admitted through other nodes);
    /// wakes the agents when this node can run some of them. Returns how many it can run.
    pub async fn judge_new_classes(&self) -> StoreResult<usize> {
        let runnable = self.registry.catch_up().await?;
        if runnable > 0 {
            self.wake_agents();
        }
        Ok(runnable)
    }

    /// The first registered node process (live ones first) whose catalog satisfies
    /// requirements `spec`, with its report: admission accepts a job another node can run.
    pub async fn capable_node(
        &self,
        spec: &str,
    ) -> StoreResult<Option<(NodeRecord, CompatReport)>> {
        self.registry.capable(spec).await
    }

    /// Where a job with requirements `spec` can run, from every registered node's verdict.
    pub async fn placement(&self, spec: &str) -> StoreResult<Placement> {
        self.registry.placement(spec).await
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
    /// Set when a stopping node interrupted it (the attempt is then not charged).
    pub interrupted: Arc<AtomicBool>,
    /// What it has logged so far (the store keeps the log when the attempt ends).
    pub log: JobLog,
}

impl Running {
    /// Stop it as interrupted: it goes back to the queue, not charged.
    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::compat::Catalog;
    use crate::engine::{Engine, EngineConfig};
    use crate::store::StoreKv;
    use crate::store::sqlite::SqliteStore;
    use std::time::Duration;

    /// A node on a fresh SQLite store in `dir`, providing every module.
    pub(in crate::node) fn node(dir: &std::path::Path, config: NodeConfig) -> Arc<Node> {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("db")).unwrap());
        let engine = Engine::new(EngineConfig::default()).unwrap();
        let catalog = Catalog::with_provides::<&str>(&[]).unwrap();
        let kv = Arc::new(StoreKv(store.clone()));
        let sandbox = Arc::new(Sandbox::new(engine, catalog, kv).unwrap());
        Node::new(config, store, sandbox)
    }

    fn running(agent: &str) -> Running {
        Running {
            agent: agent.into(),
            attempt: 1,
            started_ms: 0,
            cancel: CancelToken::new(),
            interrupted: Arc::default(),
            log: JobLog::new(64),
        }
    }

    #[tokio::test]
    async fn attempts_ended_resolves_when_the_last_attempt_ends_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let node = node(dir.path(), NodeConfig::default());
        node.attempt_started("job-a", running("n/0"));
        node.attempt_started("job-b", running("n/1"));
        let ended = node.attempts_ended();
        tokio::pin!(ended);
        node.attempt_ended("job-a");
        assert!(
            tokio::time::timeout(Duration::ZERO, &mut ended)
                .await
                .is_err(),
            "job-b still runs"
        );
        assert_eq!(node.inflight_count(), 1);
        node.attempt_ended("job-b");
        tokio::time::timeout(Duration::from_secs(5), ended)
            .await
            .expect("the last attempt's end is noticed");
    }

    #[tokio::test]
    async fn interrupting_stops_what_runs_and_what_starts_later() {
        let dir = tempfile::tempdir().unwrap();
        let node = node(dir.path(), NodeConfig::default());
        let before = running("n/0");
        node.attempt_started("job-a", before.clone());
        assert_eq!(node.interrupt_all(), 1);
        let after = running("n/1");
        node.attempt_started("job-b", after.clone());
        for r in [&before, &after] {
            assert!(r.cancel.is_cancelled() && r.interrupted.load(Ordering::SeqCst));
        }
    }
}
