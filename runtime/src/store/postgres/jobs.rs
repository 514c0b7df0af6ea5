//! Jobs and attempts in PostgreSQL: claiming, finishing, cancelling and losing attempts. Each
//! is one statement (data-modifying CTEs: atomic on its own, one round trip) or, for cancel,
//! runs inside its caller's transaction.
//!
//! Locks are always taken attempt first, then job (finish, the reaper, recovery, fenced
//! writes); a claim locks only a queued job, which no running attempt belongs to. So these
//! statements do not deadlock with each other.

use super::{
    GenericClient, JOB_BY_ID, JOB_COLUMN_COUNT, col, job_columns, job_from_row, one, opt, uint,
};
use crate::store::*;
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

/// Claim in one statement: lock the head of the queue, skipping jobs another claimer holds
/// (claimers on every node proceed in parallel and never wait for each other), mark it
/// running, count the attempt, and record the attempt row (numbered by the job's own counter,
/// read under its row lock) and the `claimed` event. Returns the job's columns, then the
/// attempt's number and the job's `updated_ms` before the claim.
const CLAIM: &str = concat!(
    "WITH next AS (
         SELECT id AS next_id, updated_ms AS read_updated_ms FROM jobs
         WHERE status = 'queued' AND run_after_ms <= $1 AND (class IS NULL OR class = ANY($2))
         ORDER BY run_after_ms, seq LIMIT 1
         FOR UPDATE SKIP LOCKED
     ),
     job AS (
         UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1,
             attempt_rows = jobs.attempt_rows + 1, updated_ms = $1
         FROM next WHERE jobs.id = next.next_id
         RETURNING ",
    job_columns!(),
    ", attempt_rows, read_updated_ms
     ),
     attempt AS (
         INSERT INTO attempts (job_id, number, agent, lease_token, lease_expires_ms, state, started_ms)
         SELECT id, attempt_rows, $3, $4, $5, 'running', $1 FROM job
     ),
     event AS (
         INSERT INTO events (job_id, attempt, at_ms, kind, message)
         SELECT id, attempt_rows, $1, 'claimed', 'attempt ' || attempt_rows || ' claimed by ' || $3::text FROM job
     )
     SELECT * FROM job"
);

fn new_token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Claim the next runnable job for `agent` among those without a class or of `classes`.
pub(super) async fn claim(
    c: &impl GenericClient,
    agent: &str,
    classes: &[String],
    lease_ms: i64,
    now: i64,
) -> StoreResult<Option<Claim>> {
    let token = new_token();
    let expires = now + lease_ms;
    let Some(row) = opt(c, CLAIM, &[&now, &classes, &agent, &token, &expires]).await? else {
        return Ok(None);
    };
    let mut job = job_from_row(&row)?;
    // As in SQLite, the job is answered as it was read, with its new status and attempts.
    job.updated_ms = col(&row, JOB_COLUMN_COUNT + 1)?;
    Ok(Some(Claim {
        job,
        attempt: uint(col(&row, JOB_COLUMN_COUNT)?),
        lease_token: token,
        lease_expires_ms: expires,
    }))
}

/// Ending an attempt, in one statement: `$1` token, `$2` the attempt's state, `$3` now,
/// `$4` outcome, `$5` log, `$6` the event's kind, `$7` its message after `attempt <n>`; the
/// job's update sets `$update` (with `$8`, `$9` as it needs). No row: the token is stale.
macro_rules! finish {
    ($update:literal) => {
        concat!(
            "WITH attempt AS (
                 UPDATE attempts SET state = $2, finished_ms = $3, outcome = $4, log = $5
                 WHERE lease_token = $1 AND state = 'running'
                 RETURNING job_id, number
             ),
             job AS (
                 UPDATE jobs SET ",
            $update,
            " FROM attempt WHERE jobs.id = attempt.job_id AND jobs.status = 'running'
             ),
             event AS (
                 INSERT INTO events (job_id, attempt, at_ms, kind, message)
                 SELECT job_id, number, $3, $6, 'attempt ' || number || $7 FROM attempt
             )
             SELECT number FROM attempt"
        )
    };
}

