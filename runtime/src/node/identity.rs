//! Exclusive agent identities. A node's agents take their identities from a pool
//! (`<node>/0` .. `<node>/<pool-1>`), each held in the store by this process, renewed while
//! it lives and released when it stops. At any moment at most one live process acts under an
//! identity. A hold ends when its holder releases it, when its lease runs out, or — on the
//! same machine — as soon as the holding process is gone (its pid no longer runs the process
//! that took it), so a restarted node takes back its identities at once.

use super::stop::Stopping;
use crate::store::{IdentityHold, Store, StoreResult, now_ms};
use std::sync::Arc;
use std::time::Duration;

/// This process, as a holder: `host:pid:start` (start = the process's start time in clock
/// ticks since boot, so a reused pid is not mistaken for this process).
pub fn this_process() -> String {
    let pid = std::process::id();
    format!("{}:{pid}:{}", host(), start_time(pid).unwrap_or(0))
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Field 22 of `/proc/<pid>/stat`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `holder` is a process on this machine that no longer runs.
fn gone(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(h)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if h != host() {
        return false;
    }
    match (pid.parse::<u32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => start_time(pid) != Some(start),
        _ => false,
    }
}

/// Whether a hold can be taken over now, and by which compare-and-set value.
fn takeable(hold: &Option<IdentityHold>, me: &str, now: i64) -> Option<Option<String>> {
    match hold {
        None => Some(None),
        Some(IdentityHold { holder: None, .. }) => Some(None),
        Some(IdentityHold {
            holder: Some(h),
            lease_expires_ms,
        }) => {
            if h != me && (*lease_expires_ms < now || gone(h)) {
                Some(Some(h.clone()))
            } else {
                None
            }
        }
    }
}

/// Take one identity of `node`'s pool of `pool` for `me`, lowest free number first; while
/// none is free, wait (saying so) and try again.
pub async fn acquire(
    store: &Arc<dyn Store>,
    node: &str,
    pool: usize,
    me: &str,
    lease: Duration,
) -> String {
    let mut warned = false;
    loop {
        match try_acquire(store, node, pool, me, lease).await {
            Ok(Some((id, skipped))) => {
                if !skipped.is_empty() {
                    tracing::warn!(identity = %id, held = ?skipped, "identities held by live processes were skipped; took the next free one");
                }
                return id;
            }
            Ok(None) => {
                if !warned {
                    tracing::warn!(
                        node,
                        pool,
                        "every identity of this node is held by a live process; waiting for one to be free"
                    );
                    warned = true;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not take an identity; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One pass over the pool: the identity taken and the ones skipped as held.
async fn try_acquire(
    store: &Arc<dyn Store>,
    node: &str,
    pool: usize,
    me: &str,
    lease: Duration,
) -> StoreResult<Option<(String, Vec<String>)>> {
    let mut skipped = Vec::new();
    for n in 0..pool {
        let id = format!("{node}/{n}");
        let now = now_ms();
        let hold = store.identity_holder(&id).await?;
        let Some(expected) = takeable(&hold, me, now) else {
            if hold.and_then(|h| h.holder).as_deref() != Some(me) {
                skipped.push(id);
            }
            continue;
        };
        if store
            .take_identity(
                &id,
                node,
                expected.as_deref(),
                me,
                lease.as_millis() as i64,
                now,
            )
            .await?
        {
            return Ok(Some((id, skipped)));
        }
    }
    Ok(None)
}

/// Renew this process's holds until the node stops.
pub async fn keep_held(store: Arc<dyn Store>, me: String, lease: Duration, mut stop: Stopping) {
    while stop.pause(lease / 3).await {
        if let Err(e) = store
            .renew_identities(&me, lease.as_millis() as i64, now_ms())
            .await
        {
            tracing::warn!(error = %e, "could not renew this node's identities; retrying");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_gone() {
        let me = this_process();
        assert!(!gone(&me), "{me}");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid).unwrap_or(1);
        child.wait().unwrap();
        assert!(gone(&format!("{}:{pid}:{start}", host())));
        assert!(
            !gone("another-host:1:1"),
            "holders elsewhere wait for their lease"
        );
    }

    #[test]
    fn a_live_hold_is_not_takeable_an_expired_or_free_one_is() {
        let me = this_process();
        let live = Some(IdentityHold {
            holder: Some("another-host:1:1".into()),
            lease_expires_ms: 2_000,
        });
        assert_eq!(takeable(&live, &me, 1_000), None);
        assert_eq!(
            takeable(&live, &me, 3_000),
            Some(Some("another-host:1:1".into()))
        );
        assert_eq!(takeable(&None, &me, 0), Some(None));
        let mine = Some(IdentityHold {
            holder: Some(me.clone()),
            lease_expires_ms: 0,
        });
        assert_eq!(
            takeable(&mine, &me, 1_000),
            None,
            "never take one's own twice"
        );
    }
}
