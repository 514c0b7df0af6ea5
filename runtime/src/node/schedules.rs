//! The schedule loop: every node fires the cron schedules whose next tick is due. Each firing
//! makes its job exactly as a submission to the task does (the task's `current` version
//! resolved at that moment, admitted, with the schedule's input), and stores it in the
//! transaction that moves the schedule on to its next tick by compare-and-set: of the nodes
//! firing one tick at once, one stores its job and the others change nothing.
//!
//! Late and missed ticks follow
//! [`lifecycle::schedules::CATCH_UP`](crate::lifecycle::schedules::CATCH_UP): ticks up to a
//! minute late fire in order; older ones are skipped, counted in the job's `queued` event, a
//! log line and `driftless_schedule_ticks_skipped_total`.

use super::resolver::TaskRef;
use super::state::Node;
use super::stop::Stopping;
use crate::admission;
use crate::lifecycle::schedules::Timetable;
use crate::store::{Firing, NewJob, Schedule, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many due schedules one pass fires; more are fired by the next pass, at once.
const DUE_BATCH: u32 = 100;

/// A schedule whose due tick cannot be fired is said in the log at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Fire due schedules until the node stops: sleep until the earliest next tick, or one poll
/// interval at most (schedules put through other nodes are seen within it).
pub(super) async fn run(node: Arc<Node>, mut stop: Stopping) {
    let poll = node.config().poll;
    let mut warned: HashMap<String, Instant> = HashMap::new();
    let mut wait = Duration::ZERO;
    while stop.pause(wait).await {
        wait = poll;
        let store = node.store();
        let now = store.now();
        match store.next_schedule_tick().await {
            Ok(Some(next)) if next <= now => {
                if fire_due(&node, now, &mut warned).await {
                    // Look again at once: the next tick may be due sooner than a poll.
                    wait = Duration::ZERO;
                }
            }
            Ok(Some(next)) => wait = poll.min(Duration::from_millis((next - now) as u64)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading when the next schedule tick is due failed")
            }
        }
    }
}

/// Fire every schedule due at `now`; whether any moved on (fired here or elsewhere).
async fn fire_due(node: &Node, now: i64, warned: &mut HashMap<String, Instant>) -> bool {
    let due = match node.store().due_schedules(now, DUE_BATCH).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "reading the due schedules failed");
            return false;
        }
    };
    let mut moved = false;
    for schedule in due {
        match fire(node, &schedule, now).await {
            Ok(m) => {
                moved |= m;
                warned.remove(&schedule.name);
            }
            Err(why) => {
                let last = warned.get(&schedule.name);
                if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    tracing::warn!(schedule = %schedule.name, task = %schedule.task, "{why}");
                    warned.insert(schedule.name.clone(), Instant::now());
                }
            }
        }
    }
    moved
}

/// Fire `schedule`'s due tick: make its job and store it with the schedule's move. Ok(true)
/// when the schedule moved on (here, or through another node first); an error says why its
/// tick could not fire (it is tried again within a poll interval).
async fn fire(node: &Node, schedule: &Schedule, now: i64) -> Result<bool, String> {
    let table = Timetable::parse(&schedule.cron, Some(&schedule.timezone), now).map_err(|e| {
        format!(
            "the schedule cannot fire: {e}; replace it (PUT /v1/schedules/{})",
            schedule.name
        )
    })?;
    let Some(due) = table.due(schedule.next_tick_ms, now) else {
        return Ok(false);
    };
    let current = TaskRef {
        name: schedule.task.clone(),
        version: None,
    };
    let (admitted, resolved) = admission::admit_task(node, &current, &[])
        .await
        .map_err(|e| {
            format!(
                "the job of its tick at {} cannot be made, so the tick waits (it fires once the job can be made; ticks missed meanwhile are skipped): {e}",
                crate::lifecycle::attempts::rfc3339(due.tick_ms)
            )
        })?;
    let store = node.store();
    let id = format!("job_{}", uuid::Uuid::now_v7().simple());
    let job = NewJob {
        schedule: Some(Firing {
            schedule: schedule.name.clone(),
            revision: schedule.revision,
            due_ms: schedule.next_tick_ms,
            tick_ms: due.tick_ms,
            skipped: due.skipped,
            next_ms: due.next_ms,
        }),
        ..admitted.job(Some(&resolved), id, schedule.input.clone(), store.now())
    };
    match store.fire_schedule(job).await {
        Ok(Some(inserted)) => {
            let metrics = node.metrics();
            metrics.job_submitted();
            metrics.schedule_fired(due.skipped);
            node.wake_agents();
            if due.skipped > 0 {
                tracing::warn!(
                    schedule = %schedule.name,
                    job = %inserted.job.id,
                    tick = %crate::lifecycle::attempts::rfc3339(due.tick_ms),
                    "skipped {} missed tick(s) (no node fired them in time); fired the latest as the job",
                    due.skipped
                );
            } else {
                tracing::debug!(schedule = %schedule.name, job = %inserted.job.id, tick_ms = due.tick_ms, version = resolved.version, "schedule fired");
            }
            Ok(true)
        }
        // Another node fired the tick first, or the schedule changed: nothing was stored.
        Ok(None) => Ok(true),
        Err(StoreError::TaskVersionGone { task, version }) => {
            // `current` moved through another node and the version was unregistered: resolve
            // again on the next pass.
            node.forget_resolution(&task);
            Err(format!(
                "version {version} of task {task} was unregistered as the tick fired; nothing was stored, and the tick fires again with the current version"
            ))
        }
        Err(e) => Err(format!(
            "storing the job of its tick failed, so nothing was stored and the tick fires again: {e}"
        )),
    }
}
