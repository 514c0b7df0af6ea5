//! Retention, the loop that keeps a node running for months: finished jobs are deleted once
//! they ended `--retention` ago (with their attempts, events, logs and output), then the
//! components nothing references any more and nobody uploaded within the retention, and
//! (SQLite) the freed pages go back to the file system.
//!
//! Every node runs it: each step is one bounded transaction ([`BATCH`] jobs), and on PostgreSQL
//! two nodes sweeping at once take disjoint batches. Between steps it pauses ([`PAUSE`]), so the
//! agents' claims and finishes go first; a queued or running job, a job's or task version's
//! component, is never deleted (the store's rules, `store/ops/retention.rs`).

use super::state::Node;
use super::stop::Stopping;
use crate::store::Store;
use std::time::Duration;

/// Jobs deleted per transaction.
pub const BATCH: u32 = 500;
/// Components deleted per transaction (each may be megabytes).
pub const BLOB_BATCH: u32 = 20;
/// The pause between two steps of a sweep.
pub const PAUSE: Duration = Duration::from_millis(20);

/// How often a node sweeps: a tenth of the retention, between 1 s and 1 min.
pub fn sweep_every(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Sweep at start, then every [`sweep_every`], until the node stops.
pub async fn run(node: std::sync::Arc<Node>, mut stop: Stopping) {
    let every = sweep_every(node.config().retention);
    loop {
        if !sweep(&node, &mut stop).await || !stop.pause(every).await {
            return;
        }
    }
}

/// What one sweep deleted and gave back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Swept {
    jobs: u64,
    blobs: u64,
    reclaimed: u64,
}

/// One sweep: every job finished before the cutoff, batch after batch, then the components,
/// then the free pages. False when the node stops meanwhile.
async fn sweep(node: &Node, stop: &mut Stopping) -> bool {
    let store = node.store();
    let retention_ms = i64::try_from(node.config().retention.as_millis()).unwrap_or(i64::MAX);
    let before = store.now().saturating_sub(retention_ms);
    let mut swept = Swept::default();
    let going = sweep_jobs(node, store, before, &mut swept, stop).await
        && sweep_blobs(node, store, before, &mut swept, stop).await
        && reclaim(node, store, &mut swept, stop).await;
    if swept != Swept::default() {
        tracing::info!(
            jobs = swept.jobs,
            components = swept.blobs,
            reclaimed_bytes = swept.reclaimed,
            retention_s = node.config().retention.as_secs(),
            "retention: deleted what finished before the retention"
        );
    }
    going
}

async fn sweep_jobs(
    node: &Node,
    store: &std::sync::Arc<dyn Store>,
    before: i64,
    swept: &mut Swept,
    stop: &mut Stopping,
) -> bool {
    loop {
        let done = match store.expire_jobs(before, BATCH).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(error = %e, "retention: could not delete finished jobs; trying again at the next sweep");
                return true;
            }
        };
        node.metrics().jobs_expired(done.jobs);
        swept.jobs += done.jobs;
        if done.jobs > 0 {
            // Give back about what the batch freed, one bounded step.
            match store.reclaim_space().await {
                Ok((bytes, _)) => {
                    node.metrics().bytes_reclaimed(bytes);
                    swept.reclaimed += bytes;
                }
                Err(e) => tracing::warn!(error = %e, "retention: could not give free space back"),
            }
        }
        if done.jobs < u64::from(BATCH) {
            return true;
        }
        if !stop.pause(PAUSE).await {
            return false;
        }
    }
}

async fn sweep_blobs(
    node: &Node,
    store: &std::sync::Arc<dyn Store>,
    before: i64,
    swept: &mut Swept,
    stop: &mut Stopping,
) -> bool {
    loop {
        let done = match store.expire_blobs(before, BLOB_BATCH).await {
            Ok(done) => done,
            Err(e) => {
                // A job naming the component may have been stored meanwhile (PostgreSQL):
                // nothing was deleted, and the next sweep looks again.
                tracing::warn!(error = %e, "retention: could not delete unused components; trying again at the next sweep");
                return true;
            }
        };
        let n = done.hashes.len() as u64;
        node.metrics().blobs_expired(n, done.bytes);
        swept.blobs += n;
        for hash in &done.hashes {
            node.sandbox().forget(hash);
        }
        if n < u64::from(BLOB_BATCH) {
            return true;
        }
        if !stop.pause(PAUSE).await {
            return false;
        }
    }
}

/// Give every free page back, a bounded step at a time.
async fn reclaim(
    node: &Node,
    store: &std::sync::Arc<dyn Store>,
    swept: &mut Swept,
    stop: &mut Stopping,
) -> bool {
    loop {
        match store.reclaim_space().await {
            Ok((bytes, more)) => {
                node.metrics().bytes_reclaimed(bytes);
                swept.reclaimed += bytes;
                if !more || bytes == 0 {
                    return true;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention: could not give free space back");
                return true;
            }
        }
        if !stop.pause(PAUSE).await {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_come_at_a_tenth_of_the_retention_within_bounds() {
        assert_eq!(sweep_every(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(
            sweep_every(Duration::from_secs(300)),
            Duration::from_secs(30)
        );
        assert_eq!(
            sweep_every(Duration::from_secs(7 * 86_400)),
            Duration::from_secs(60)
        );
    }
}
