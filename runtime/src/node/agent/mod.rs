//! Agents: executors with stable identities (`<node>/<n>`) that claim attempts, keep their
//! leases alive, run them, and record the result, every write fenced by the lease token.
//!
//! An agent that takes an identity first recovers what its previous holder left running when
//! that process is known dead (at once, not after the lease); a reaper returns attempts whose
//! lease expired (dead or cut-off agents elsewhere) to the queue. An agent whose claim is
//! refused because its identity's hold is gone (another process took it over after this one
//! was frozen or cut off past its lease) stops claiming with it at once, says so, leaves its
//! attempts to be fenced out, and takes a free identity of the pool again. `loops.rs` starts
//! the agents and the reaper and stops them.

pub mod retry;
mod services;

use super::identity;
use super::state::{Node, PrepareStoredError, Running};
use super::stop::Stopping;
use crate::engine::{AttemptRequest, CancelToken, PoolError, PrepareError};
use crate::host::{JobInfo, JobLog};
use crate::metrics::Stage;
use crate::store::{
    AttemptEnd, AttemptState, Claim, Held, IdentityHold, JobFailure, Next, StoreError, now_ms,
};
use services::LeasedServices;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One agent: take an identity, recover what its last holder left running, then claim and
/// run attempts until the node stops; when the identity is lost, take another.
pub(super) async fn run(node: Arc<Node>, mut stop: Stopping) {
    while let Some(held) = take_identity(&node, &mut stop).await {
        if serve(&node, &held, &mut stop).await == Served::Stopped {
            return;
        }
        node.lost_identity(&held.agent);
        let to = match node.store().identity_holder(&held.agent).await {
            Ok(Some(IdentityHold {
                holder: Some(h), ..
            })) => h,
            Ok(_) => "no holder (its hold was released or reaped)".into(),
            Err(_) => "another process".into(),
        };
        tracing::warn!(
            agent = %held.agent,
            "lost identity {} to {to}; no longer claiming with it (this process's hold lapsed, so its attempts under it are fenced out); taking a free identity",
            held.agent
        );
    }
}

/// Take an identity no live process holds (`None`: the node stopped first), then recover what
/// its previous holder left running if that process is known dead.
async fn take_identity(node: &Arc<Node>, stop: &mut Stopping) -> Option<Held> {
    let config = node.config();
    let taken = tokio::select! {
        taken = identity::acquire(
            node.store(),
            &config.node,
            node.identity_pool(),
            node.holder(),
            config.lease,
        ) => taken,
        _ = stop.requested() => return None,
    };
    let id = &taken.held.agent;
    tracing::info!(agent = %id, "agent started");
    node.took_identity(id);
    let store = node.store();
    match store
        .recover_agent(&taken.held, taken.dead.as_deref(), store.now())
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(agent = %id, attempts = n, "recovered attempts the identity's previous holder, a process that died, left running")
        }
        Err(e) => {
            tracing::error!(agent = %id, error = %e, "could not recover the attempts the identity's previous holder left running; the reaper will")
        }
    }
    Some(taken.held)
}

/// How [`serve`] ended.
#[derive(Debug, PartialEq, Eq)]
enum Served {
    /// The node stops.
    Stopped,
    /// The identity's hold is gone: claim nothing more with it.
    Lost,
}

