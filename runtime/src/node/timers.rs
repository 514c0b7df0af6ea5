//! The timer loop: delayed jobs, and retries waiting out their backoff, become ready (or wait
//! for a slot of their concurrency key) when their time comes. Every node runs it; two nodes
//! promoting at once each take different rows.

use super::state::Node;
use super::stop::Stopping;
use std::sync::Arc;
use std::time::Duration;

/// How many due jobs one transaction promotes; more are promoted by the next, at once.
const PROMOTE_BATCH: u32 = 500;

/// Promote due jobs until the node stops: sleep until the next one is due, or one poll
/// interval at most (jobs delayed through other nodes are seen within it).
pub(super) async fn run(node: Arc<Node>, mut stop: Stopping) {
    let poll = node.config().poll;
    let mut wait = Duration::ZERO;
    while stop.pause(wait).await {
        wait = poll;
        let store = node.store();
        let now = store.now();
        match store.next_due().await {
            Ok(Some(due)) if due <= now => match store.promote_due(now, PROMOTE_BATCH).await {
                Ok(due) => {
                    if due > 0 {
                        node.wake_agents();
                    }
                    if due == u64::from(PROMOTE_BATCH) {
                        // More may be due: look again at once.
                        wait = Duration::ZERO;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "making due jobs ready failed"),
            },
            Ok(Some(due)) => wait = poll.min(Duration::from_millis((due - now) as u64)),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading when the next delayed job is due failed"),
        }
    }
}
