//! Retention: deleting finished jobs some time after they ended, then the components nothing
//! references any more, and (SQLite) giving the freed pages back to the file system.
//!
//! Every deletion is bounded (at most `limit` jobs or components per call, one transaction),
//! so a claim never waits behind a long one, and idempotent: on PostgreSQL the rows a batch takes
//! are locked `FOR UPDATE SKIP LOCKED`, so two nodes sweeping at once take disjoint batches.
//! What is never deleted: a job that is not finished (queued or running: `finished_ms` is set
//! exactly when a job is finished) or whose attempt still runs, and a component that a job or
//! a task version (registered or not) references.

use crate::store::sql::{Dialect, Record, Sql, params};
use crate::store::*;

/// The channel that tells nodes a component was deleted (payload: its hash), so they forget
/// what they prepared from it.
pub(crate) const COMPONENTS_CHANNEL: &str = "driftless_components";

/// The finished jobs a batch takes (`$1` the cutoff, `$2` the batch size), oldest first: one
/// range of the `jobs_finished` index, skipping any whose attempt still runs.
macro_rules! pick_jobs {
    () => {
        "SELECT id, concurrency_key FROM jobs j WHERE finished_ms < $1 AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = j.id AND a.state = 'running') ORDER BY finished_ms LIMIT $2"
    };
}

/// [`pick_jobs!`] on SQLite (PostgreSQL adds `FOR UPDATE SKIP LOCKED`).
pub(crate) const SQLITE_PICK_JOBS: &str = pick_jobs!();

/// Delete the unused components a batch takes (`$1` the cutoff, `$2` the batch size; `$lock`
/// locks the rows taken, on PostgreSQL): one range of the `blobs_used` index, each checked
/// against the `jobs_component` and `task_versions_blob` indexes.
macro_rules! delete_blobs {
    ($lock:literal) => {
        concat!(
            "DELETE FROM blobs WHERE hash IN (SELECT b.hash FROM blobs b WHERE b.used_ms < $1 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.component = b.hash) AND NOT EXISTS (SELECT 1 FROM task_versions v WHERE v.component = b.hash) ORDER BY b.used_ms LIMIT $2",
            $lock,
            ") RETURNING hash, size"
        )
    };
}

/// [`delete_blobs!`] on SQLite.
pub(crate) const SQLITE_DELETE_BLOBS: &str = delete_blobs!("");

/// The statements deleting the rows of the jobs listed in `$1` from `$table`, by `$column`:
/// (table, PostgreSQL's, SQLite's).
macro_rules! delete_rows {
    ($table:literal, $column:literal) => {
        (
            $table,
            concat!("DELETE FROM ", $table, " WHERE ", $column, " = ANY($1)"),
            concat!(
                "DELETE FROM ",
                $table,
                " WHERE ",
                $column,
                " IN (SELECT value FROM json_each($1))"
            ),
        )
    };
}

/// Every table holding rows of a job, children first (they reference their job), the jobs
/// last: a new table with a `job_id` column belongs here (a test checks the schema).
pub(crate) const JOB_ROWS: [(&str, &str, &str); 5] = [
    delete_rows!("events", "job_id"),
    delete_rows!("attempts", "job_id"),
    delete_rows!("queue", "job_id"),
    // A job-scoped kv's data (its scope is the job's id; a task's scope outlives its jobs).
    delete_rows!("kv", "scope"),
    delete_rows!("jobs", "id"),
];

/// What one batch of [`RetentionStore::expire_jobs`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiredJobs {
    /// Jobs deleted, with their attempts, events, queue rows and job-scoped kv data.
    pub jobs: u64,
    /// Rows deleted in all, the jobs' own included.
    pub rows: u64,
}

/// What one batch of [`RetentionStore::expire_blobs`] deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiredBlobs {
    /// The components deleted, by hash.
    pub hashes: Vec<String>,
    /// Their sizes in bytes, summed.
    pub bytes: u64,
}

/// Delete at most `limit` jobs that finished before `before_ms` (oldest first), with every row
/// that belongs to them: attempts, events, a queue row should one be left, the kv data of
/// a job-scoped kv (`kv_scope` = the job's id; a task's kv scope outlives its jobs), and the
/// row of a concurrency key no queued or running job uses any more.
pub(crate) async fn expire_jobs(
    s: &mut impl Sql,
    before_ms: i64,
    limit: u32,
) -> StoreResult<ExpiredJobs> {
    let pg = s.dialect() == Dialect::Postgres;
    let pick = if pg {
        concat!(pick_jobs!(), " FOR UPDATE SKIP LOCKED")
    } else {
        SQLITE_PICK_JOBS
    };
    let picked = s.rows(pick, params![before_ms, limit]).await?;
    let ids = picked
        .iter()
        .map(|r| r.get::<String>("id"))
        .collect::<StoreResult<Vec<_>>>()?;
    if ids.is_empty() {
        return Ok(ExpiredJobs::default());
    }
    let mut keys = std::collections::BTreeSet::new();
    for r in &picked {
        keys.extend(r.get::<Option<String>>("concurrency_key")?);
    }
    let mut done = ExpiredJobs::default();
    for (_, postgres, sqlite) in JOB_ROWS {
        // The last statement deletes the jobs themselves.
        done.jobs = s
            .exec(if pg { postgres } else { sqlite }, params![ids.as_slice()])
            .await?;
        done.rows += done.jobs;
    }
    // A concurrency key's row goes with its last job (a later job of the key writes it anew).
    for key in &keys {
        done.rows += s
            .exec(
                "DELETE FROM concurrency_keys WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.concurrency_key = $1) AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.concurrency_key = $1 AND j.status = 'running')",
                params![key],
            )
            .await?;
    }
    Ok(done)
}

/// Delete at most `limit` components unused since before `before_ms` (stored or uploaded
/// again: `used_ms`) that no job and no task version references.
pub(crate) async fn expire_blobs(
    s: &mut impl Sql,
    before_ms: i64,
    limit: u32,
) -> StoreResult<ExpiredBlobs> {
    let sql = match s.dialect() {
        Dialect::Postgres => delete_blobs!(" FOR UPDATE SKIP LOCKED"),
        Dialect::Sqlite => SQLITE_DELETE_BLOBS,
    };
    let mut out = ExpiredBlobs::default();
    for r in s.rows(sql, params![before_ms, limit]).await? {
        let hash: String = r.get("hash")?;
        s.notify(COMPONENTS_CHANNEL, &hash).await?;
        out.hashes.push(hash);
        out.bytes += r.get::<u64>("size")?;
    }
    Ok(out)
}

/// SQLite: give at most 1000 free pages (4 MiB at the default page size) back to the file
/// system, an incremental vacuum step (the file shrinks at the next checkpoint). Returns the
/// bytes given back and whether free pages remain. PostgreSQL reuses freed space itself
/// (autovacuum): nothing to do.
pub(crate) async fn reclaim(s: &mut impl Sql) -> StoreResult<(u64, bool)> {
    if s.dialect() != Dialect::Sqlite {
        return Ok((0, false));
    }
    let free = |r: Record| r.get::<u64>("freelist_count");
    let page_size: u64 = s.one("PRAGMA page_size", &[]).await?.get("page_size")?;
    let before = free(s.one("PRAGMA freelist_count", &[]).await?)?;
    if before == 0 {
        return Ok((0, false));
    }
    // A pragma takes no parameters: the step is a constant.
    s.rows("PRAGMA incremental_vacuum(1000)", &[]).await?;
    let after = free(s.one("PRAGMA freelist_count", &[]).await?)?;
    Ok((before.saturating_sub(after) * page_size, after > 0))
}
