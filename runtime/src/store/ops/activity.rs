//! The store's jobs over time, for `GET /v1/activity` (the console's charts): how many jobs
//! waited and how many attempts ran at the end of each bucket, and how many jobs ended in it,
//! counted from the rows' own times, so every node of a store sees the same history and a
//! restart loses none of it. Read-only; six aggregate statements, whatever the bucket count.
//!
//! Jobs and attempts carry no index on their times, so each statement reads the rows of the
//! window and the jobs still open; it is meant for a console refreshing every few seconds,
//! not for a tight loop.

use crate::store::StoreResult;
use crate::store::sql::{Sql, params};

/// One bucket of [`activity`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityCounts {
    /// Jobs accepted and not finished, with no attempt running, at the bucket's end.
    pub queued: u64,
    /// Attempts running at the bucket's end.
    pub running: u64,
    /// Jobs that succeeded within the bucket.
    pub succeeded: u64,
    /// Jobs that failed within the bucket.
    pub failed: u64,
    /// Jobs cancelled within the bucket.
    pub cancelled: u64,
}

/// Jobs accepted per bucket (`$1`: the window's start, `$2`: the bucket width).
const CREATED: &str = "SELECT (created_ms - $1 - 1) / $2 AS b, COUNT(*) AS n FROM jobs WHERE created_ms > $1 GROUP BY 1";
/// Attempts started per bucket.
const STARTED: &str = "SELECT (started_ms - $1 - 1) / $2 AS b, COUNT(*) AS n FROM attempts WHERE started_ms > $1 GROUP BY 1";
/// Attempts ended per bucket.
const ENDED: &str = "SELECT (finished_ms - $1 - 1) / $2 AS b, COUNT(*) AS n FROM attempts WHERE finished_ms > $1 GROUP BY 1";
/// Jobs finished per bucket, by status.
const FINISHED: &str = "SELECT (finished_ms - $1 - 1) / $2 AS b, status, COUNT(*) AS n FROM jobs WHERE finished_ms > $1 GROUP BY 1, status";

/// The index of bucket `b` among `n`, if it is one (a row stamped after now by another
/// node's clock is left out).
fn bucket(b: i64, n: usize) -> Option<usize> {
    usize::try_from(b).ok().filter(|b| *b < n)
}

/// `count` buckets of `step` ms each, the first starting after `from` (a bucket covers
/// `(start, start + step]`), oldest first.
pub(crate) async fn activity(
    s: &mut impl Sql,
    from: i64,
    step: i64,
    count: u32,
) -> StoreResult<Vec<ActivityCounts>> {
    let n = count as usize;
    let open_jobs: u64 = s
        .row(
            "SELECT COUNT(*) AS n FROM jobs WHERE created_ms <= $1 AND (finished_ms IS NULL OR finished_ms > $1)",
            params![from],
        )
        .await?
        .map_or(Ok(0), |r| r.get("n"))?;
    let running_attempts: u64 = s
        .row(
            "SELECT COUNT(*) AS n FROM attempts WHERE started_ms <= $1 AND (finished_ms IS NULL OR finished_ms > $1)",
            params![from],
        )
        .await?
        .map_or(Ok(0), |r| r.get("n"))?;
    let mut created = vec![0u64; n];
    let mut started = vec![0u64; n];
    let mut ended = vec![0u64; n];
    for (sql, into) in [
        (CREATED, &mut created),
        (STARTED, &mut started),
        (ENDED, &mut ended),
    ] {
        for r in s.rows(sql, params![from, step]).await? {
            if let Some(b) = bucket(r.get("b")?, n) {
                into[b] += r.get::<u64>("n")?;
            }
        }
    }
    let mut out = vec![ActivityCounts::default(); n];
    let mut finished = vec![0u64; n];
    for r in s.rows(FINISHED, params![from, step]).await? {
        let Some(b) = bucket(r.get("b")?, n) else {
            continue;
        };
        let count: u64 = r.get("n")?;
        finished[b] += count;
        match r.get::<String>("status")?.as_str() {
            "succeeded" => out[b].succeeded += count,
            "failed" => out[b].failed += count,
            _ => out[b].cancelled += count,
        }
    }
    let (mut open, mut running) = (open_jobs as i64, running_attempts as i64);
    for (i, bucket) in out.iter_mut().enumerate() {
        open += created[i] as i64 - finished[i] as i64;
        running += started[i] as i64 - ended[i] as i64;
        bucket.running = running.max(0) as u64;
        bucket.queued = (open - running).max(0) as u64;
    }
    Ok(out)
}
