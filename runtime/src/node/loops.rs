//! Every background loop of a node, started in one place ([`start`]) and stopped in one
//! ([`Loops::stop`]): the agents, the renewal of their identities, the lease reaper, the
//! timers of delayed jobs, the firing of cron schedules, the registry heartbeat, the
//! resolution-cache refresh, retention and, on PostgreSQL, the followers of the store's
//! notifications. Each loop holds a [`Stopping`] and ends at its next wait once the node
//! stops; [`Loops`] keeps every handle so stopping awaits them all.

use super::agent;
use super::identity;
use super::retention;
use super::state::Node;
use super::stop::{StopSignal, Stopping};
use crate::store::NodeRegistration;
use crate::store::postgres::Notice;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;

/// How long [`Loops::stop`] waits for the loops before it aborts the rest.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What the store notifies, on PostgreSQL (LISTEN/NOTIFY).
pub struct Notices {
    /// Jobs queued and tasks changed, through any node.
    pub changes: broadcast::Receiver<Notice>,
    /// Ids of jobs finished through any node.
    pub finished: broadcast::Receiver<String>,
}

/// A node's running background loops.
pub struct Loops {
    signal: StopSignal,
    handles: Vec<(&'static str, JoinHandle<()>)>,
}

/// Start every background loop of `node`, which serves its API at `address`.
pub fn start(node: Arc<Node>, address: String, notices: Option<Notices>) -> Loops {
    let mut loops = Loops {
        signal: StopSignal::new(),
        handles: Vec::new(),
    };
    for _ in 0..node.config().agents {
        loops.spawn("agent", |stop| agent::run(node.clone(), stop));
    }
    let (store, holder, lease) = (
        node.store().clone(),
        node.holder().to_string(),
        node.config().lease,
    );
    loops.spawn("identity renewal", |stop| {
        identity::keep_held(store, holder, lease, stop)
    });
    loops.spawn("reaper", |stop| agent::reap(node.clone(), stop));
    loops.spawn("timers", |stop| super::timers::run(node.clone(), stop));
    loops.spawn("schedules", |stop| {
        super::schedules::run(node.clone(), stop)
    });
    loops.spawn("registry heartbeat", |stop| {
        keep_registered(node.clone(), address, stop)
    });
    loops.spawn("resolution refresh", |stop| keep_fresh(node.clone(), stop));
    loops.spawn("retention", |stop| retention::run(node.clone(), stop));
    if let Some(notices) = notices {
        loops.spawn("notices", |stop| {
            follow_notices(node.clone(), notices.changes, stop)
        });
        loops.spawn("finished jobs", |stop| {
            forward_finished(node.clone(), notices.finished, stop)
        });
    }
    loops
}

impl Loops {
    fn spawn<F>(&mut self, name: &'static str, body: impl FnOnce(Stopping) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(body(self.signal.subscribe()));
        self.handles.push((name, handle));
    }

    /// Stop every loop and wait until each has ended (a loop still busy after 10 s is
    /// aborted, saying so).
    pub async fn stop(self) {
        self.signal.stop();
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        for (name, mut handle) in self.handles {
            match tokio::time::timeout_at(deadline, &mut handle).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(task = name, error = %e, "a background loop had failed")
                }
                Err(_) => {
                    tracing::warn!(
                        task = name,
                        "a background loop did not stop in time; aborting it"
                    );
                    handle.abort();
                }
            }
        }
    }
}

/// Keep `node`'s resolution cache in step with the store (the backstop for changes made
/// through other nodes).
async fn keep_fresh(node: Arc<Node>, mut stop: Stopping) {
    while stop.pause(node.config().refresh_tasks).await {
        if let Err(e) = node.refresh_resolutions().await {
            tracing::warn!(error = %e, "could not compare the task resolution cache with the store");
        }
    }
}