/// Claim and run attempts as `held` until the node stops or the hold is found gone.
async fn serve(node: &Arc<Node>, held: &Held, stop: &mut Stopping) -> Served {
    let config = node.config();
    let mut next: Option<Claim> = None;
    loop {
        // A claim in hand always runs (a draining node claims nothing new, so a stopping one
        // holds none).
        if let Some(claim) = next.take() {
            next = run_claim(node, held, claim).await;
            continue;
        }
        // Register interest before claiming, so a job inserted meanwhile is not missed.
        let woken = node.woken();
        let claimed = if node.is_draining() {
            Ok(None)
        } else {
            let lease_ms = config.lease.as_millis() as i64;
            let classes = node.runnable_classes();
            let store = node.store();
            let began = std::time::Instant::now();
            let claimed = store.claim(held, &classes, lease_ms, store.now()).await;
            if let Ok(Some(_)) = claimed {
                node.metrics().stage(Stage::Claim, began.elapsed());
            }
            claimed
        };
        match claimed {
            Ok(Some(claim)) => next = Some(claim),
            Ok(None) => {
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep(config.poll) => {}
                    _ = stop.requested() => return Served::Stopped,
                }
            }
            Err(StoreError::IdentityLost(_)) => return Served::Lost,
            Err(e) => {
                tracing::warn!(agent = %held.agent, error = %e, "claim failed; retrying");
                if !stop.pause(config.poll).await {
                    return Served::Stopped;
                }
            }
        }
    }
}

/// Return attempts whose lease expired (their agents died) to the queue, every `reap_every`,
/// until the node stops.
pub(super) async fn reap(node: Arc<Node>, mut stop: Stopping) {
    while stop.pause(node.config().reap_every).await {
        match node.store().reap_expired(node.store().now()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(
                    attempts = n,
                    "returned attempts with expired leases to the queue"
                );
                node.wake_agents();
            }
            Err(e) => tracing::warn!(error = %e, "reaping expired leases failed"),
        }
    }
}

/// Run one claimed attempt to its end and record it; returns the agent's next attempt when the
/// same transaction claimed one.
async fn run_claim(node: &Arc<Node>, held: &Held, claim: Claim) -> Option<Claim> {
    let job = &claim.job;
    let token = claim.lease_token.clone();
    let cancel = CancelToken::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    let log = JobLog::new(job.limits.log_bytes as usize);
    node.attempt_started(
        &job.id,
        Running {
            agent: held.agent.clone(),
            attempt: claim.attempt,
            started_ms: now_ms(),
            cancel: cancel.clone(),
            interrupted: interrupted.clone(),
            log: log.clone(),
        },
    );
    let heartbeat = tokio::spawn(keep_lease(node.clone(), token.clone(), cancel.clone()));
    let metrics = node.metrics();
    let waited_ms = node.store().now() - job.run_after_ms.max(job.created_ms);
    metrics.stage(
        Stage::Queued,
        std::time::Duration::from_millis(waited_ms.max(0) as u64),
    );

    let started = std::time::Instant::now();
    let prepared = prepare(node, &claim).await;
    metrics.stage(Stage::Prepare, started.elapsed());
    let (state, next, outcome_json, log, kv) = match prepared {
        Err(failure) => {
            let record = serde_json::json!({"kind": failure.code, "message": failure.message});
            let (state, next) = retry::after_failure(failure, job.attempts, job.max_attempts);
            (state, next, record, String::new(), Default::default())
        }
        Ok(prepared) => {
            let request = AttemptRequest {
                input: job.input.clone(),
                job: JobInfo {
                    job_id: job.id.clone(),
                    attempt: claim.attempt,
                    max_attempts: job.max_attempts,
                    task: job.task.as_ref().map(ToString::to_string),
                    kv_scope: job.kv_scope.clone(),
                },
                limits: job.limits,
                services: Arc::new(LeasedServices::new(
                    node.store().clone(),
                    token.clone(),
                    job.id.clone(),
                )),
                cancel: cancel.clone(),
                log,
            };
            let result = node.sandbox().run(&prepared, request).await;
            let (state, next) = if interrupted.load(Ordering::SeqCst) {
                (AttemptState::Interrupted, Next::Requeue)
            } else {
                retry::decide(&result.outcome, job.attempts, job.max_attempts)
            };
            metrics.attempt_finished(&result.outcome, result.duration);
            metrics.stage(Stage::Instantiate, result.instantiate);
            metrics.stage(Stage::Run, result.duration - result.instantiate);
            (
                state,
                next,
                retry::outcome_record(&result.outcome),
                result.log.text(),
                result.kv,
            )
        }
    };
    heartbeat.abort();
    node.attempt_ended(&job.id);
    let end = AttemptEnd {
        state,
        outcome: outcome_json,
        log,
        next,
        kv,
    };
    record(node, held, &claim, end, started).await
}

