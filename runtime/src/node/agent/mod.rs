//! Agents: executors with stable identities (`<node>/<n>`) that claim attempts, keep their
//! leases alive, run them, and record the result, every write fenced by the lease token.
//!
//! An agent that starts under an identity first recovers what an earlier incarnation of that
//! identity left running (at once, not after the lease); a reaper returns attempts whose lease
//! expired (dead agents elsewhere) to the queue. `loops.rs` starts both and stops them.

pub mod retry;
mod services;

use super::identity;
use super::state::{Node, PrepareStoredError, Running};
use super::stop::Stopping;
use crate::engine::{AttemptRequest, CancelToken};
use crate::host::JobInfo;
use crate::store::{AttemptEnd, AttemptState, Claim, JobFailure, Next, StoreError, now_ms};
use services::LeasedServices;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One agent: take an identity, recover what its last holder left running, then claim and
/// run attempts until the node stops.
pub(super) async fn run(node: Arc<Node>, mut stop: Stopping) {
    let config = node.config();
    // Take an identity no live process holds, then recover what its last holder left running.
    let id = tokio::select! {
        id = identity::acquire(
            node.store(),
            &config.node,
            node.identity_pool(),
            node.holder(),
            config.lease,
        ) => id,
        _ = stop.requested() => return,
    };
    tracing::info!(agent = %id, "agent started");
    node.took_identity(&id);
    match node
        .store()
        .recover_agent(&id, &config.node, now_ms())
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(agent = %id, attempts = n, "recovered attempts an earlier incarnation of this agent left running")
        }
        Err(e) => {
            tracing::error!(agent = %id, error = %e, "could not recover this agent's earlier attempts; the reaper will")
        }
    }
    let mut next: Option<Claim> = None;
    loop {
        // A claim in hand always runs (a draining node claims nothing new, so a stopping one
        // holds none).
        if let Some(claim) = next.take() {
            next = run_claim(&node, &id, claim).await;
            continue;
        }
        // Register interest before claiming, so a job inserted meanwhile is not missed.
        let woken = node.woken();
        let claimed = if node.is_draining() {
            Ok(None)
        } else {
            let lease_ms = config.lease.as_millis() as i64;
            let classes = node.runnable_classes();
            node.store().claim(&id, &classes, lease_ms, now_ms()).await
        };
        match claimed {
            Ok(Some(claim)) => next = Some(claim),
            Ok(None) => {
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep(config.poll) => {}
                    _ = stop.requested() => return,
                }
            }
            Err(e) => {
                tracing::warn!(agent = %id, error = %e, "claim failed; retrying");
                if !stop.pause(config.poll).await {
                    return;
                }
            }
        }
    }
}

/// Return attempts whose lease expired (their agents died) to the queue, every `reap_every`,
/// until the node stops.
pub(super) async fn reap(node: Arc<Node>, mut stop: Stopping) {
    while stop.pause(node.config().reap_every).await {
        match node.store().reap_expired(now_ms()).await {
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
async fn run_claim(node: &Arc<Node>, agent: &str, claim: Claim) -> Option<Claim> {
    let job = &claim.job;
    let token = claim.lease_token.clone();
    let cancel = CancelToken::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    node.attempt_started(
        &job.id,
        Running {
            agent: agent.to_string(),
            attempt: claim.attempt,
            started_ms: now_ms(),
            cancel: cancel.clone(),
            interrupted: interrupted.clone(),
        },
    );
    let heartbeat = tokio::spawn(keep_lease(node.clone(), token.clone(), cancel.clone()));

    let started = std::time::Instant::now();
    let (state, next, outcome_json, log, kv) = match prepare(node, &claim).await {
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
            };
            let result = node.sandbox().run(&prepared, request).await;
            let (state, next) = if interrupted.load(Ordering::SeqCst) {
                (AttemptState::Interrupted, Next::Requeue)
            } else {
                retry::decide(&result.outcome, job.attempts, job.max_attempts)
            };
            node.metrics()
                .attempt_finished(&result.outcome, result.duration);
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
    record(node, agent, &claim, end, started).await
}

/// Record an attempt's end, fenced by its lease token; unless the node is draining, the same
/// transaction claims the agent's next attempt, which is returned.
async fn record(
    node: &Node,
    agent: &str,
    claim: &Claim,
    end: AttemptEnd,
    started: std::time::Instant,
) -> Option<Claim> {
    let (job, token) = (&claim.job, &claim.lease_token);
    let lease_ms = node.config().lease.as_millis() as i64;
    let recorded = if node.is_draining() {
        node.store()
            .finish_attempt(token, end, now_ms())
            .await
            .map(|status| (status, None))
    } else {
        let classes = node.runnable_classes();
        node.store()
            .finish_and_claim(token, end, agent, &classes, lease_ms, now_ms())
            .await
    };
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
        Err(StoreError::StaleLease) => {
            tracing::warn!(agent, job = %job.id, attempt = claim.attempt, "the attempt's lease was taken over while it ran; its result was refused (the job is recorded by its newer attempt)");
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
        match node.store().heartbeat(&token, lease_ms, now_ms()).await {
            Ok(false) => {}
            Ok(true) => {
                cancel.cancel();
                return;
            }
            Err(StoreError::StaleLease) => {
                tracing::warn!("an attempt lost its lease; stopping it");
                cancel.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; will retry"),
        }
    }
}