const SUCCEED: &str =
    finish!("status = 'succeeded', output = $8, error = NULL, finished_ms = $3, updated_ms = $3");
const FAIL: &str = finish!("status = 'failed', error = $8, finished_ms = $3, updated_ms = $3");
const RETRY: &str = finish!("status = 'queued', error = $8, run_after_ms = $9, updated_ms = $3");
const CANCEL: &str = finish!("status = 'cancelled', finished_ms = $3, updated_ms = $3");
const REQUEUE: &str =
    finish!("status = 'queued', attempts = jobs.attempts - 1, run_after_ms = $3, updated_ms = $3");

/// End an attempt, fenced by its token, and move its job on.
pub(super) async fn finish(
    c: &impl GenericClient,
    token: &str,
    end: &AttemptEnd,
    now: i64,
) -> StoreResult<JobStatus> {
    let json = |f: &JobFailure| serde_json::to_string(f).map_err(super::backend);
    let (status, kind, told, sql, extra): (_, _, _, _, Vec<Box<dyn ToSql + Sync + Send>>) =
        match &end.next {
            Next::Succeed(output) => (
                JobStatus::Succeeded,
                "succeeded",
                " succeeded".to_string(),
                SUCCEED,
                vec![Box::new(output.clone())],
            ),
            Next::Fail(failure) => (
                JobStatus::Failed,
                "failed",
                format!(" failed: {}: {}", failure.code, failure.message),
                FAIL,
                vec![Box::new(json(failure)?)],
            ),
            Next::Retry { failure, after_ms } => (
                JobStatus::Queued,
                "retry",
                format!(
                    " failed ({}: {}); retrying in {after_ms} ms",
                    failure.code, failure.message
                ),
                RETRY,
                vec![Box::new(json(failure)?), Box::new(now + after_ms)],
            ),
            Next::Cancel => (
                JobStatus::Cancelled,
                "cancelled",
                " was stopped by cancellation".to_string(),
                CANCEL,
                vec![],
            ),
            Next::Requeue => (
                JobStatus::Queued,
                "interrupted",
                " was interrupted by a draining node and queued again; it is not charged"
                    .to_string(),
                REQUEUE,
                vec![],
            ),
        };
    let (state, outcome) = (end.state.as_str(), end.outcome.to_string());
    let mut params: Vec<&(dyn ToSql + Sync)> =
        vec![&token, &state, &now, &outcome, &end.log, &kind, &told];
    params.extend(extra.iter().map(|p| &**p as &(dyn ToSql + Sync)));
    match opt(c, sql, &params).await? {
        Some(_) => Ok(status),
        None => Err(StoreError::StaleLease),
    }
}

const CANCEL_QUEUED: &str = concat!(
    "WITH job AS (
         UPDATE jobs SET status = 'cancelled', cancel_requested = TRUE, finished_ms = $2, updated_ms = $2
         WHERE id = $1 RETURNING ",
    job_columns!(),
    "),
     event AS (
         INSERT INTO events (job_id, attempt, at_ms, kind, message)
         VALUES ($1, NULL, $2, 'cancelled', 'cancelled before it ran')
     )
     SELECT * FROM job"
);

const CANCEL_RUNNING: &str = concat!(
    "WITH job AS (
         UPDATE jobs SET cancel_requested = TRUE, updated_ms = $2 WHERE id = $1 RETURNING ",
    job_columns!(),
    "),
     event AS (
         INSERT INTO events (job_id, attempt, at_ms, kind, message)
         VALUES ($1, NULL, $2, 'cancel-requested', 'cancellation requested; the running attempt is being stopped')
     )
     SELECT * FROM job"
);