/// Register this process, then heartbeat, mark silent processes gone (returning their work to
/// the queue) and judge new compatibility classes, until the node stops.
async fn keep_registered(node: Arc<Node>, address: String, mut stop: Stopping) {
    let config = node.config();
    let store = node.store();
    let registration = NodeRegistration {
        process: node.holder().to_string(),
        node: config.node.clone(),
        address,
        version: env!("CARGO_PKG_VERSION").to_string(),
        catalog: serde_json::to_string(node.sandbox().catalog().modules())
            .expect("a catalog serializes"),
        agents: config.agents as u32,
        now_ms: store.now(),
    };
    let mut registered = false;
    loop {
        if !registered {
            let now = NodeRegistration {
                now_ms: store.now(),
                ..registration.clone()
            };
            match store.register_node(now).await {
                Ok(()) => registered = true,
                Err(e) => tracing::warn!(error = %e, "could not register this node; retrying"),
            }
        } else {
            let inflight = node.inflight_count() as u32;
            match store
                .node_heartbeat(node.holder(), node.is_draining(), inflight, store.now())
                .await
            {
                Ok(beat) if beat.live => {
                    if let Some(drain) = beat.drain_request
                        && drain != node.is_draining()
                    {
                        node.set_draining(drain);
                        tracing::info!(
                            draining = drain,
                            "{} (asked through another node's API)",
                            if drain { "draining" } else { "resumed" }
                        );
                    }
                }
                Ok(_) => {
                    tracing::warn!(
                        "the registry had marked this node gone (no heartbeat within the node TTL); registering again"
                    );
                    registered = false;
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "node heartbeat failed"),
            }
        }
        reap_gone_nodes(&node).await;
        if let Err(e) = node.judge_new_classes().await {
            tracing::warn!(error = %e, "could not read new compatibility classes");
        }
        if !stop.pause(config.node_heartbeat).await {
            return;
        }
    }
}

/// Mark node processes silent for the node TTL gone, and return their attempts to the queue.
async fn reap_gone_nodes(node: &Node) {
    let store = node.store();
    let ttl_ms = node.config().node_ttl.as_millis() as i64;
    match store.reap_gone_nodes(ttl_ms, store.now()).await {
        Ok(gone) if !gone.is_empty() => {
            tracing::warn!(processes = ?gone, "marked silent node processes gone; their identities are free and their attempts go back to the queue");
            if let Err(e) = store.reap_expired(store.now()).await {
                tracing::warn!(error = %e, "reaping the gone nodes' attempts failed; the reaper will retry");
            }
            node.wake_agents();
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not check for silent node processes"),
    }
}

/// Act on the store's notifications: new jobs wake the agents (after judging any new
/// compatibility class), a task deploy or rollback made through any node drops this
/// node's cached resolution at once, and a component retention deleted through any node is
/// forgotten here. Polling stays the backstop.
async fn follow_notices(
    node: Arc<Node>,
    mut notices: broadcast::Receiver<Notice>,
    mut stop: Stopping,
) {
    loop {
        let notice = tokio::select! {
            notice = notices.recv() => notice,
            _ = stop.requested() => return,
        };
        let (jobs, tasks) = match notice {
            Ok(Notice::Jobs) => (true, false),
            Ok(Notice::Task(_)) => (false, true),
            Ok(Notice::ComponentDeleted(hash)) => {
                node.sandbox().forget(&hash);
                (false, false)
            }
            Ok(Notice::Reconnected) | Err(RecvError::Lagged(_)) => (true, true),
            Err(RecvError::Closed) => return,
        };
        if jobs {
            if let Err(e) = node.judge_new_classes().await {
                tracing::warn!(error = %e, "could not read new compatibility classes");
            }
            node.wake_agents();
        }
        if tasks && let Err(e) = node.refresh_resolutions().await {
            tracing::warn!(error = %e, "could not refresh the task resolution cache");
        }
    }
}

/// Jobs finished through any node answer this node's waiting clients at once.
async fn forward_finished(
    node: Arc<Node>,
    mut finished: broadcast::Receiver<String>,
    mut stop: Stopping,
) {
    loop {
        let id = tokio::select! {
            id = finished.recv() => id,
            _ = stop.requested() => return,
        };
        match id {
            Ok(id) => node.announce_finished(&id),
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::config::NodeConfig;
    use crate::node::state::tests::node;

    #[tokio::test]
    async fn stopping_ends_every_loop_at_its_next_wait() {
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig {
            agents: 2,
            ..NodeConfig::default()
        };
        let node = node(dir.path(), config);
        let loops = start(node.clone(), "127.0.0.1:1".into(), None);
        assert_eq!(loops.handles.len(), 2 + 7, "two agents and seven loops");
        // Past taking their identities, the agents look for work and wait for it.
        driftless_tests::poll::until("both agents to take an identity", STOP_WAIT, async || {
            node.identities().len() == 2
        })
        .await;
        // Far less than the 10 s after which a loop that ignores the signal is aborted.
        tokio::time::timeout(Duration::from_secs(5), loops.stop())
            .await
            .expect("every loop ends on the stop signal");
    }
}
