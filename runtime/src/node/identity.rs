//! Exclusive agent identities. A node's agents take their identities from a pool
//! (`<node>/0` .. `<node>/<pool-1>`), each held in the store by this process, renewed while
//! it lives and released when it stops. A hold ends when its holder releases it, when its
//! lease runs out (by the store's clock), when the registry marks its process gone, or — on
//! the same machine — as soon as the holding process is gone (its pid no longer runs the
//! process that took it), so a restarted node takes back its identities at once.
//!
//! Every take returns a fresh hold token ([`Held`]), and the store checks it on every claim
//! and on every write about an attempt claimed under it. So at any moment at most one live
//! process acts under an identity: a process whose hold lapsed (it was frozen or cut off past
//! its lease) and was taken over finds its next claim refused, its attempts fenced out, and
//! its agent takes a free identity of the pool instead (see `agent`). Attempts left by a
//! holder known dead are recovered by the next holder at once; those of a holder that may
//! still run are left to their lease.

use super::stop::Stopping;
use crate::store::{Held, IdentityHold, Store, StoreResult};
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

/// Who an identity can be taken from now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Takeable {
    /// Nobody holds it.
    Free,
    /// Its holder's lease ran out; the holder may still run.
    Lapsed(String),
    /// Its holder is a process on this machine that no longer runs.
    Dead(String),
}

impl Takeable {
    /// The compare-and-set value of the take.
    fn expected(&self) -> Option<&str> {
        match self {
            Takeable::Free => None,
            Takeable::Lapsed(h) | Takeable::Dead(h) => Some(h),
        }
    }
}

/// Whether a hold can be taken over now (`None`: it is held, by `me` or a live process).
fn takeable(hold: &Option<IdentityHold>, me: &str, now: i64) -> Option<Takeable> {
    match hold {
        None | Some(IdentityHold { holder: None, .. }) => Some(Takeable::Free),
        Some(IdentityHold {
            holder: Some(h),
            lease_expires_ms,
        }) => {
            if h == me {
                None
            } else if gone(h) {
                Some(Takeable::Dead(h.clone()))
            } else if *lease_expires_ms < now {
                Some(Takeable::Lapsed(h.clone()))
            } else {
                None
            }
        }
    }
}

/// An identity this process took.
pub struct Taken {
    /// The identity and its fresh hold.
    pub held: Held,
    /// Its previous holder, when that process is known dead (what it left running is
    /// recovered at once).
    pub dead: Option<String>,
}

/// Take one identity of `node`'s pool of `pool` for `me`, lowest free number first; while
/// none is free, wait (saying so) and try again.
pub async fn acquire(
    store: &Arc<dyn Store>,
    node: &str,
    pool: usize,
    me: &str,
    lease: Duration,
) -> Taken {
    let mut warned = false;
    loop {
        match try_acquire(store, node, pool, me, lease).await {
            Ok(Some((taken, skipped))) => {
                if !skipped.is_empty() {
                    tracing::warn!(identity = %taken.held.agent, held = ?skipped, "identities held by live processes were skipped; took the next free one");
                }
                return taken;
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
) -> StoreResult<Option<(Taken, Vec<String>)>> {
    let mut skipped = Vec::new();
    for n in 0..pool {
        let id = format!("{node}/{n}");
        // A take that lost a race (the registry freed the identity, another process took it)
        // looks again once, so the lowest takeable number is taken.
        for _ in 0..2 {
            let hold = store.identity_holder(&id).await?;
            let now = store.now();
            let Some(from) = takeable(&hold, me, now) else {
                if hold.and_then(|h| h.holder).as_deref() != Some(me) {
                    skipped.push(id.clone());
                }
                break;
            };
            let lease_ms = lease.as_millis() as i64;
            let taken = store
                .take_identity(&id, node, from.expected(), me, lease_ms, now)
                .await?;
            if let Some(hold) = taken {
                let dead = match from {
                    Takeable::Dead(h) => Some(h),
                    _ => None,
                };
                let held = Held { agent: id, hold };
                return Ok(Some((Taken { held, dead }, skipped)));
            }
        }
    }
    Ok(None)
}

/// Renew this process's holds until the node stops.
pub async fn keep_held(store: Arc<dyn Store>, me: String, lease: Duration, mut stop: Stopping) {
    while stop.pause(lease / 3).await {
        if let Err(e) = store
            .renew_identities(&me, lease.as_millis() as i64, store.now())
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
            Some(Takeable::Lapsed("another-host:1:1".into())),
            "a lapsed holder elsewhere may still run: not known dead"
        );
        assert_eq!(takeable(&None, &me, 0), Some(Takeable::Free));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid).unwrap_or(1);
        child.wait().unwrap();
        let dead = format!("{}:{pid}:{start}", host());
        let left = Some(IdentityHold {
            holder: Some(dead.clone()),
            lease_expires_ms: i64::MAX,
        });
        assert_eq!(takeable(&left, &me, 0), Some(Takeable::Dead(dead)));
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
