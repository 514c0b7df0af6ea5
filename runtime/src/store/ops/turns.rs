//! Whose turn it is: delayed jobs becoming due, and the slots of concurrency keys. Claims
//! take only `ready` queue rows; this module is the one place rows become ready after they
//! entered the queue `delayed` or `parked` (see the `queue_state!` of [`super::jobs`]).
//!
//! A job of a concurrency key holds one of the key's slots while its queue row is ready or
//! it runs. The count is read from those rows themselves, never kept apart, so it cannot
//! drift: [`settle`] writes the key's row in `concurrency_keys` (which serializes settles of
//! one key: on PostgreSQL the row lock, on SQLite the one writer), counts, and makes the
//! key's parked jobs ready, highest priority and longest waiting first, while they fit under
//! their own limit. Every change that may free or need a slot (an insert, a finish, a
//! requeue, a cancel, a delayed job becoming due) settles its key in the same transaction,
//! after its own writes; so whichever of two concurrent changes writes the row second counts
//! what the first committed.

use crate::store::sql::{Dialect, Sql, params};
use crate::store::*;

/// How many parked jobs one settle reads at a time.
const UNPARK_BATCH: u32 = 64;

/// Make the parked jobs of `key` ready while they fit: each under its own limit, counting the
/// key's ready and running jobs. Returns how many became ready.
pub(crate) async fn settle(s: &mut impl Sql, key: &str) -> StoreResult<u64> {
    let pg = s.dialect() == Dialect::Postgres;
    s.exec(
        "INSERT INTO concurrency_keys (key, settles) VALUES ($1, 1) ON CONFLICT (key) DO UPDATE SET settles = concurrency_keys.settles + 1",
        params![key],
    )
    .await?;
    let mut held: i64 = s
        .one(
            "SELECT (SELECT COUNT(*) FROM queue WHERE concurrency_key = $1 AND state = 'ready') + (SELECT COUNT(*) FROM jobs WHERE concurrency_key = $1 AND status = 'running') AS held",
            params![key],
        )
        .await?
        .get("held")?;
    let parked = if pg {
        "SELECT q.job_id, j.concurrency_limit FROM queue q JOIN jobs j ON j.id = q.job_id WHERE q.concurrency_key = $1 AND q.state = 'parked' ORDER BY q.priority DESC, q.run_after_ms, q.seq LIMIT $2 FOR UPDATE OF q SKIP LOCKED"
    } else {
        "SELECT q.job_id, j.concurrency_limit FROM queue q JOIN jobs j ON j.id = q.job_id WHERE q.concurrency_key = $1 AND q.state = 'parked' ORDER BY q.priority DESC, q.run_after_ms, q.seq LIMIT $2"
    };
    let mut unparked = 0;
    loop {
        let rows = s.rows(parked, params![key, UNPARK_BATCH]).await?;
        let batch = rows.len();
        for row in rows {
            let limit: Option<i64> = row.get("concurrency_limit")?;
            if held >= limit.unwrap_or(1) {
                return Ok(unparked);
            }
            let id: String = row.get("job_id")?;
            s.exec(
                "UPDATE queue SET state = 'ready' WHERE job_id = $1 AND state = 'parked'",
                params![&id],
            )
            .await?;
            held += 1;
            unparked += 1;
        }
        if batch < UNPARK_BATCH as usize {
            return Ok(unparked);
        }
    }
}

/// Delayed jobs whose time has come: at most `limit` of them, oldest first, become ready (or
/// parked, then settled, when they have a concurrency key). Returns how many were due.
pub(crate) async fn promote(s: &mut impl Sql, now: i64, limit: u32) -> StoreResult<u64> {
    let due = match s.dialect() {
        Dialect::Postgres => {
            "SELECT job_id, concurrency_key FROM queue WHERE state = 'delayed' AND run_after_ms <= $1 ORDER BY run_after_ms LIMIT $2 FOR UPDATE SKIP LOCKED"
        }
        Dialect::Sqlite => {
            "SELECT job_id, concurrency_key FROM queue WHERE state = 'delayed' AND run_after_ms <= $1 ORDER BY run_after_ms LIMIT $2"
        }
    };
    let rows = s.rows(due, params![now, limit]).await?;
    let mut keys = std::collections::BTreeSet::new();
    for row in &rows {
        let id: String = row.get("job_id")?;
        let key: Option<String> = row.get("concurrency_key")?;
        let state = if key.is_some() { "parked" } else { "ready" };
        s.exec(
            "UPDATE queue SET state = $2 WHERE job_id = $1 AND state = 'delayed'",
            params![&id, state],
        )
        .await?;
        keys.extend(key);
    }
    // Keys in one order, so two nodes promoting at once take their rows in the same order.
    for key in keys {
        settle(s, &key).await?;
    }
    Ok(rows.len() as u64)
}

/// When the next delayed job is due (ms since the epoch), if any is waiting.
pub(crate) async fn next_due(s: &mut impl Sql) -> StoreResult<Option<i64>> {
    s.one(
        "SELECT MIN(run_after_ms) AS due FROM queue WHERE state = 'delayed'",
        params![],
    )
    .await?
    .get("due")
}