/// Cancel a queued job, or flag a running one; returns the job after the change.
pub(super) async fn cancel(tx: &Transaction<'_>, id: &str, now: i64) -> StoreResult<Job> {
    let status: String = match opt(
        tx,
        "SELECT status FROM jobs WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?
    {
        Some(r) => col(&r, 0)?,
        None => return Err(StoreError::NotFound(format!("job {id}"))),
    };
    let row = match JobStatus::parse(&status) {
        Some(JobStatus::Queued) => one(tx, CANCEL_QUEUED, &[&id, &now]).await?,
        Some(JobStatus::Running) => one(tx, CANCEL_RUNNING, &[&id, &now]).await?,
        _ => one(tx, JOB_BY_ID, &[&id]).await?,
    };
    job_from_row(&row)
}

/// Which running attempts [`lose_attempts`] takes.
pub(super) enum Lose<'a> {
    /// Every one of this agent identity's (its earlier incarnation died).
    OfAgent(&'a str),
    /// Those whose lease expired before this time. Attempts another transaction is writing
    /// (a heartbeat, a finish) are skipped: the next pass sees them.
    Expired(i64),
}

/// The body of [`lose_attempts`] after the `locked` CTE: `$2` now, `$3` the attempts'
/// outcome (JSON), `$4` why. Jobs with attempts left are queued again at once, the others
/// fail; each gets a `lost` or `failed` event. Returns how many attempts were lost.
macro_rules! lose {
    ($locked:literal) => {
        concat!(
            "WITH locked AS (",
            $locked,
            "),
             lost AS (
                 UPDATE attempts a SET state = 'lost', finished_ms = $2, outcome = $3
                 FROM locked WHERE a.id = locked.id AND a.state = 'running'
                 RETURNING a.job_id, a.number, a.agent
             ),
             moved AS (
                 UPDATE jobs j SET
                     status = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
                     finished_ms = CASE WHEN j.attempts >= j.max_attempts THEN $2 END,
                     run_after_ms = CASE WHEN j.attempts >= j.max_attempts THEN j.run_after_ms ELSE $2 END,
                     error = CASE WHEN j.attempts >= j.max_attempts
                         THEN json_build_object(
                             'code', 'lost',
                             'message', 'attempt ' || lost.number || ' was lost (' || $4::text || ') and the job has no attempts left (' || j.max_attempts || ' allowed)',
                             'retryable', TRUE)::text
                         ELSE j.error END,
                     updated_ms = $2
                 FROM lost WHERE j.id = lost.job_id AND j.status = 'running'
                 RETURNING j.id, lost.number, lost.agent, j.status, j.error
             ),
             event AS (
                 INSERT INTO events (job_id, attempt, at_ms, kind, message)
                 SELECT id, number, $2,
                     CASE WHEN status = 'failed' THEN 'failed' ELSE 'lost' END,
                     CASE WHEN status = 'failed' THEN error::json ->> 'message'
                          ELSE 'attempt ' || number || ' on ' || agent || ' was lost (' || $4::text || '); the job is queued again' END
                 FROM moved
             )
             SELECT COUNT(*) FROM lost"
        )
    };
}

const LOSE_OF_AGENT: &str =
    lose!("SELECT id FROM attempts WHERE state = 'running' AND agent = $1 ORDER BY id FOR UPDATE");
const LOSE_EXPIRED: &str = lose!(
    "SELECT id FROM attempts WHERE state = 'running' AND lease_expires_ms < $1 ORDER BY id FOR UPDATE SKIP LOCKED"
);

/// Move running attempts to `lost` and requeue (or fail) their jobs, in one statement.
pub(super) async fn lose_attempts(
    c: &impl GenericClient,
    which: Lose<'_>,
    now: i64,
    why: &str,
) -> StoreResult<u64> {
    let outcome = serde_json::json!({"kind": "lost", "message": why}).to_string();
    let row = match which {
        Lose::OfAgent(agent) => one(c, LOSE_OF_AGENT, &[&agent, &now, &outcome, &why]).await?,
        Lose::Expired(before) => one(c, LOSE_EXPIRED, &[&before, &now, &outcome, &why]).await?,
    };
    Ok(col::<i64>(&row, 0)? as u64)
}