/// Record an attempt's end, fenced by its lease token; unless the node is draining, the same
/// transaction claims the agent's next attempt, which is returned.
async fn record(
    node: &Node,
    held: &Held,
    claim: &Claim,
    end: AttemptEnd,
    started: std::time::Instant,
) -> Option<Claim> {
    let (job, token, agent) = (&claim.job, &claim.lease_token, held.agent.as_str());
    let lease_ms = node.config().lease.as_millis() as i64;
    let store = node.store();
    let began = std::time::Instant::now();
    let recorded = if node.is_draining() {
        store
            .finish_attempt(token, end, store.now())
            .await
            .map(|status| (status, None))
    } else {
        let classes = node.runnable_classes();
        store
            .finish_and_claim(token, end, held, &classes, lease_ms, store.now())
            .await
    };
    node.metrics().stage(Stage::Finish, began.elapsed());
    match recorded {
        Ok((status, next)) => {
            tracing::debug!(agent, job = %job.id, attempt = claim.attempt, status = status.as_str(), ms = started.elapsed().as_millis() as u64, "attempt finished");
            if status.is_terminal() {
                node.metrics().job_finished(status);
                node.announce_finished(&job.id);
            } else {
                node.wake_agents();
            }
            next
        }
        Err(StoreError::StaleLease | StoreError::IdentityLost(_)) => {
            tracing::warn!(agent, job = %job.id, attempt = claim.attempt, "the attempt's lease or its identity was taken over while it ran; its result was refused (the job is recorded by its newer attempt)");
            None
        }
        Err(e) => {
            tracing::error!(agent, job = %job.id, error = %e, "could not record the attempt's result; its lease will expire and the job will run again");
            None
        }
    }
}

/// Look the component up and prepare it on this node; the version check runs again here.
async fn prepare(node: &Node, claim: &Claim) -> Result<Arc<crate::engine::Prepared>, JobFailure> {
    let job = &claim.job;
    let failure = |code: &str, message: String, retryable: bool| JobFailure {
        code: code.into(),
        message,
        retryable,
    };
    node.prepare_stored(&job.component, &job.optional_imports)
        .await
        .map_err(|e| match e {
            PrepareStoredError::Missing => failure(
                "component-missing",
                format!("the job's component {} is not in the store", job.component),
                false,
            ),
            PrepareStoredError::Store(e) => failure("store-unavailable", e.to_string(), true),
            PrepareStoredError::Prepare(PrepareError::Pool(PoolError::TimedOut {
                timeout, ..
            })) => failure(
                "compile-timeout",
                format!(
                    "compiling the job's component on node {} took longer than {} ms (--compile-timeout-ms); the compile goes on and its result is cached, so the next attempt starts without it",
                    node.config().node,
                    timeout.as_millis()
                ),
                true,
            ),
            PrepareStoredError::Prepare(PrepareError::Pool(e)) => {
                failure("compile-failed", e.to_string(), false)
            }
            PrepareStoredError::Prepare(e) => failure(
                "rejected-at-claim",
                format!(
                    "this node ({}) cannot run the job any more: {e}",
                    node.config().node
                ),
                false,
            ),
        })
}

/// Extend the lease until the attempt ends; stop the attempt if the lease is lost or the job
/// is cancelled.
async fn keep_lease(node: Arc<Node>, token: String, cancel: CancelToken) {
    loop {
        tokio::time::sleep(node.config().heartbeat).await;
        let lease_ms = node.config().lease.as_millis() as i64;
        let store = node.store();
        match store.heartbeat(&token, lease_ms, store.now()).await {
            Ok(false) => {}
            Ok(true) => {
                cancel.cancel();
                return;
            }
            Err(StoreError::StaleLease) => {
                tracing::warn!(
                    "an attempt lost its lease (it expired, or its identity was taken over); stopping it"
                );
                cancel.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; will retry"),
        }
    }
}
