//! Blobs, jobs and attempts in PostgreSQL. Every write is one statement (data-modifying CTEs:
//! atomic on its own, one round trip), except cancel, which runs in its caller's transaction.
//!
//! Locks are always taken attempt before job (finish, the reaper, recovery, fenced writes),
//! and queue row before job (claim, cancel). A claim locks a queue row and then its queued job,
//! which no running attempt belongs to, so these statements do not deadlock with each other.

use super::{
    GenericClient, Params, backend, col, db_message, exec, int, is_constraint, one, opt, pg, rows,
    uint,
};
use crate::store::*;
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// The columns [`job_from_row`] reads, as a literal for `concat!`.
macro_rules! job_columns {
    () => {
        "id, seq, component, status, input, max_attempts, attempts, limits, optional, kv_scope, task, run_after_ms, created_ms, updated_ms, finished_ms, output, error, progress, progress_msg, cancel_requested, class"
    };
}

/// How many columns [`job_columns!`] names.
const JOB_COLUMN_COUNT: usize = 21;

fn job_from_row(r: &Row) -> StoreResult<Job> {
    job_from_row_at(r, 0)
}

/// A job from the [`job_columns!`] starting at column `at`.
fn job_from_row_at(r: &Row, at: usize) -> StoreResult<Job> {
    let status: String = col(r, at + 3)?;
    let limits: String = col(r, at + 7)?;
    let optional: String = col(r, at + 8)?;
    let error: Option<String> = col(r, at + 16)?;
    let progress: Option<i16> = col(r, at + 17)?;
    let progress_msg: Option<String> = col(r, at + 18)?;
    Ok(Job {
        id: col(r, at)?,
        seq: col(r, at + 1)?,
        component: col(r, at + 2)?,
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        input: col(r, at + 4)?,
        max_attempts: uint(col(r, at + 5)?),
        attempts: uint(col(r, at + 6)?),
        limits: serde_json::from_str(&limits).unwrap_or_default(),
        optional_imports: serde_json::from_str(&optional).unwrap_or_default(),
        kv_scope: col(r, at + 9)?,
        task: col(r, at + 10)?,
        run_after_ms: col(r, at + 11)?,
        created_ms: col(r, at + 12)?,
        updated_ms: col(r, at + 13)?,
        finished_ms: col(r, at + 14)?,
        output: col(r, at + 15)?,
        error: error.and_then(|e| serde_json::from_str(&e).ok()),
        progress: progress.map(|p| {
            (
                u8::try_from(p).unwrap_or(u8::MAX),
                progress_msg.unwrap_or_default(),
            )
        }),
        cancel_requested: col(r, at + 19)?,
        class: col(r, at + 20)?,
    })
}

const JOB_BY_ID: &str = concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1");

/// Insert the report (once per distinct report), the job unless its idempotency key is taken,
/// and its `queued` event, in one statement. No row: the key names another job.
const INSERT_JOB: &str = concat!(
    "WITH report AS (INSERT INTO reports (hash, report) VALUES ($7, $8) ON CONFLICT DO NOTHING),
     job AS (
         INSERT INTO jobs (id, component, input, status, max_attempts, limits, optional, report_hash, kv_scope, task, idempotency_key, class, run_after_ms, created_ms, updated_ms)
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $9, $10, $11, $13, $12, $12, $12)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING ",
    job_columns!(),
    "),
     queued AS (
         INSERT INTO queue (job_id, run_after_ms, seq, class)
         SELECT id, run_after_ms, seq, class FROM job
     ),
     event AS (
         INSERT INTO events (job_id, attempt, at_ms, kind, message)
         SELECT id, NULL, $12, 'queued', 'accepted and queued' FROM job
     )
     SELECT * FROM job"
);

/// [`INSERT_JOB`] for a job pinned to a task version (`$14`, `$15`): the version's row is
/// locked `FOR KEY SHARE` and must be registered, or nothing is inserted. A delete of the version
/// locks the row `FOR UPDATE` before it counts the jobs pinning it, so whichever commits second
/// sees the other: the delete counts this job, or this insert sees the version gone.
const INSERT_TASK_JOB: &str = concat!(
    "WITH pin AS (
         SELECT 1 FROM task_versions WHERE task = $14 AND version = $15 AND deleted_ms IS NULL
         FOR KEY SHARE
     ),
     report AS (
         INSERT INTO reports (hash, report) SELECT $7, $8 WHERE EXISTS (SELECT 1 FROM pin)
         ON CONFLICT DO NOTHING
     ),
     job AS (
         INSERT INTO jobs (id, component, input, status, max_attempts, limits, optional, report_hash, kv_scope, task, idempotency_key, class, run_after_ms, created_ms, updated_ms)
         SELECT $1, $2, $3, 'queued', $4, $5, $6, $7, $9, $10, $11, $13, $12, $12, $12
         WHERE EXISTS (SELECT 1 FROM pin)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING ",
    job_columns!(),
    "),
     queued AS (
         INSERT INTO queue (job_id, run_after_ms, seq, class)
         SELECT id, run_after_ms, seq, class FROM job
     ),
     event AS (
         INSERT INTO events (job_id, attempt, at_ms, kind, message)
         SELECT id, NULL, $12, 'queued', 'accepted and queued' FROM job
     )
     SELECT * FROM job"
);

const JOB_BY_KEY: &str = concat!(
    "SELECT ",
    job_columns!(),
    ", (SELECT report FROM reports r WHERE r.hash = jobs.report_hash) FROM jobs WHERE idempotency_key = $1"
);

fn list_jobs_sql(status: bool, before: bool) -> &'static str {
    match (status, before) {
        (false, false) => concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs ORDER BY seq DESC LIMIT $1"
        ),
        (true, false) => concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE status = $2 ORDER BY seq DESC LIMIT $1"
        ),
        (false, true) => concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE seq < $2 ORDER BY seq DESC LIMIT $1"
        ),
        (true, true) => concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE status = $2 AND seq < $3 ORDER BY seq DESC LIMIT $1"
        ),
    }
}

/// The CTEs of a claim (`next`, `claimed`, `new_attempt`, `claim_event`), with the positions of
/// its parameters (now, classes, agent, token, lease expiry) and an extra condition: take the
/// head of the queue, skipping rows another claimer holds (claimers on every node proceed in
/// parallel and never wait for each other), mark its job running, count the attempt, and
/// record the attempt row (numbered by the job's own counter, read under its row lock) and the
/// `claimed` event. `claimed` has the job's columns, then the attempt's number.
macro_rules! claim_ctes {
    ($now:literal, $classes:literal, $agent:literal, $token:literal, $expires:literal, $and:literal) => {
        concat!(
            "next AS (
                 DELETE FROM queue WHERE job_id = (
                     SELECT job_id FROM queue
                     WHERE run_after_ms <= ", $now,
            " AND (class IS NULL OR class = ANY(", $classes, "))", $and,
            " ORDER BY run_after_ms, seq LIMIT 1
                     FOR UPDATE SKIP LOCKED
                 )
                 RETURNING job_id AS next_id
             ),
             claimed AS (
                 UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1,
                     attempt_rows = jobs.attempt_rows + 1, updated_ms = ", $now,
            " FROM next WHERE jobs.id = next.next_id AND jobs.status = 'queued'
                 RETURNING ", job_columns!(), ", attempt_rows
             ),
             new_attempt AS (
                 INSERT INTO attempts (job_id, number, agent, lease_token, lease_expires_ms, state, started_ms)
                 SELECT id, attempt_rows, ", $agent, ", ", $token, ", ", $expires, ", 'running', ", $now,
            " FROM claimed
             ),
             claim_event AS (
                 INSERT INTO events (job_id, attempt, at_ms, kind, message)
                 SELECT id, attempt_rows, ", $now, ", 'claimed', 'attempt ' || attempt_rows || ' claimed by ' || ", $agent,
            "::text FROM claimed
             )"
        )
    };
}

/// A claim on its own: `$1` now, `$2` classes, `$3` agent, `$4` token, `$5` lease expiry.
const CLAIM: &str = concat!(
    "WITH ",
    claim_ctes!("$1", "$2", "$3", "$4", "$5", ""),
    " SELECT * FROM claimed"
);

fn new_token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A claim from the `claimed` columns starting at `at`.
fn claim_from_row(row: &Row, at: usize, token: String, expires: i64) -> StoreResult<Option<Claim>> {
    if col::<Option<String>>(row, at)?.is_none() {
        return Ok(None);
    }
    Ok(Some(Claim {
        job: job_from_row_at(row, at)?,
        attempt: uint(col(row, at + JOB_COLUMN_COUNT)?),
        lease_token: token,
        lease_expires_ms: expires,
    }))
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
    match opt(c, CLAIM, &[&now, &classes, &agent, &token, &expires]).await? {
        Some(row) => claim_from_row(&row, 0, token, expires),
        None => Ok(None),
    }
}

/// The CTEs that end an attempt (`ended`, `finished`, `requeued`, `end_event`): `$1` token, `$2` the
/// attempt's state, `$3` now, `$4` outcome, `$5` log, `$6` the event's kind, `$7` its message
/// after `attempt <n>`; the job's update sets `$set` (with `$8`, `$9` as it needs). `ended` is
/// empty when the token is stale.
macro_rules! finish_ctes {
    ($set:expr) => {
        concat!(
            "ended AS (
                 UPDATE attempts SET state = $2, finished_ms = $3, outcome = $4, log = $5
                 WHERE lease_token = $1 AND state = 'running'
                 RETURNING job_id, number
             ),
             finished AS (
                 UPDATE jobs SET ",
            $set,
            " FROM ended WHERE jobs.id = ended.job_id AND jobs.status = 'running'
                 RETURNING jobs.id, jobs.status, jobs.run_after_ms, jobs.seq, jobs.class
             ),
             requeued AS (
                 INSERT INTO queue (job_id, run_after_ms, seq, class)
                 SELECT id, run_after_ms, seq, class FROM finished WHERE status = 'queued'
             ),
             end_event AS (
                 INSERT INTO events (job_id, attempt, at_ms, kind, message)
                 SELECT job_id, number, $3, $6, 'attempt ' || number || $7 FROM ended
             )"
        )
    };
}

/// End an attempt: one row (its job's id) unless the token is stale.
macro_rules! finish {
    ($set:expr) => {
        concat!("WITH ", finish_ctes!($set), " SELECT job_id FROM ended")
    };
}

/// End an attempt whose job is finished for good and claim the agent's next one, in one
/// statement: the claim's parameters follow the ending's, and it happens only if the ending
/// did. The finished job cannot be claimed again, so the claim needs not see the ending.
macro_rules! finish_and_claim {
    ($set:expr, $classes:literal, $agent:literal, $token:literal, $expires:literal) => {
        concat!(
            "WITH ",
            finish_ctes!($set),
            ", ",
            claim_ctes!(
                "$3",
                $classes,
                $agent,
                $token,
                $expires,
                " AND EXISTS (SELECT 1 FROM ended)"
            ),
            " SELECT claimed.*, ended.job_id AS ended_job FROM ended LEFT JOIN claimed ON TRUE"
        )
    };
}

macro_rules! succeed {
    () => {
        "status = 'succeeded', output = $8, error = NULL, finished_ms = $3, updated_ms = $3"
    };
}
macro_rules! fail {
    () => {
        "status = 'failed', error = $8, finished_ms = $3, updated_ms = $3"
    };
}
macro_rules! cancel {
    () => {
        "status = 'cancelled', finished_ms = $3, updated_ms = $3"
    };
}

const SUCCEED: &str = finish!(succeed!());
const FAIL: &str = finish!(fail!());
const CANCEL: &str = finish!(cancel!());
const RETRY: &str = finish!("status = 'queued', error = $8, run_after_ms = $9, updated_ms = $3");
const REQUEUE: &str =
    finish!("status = 'queued', attempts = jobs.attempts - 1, run_after_ms = $3, updated_ms = $3");
const SUCCEED_AND_CLAIM: &str = finish_and_claim!(succeed!(), "$9", "$10", "$11", "$12");
const FAIL_AND_CLAIM: &str = finish_and_claim!(fail!(), "$9", "$10", "$11", "$12");
const CANCEL_AND_CLAIM: &str = finish_and_claim!(cancel!(), "$8", "$9", "$10", "$11");

/// How an attempt ends, as statement parameters.
struct Ending {
    status: JobStatus,
    kind: &'static str,
    /// The event's message after `attempt <n>`.
    told: String,
    /// The job update's own parameters (`$8`, `$9`).
    extra: Vec<Box<dyn ToSql + Sync + Send>>,
    /// The statement that ends the attempt.
    finish: &'static str,
    /// The statement that also claims the next, when the job is finished for good.
    and_claim: Option<&'static str>,
}

fn ending(next: &Next, now: i64) -> StoreResult<Ending> {
    let json = |f: &JobFailure| serde_json::to_string(f).map_err(super::backend);
    Ok(match next {
        Next::Succeed(output) => Ending {
            status: JobStatus::Succeeded,
            kind: "succeeded",
            told: " succeeded".into(),
            extra: vec![Box::new(output.clone())],
            finish: SUCCEED,
            and_claim: Some(SUCCEED_AND_CLAIM),
        },
        Next::Fail(failure) => Ending {
            status: JobStatus::Failed,
            kind: "failed",
            told: format!(" failed: {}: {}", failure.code, failure.message),
            extra: vec![Box::new(json(failure)?)],
            finish: FAIL,
            and_claim: Some(FAIL_AND_CLAIM),
        },
        Next::Retry { failure, after_ms } => Ending {
            status: JobStatus::Queued,
            kind: "retry",
            told: format!(
                " failed ({}: {}); retrying in {after_ms} ms",
                failure.code, failure.message
            ),
            extra: vec![Box::new(json(failure)?), Box::new(now + after_ms)],
            finish: RETRY,
            and_claim: None,
        },
        Next::Cancel => Ending {
            status: JobStatus::Cancelled,
            kind: "cancelled",
            told: " was stopped by cancellation".into(),
            extra: vec![],
            finish: CANCEL,
            and_claim: Some(CANCEL_AND_CLAIM),
        },
        Next::Requeue => Ending {
            status: JobStatus::Queued,
            kind: "interrupted",
            told: " was interrupted by a draining node and queued again; it is not charged".into(),
            extra: vec![],
            finish: REQUEUE,
            and_claim: None,
        },
    })
}

/// An attempt's end, as recorded.
pub(super) struct Ended {
    /// The job's status now.
    pub status: JobStatus,
    /// The job.
    pub job: String,
}

/// End an attempt, fenced by its token, and move its job on.
pub(super) async fn finish(
    c: &impl GenericClient,
    token: &str,
    end: &AttemptEnd,
    now: i64,
) -> StoreResult<Ended> {
    let e = ending(&end.next, now)?;
    let (state, outcome) = (end.state.as_str(), end.outcome.to_string());
    let mut params: Vec<&(dyn ToSql + Sync)> =
        vec![&token, &state, &now, &outcome, &end.log, &e.kind, &e.told];
    params.extend(e.extra.iter().map(|p| &**p as &(dyn ToSql + Sync)));
    match opt(c, e.finish, &params).await? {
        Some(row) => Ok(Ended {
            status: e.status,
            job: col(&row, 0)?,
        }),
        None => Err(StoreError::StaleLease),
    }
}

/// End an attempt and claim the agent's next. When the job is finished for good that is one
/// statement; when it is queued again (retry, requeue) the claim is a second statement in the
/// same transaction, sent together with the first, so that it sees the job queued again.
pub(super) async fn finish_and_claim(
    c: &mut Object,
    token: &str,
    end: &AttemptEnd,
    next: (&str, &[String], i64),
    now: i64,
) -> StoreResult<(Ended, Option<Claim>)> {
    let (agent, classes, lease_ms) = next;
    let e = ending(&end.next, now)?;
    let Some(sql) = e.and_claim else {
        let tx = c.transaction().await.map_err(pg)?;
        // A stale token fails the finish, and the transaction rolls back (the claim with it).
        let (ended, claim) = tokio::try_join!(
            finish(&tx, token, end, now),
            claim(&tx, agent, classes, lease_ms, now)
        )?;
        tx.commit().await.map_err(pg)?;
        return Ok((ended, claim));
    };
    let (state, outcome) = (end.state.as_str(), end.outcome.to_string());
    let (new_token, expires) = (new_token(), now + lease_ms);
    let mut params: Vec<&(dyn ToSql + Sync)> =
        vec![&token, &state, &now, &outcome, &end.log, &e.kind, &e.told];
    params.extend(e.extra.iter().map(|p| &**p as &(dyn ToSql + Sync)));
    params.extend([
        &classes as &(dyn ToSql + Sync),
        &agent,
        &new_token,
        &expires,
    ]);
    let Some(row) = opt(&*c, sql, &params).await? else {
        return Err(StoreError::StaleLease);
    };
    let ended = Ended {
        status: e.status,
        job: col(&row, JOB_COLUMN_COUNT + 1)?,
    };
    Ok((ended, claim_from_row(&row, 0, new_token, expires)?))
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

/// Cancel a queued job, or flag a running one; returns the job after the change. The queue
/// row goes first (locks are taken queue row before job, as claims take them): a claimer
/// holding it finishes its claim, and the job is then running.
pub(super) async fn cancel(tx: &Transaction<'_>, id: &str, now: i64) -> StoreResult<Job> {
    exec(tx, "DELETE FROM queue WHERE job_id = $1", &[&id]).await?;
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
/// fail; each gets a `lost` or `failed` event. Returns how many attempts were lost, and the
/// jobs that failed.
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
                     status = CASE WHEN j.cancel_requested THEN 'cancelled'
                                   WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
                     finished_ms = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts THEN $2 END,
                     run_after_ms = CASE WHEN j.cancel_requested OR j.attempts >= j.max_attempts THEN j.run_after_ms ELSE $2 END,
                     error = CASE WHEN j.cancel_requested THEN j.error
                         WHEN j.attempts >= j.max_attempts
                         THEN json_build_object(
                             'code', 'lost',
                             'message', 'attempt ' || lost.number || ' was lost (' || $4::text || ') and the job has no attempts left (' || j.max_attempts || ' allowed)',
                             'retryable', TRUE)::text
                         ELSE j.error END,
                     updated_ms = $2
                 FROM lost WHERE j.id = lost.job_id AND j.status = 'running'
                 RETURNING j.id, lost.number, lost.agent, j.status, j.error, j.run_after_ms, j.seq, j.class
             ),
             requeued AS (
                 INSERT INTO queue (job_id, run_after_ms, seq, class)
                 SELECT id, run_after_ms, seq, class FROM moved WHERE status = 'queued'
             ),
             event AS (
                 INSERT INTO events (job_id, attempt, at_ms, kind, message)
                 SELECT id, number, $2,
                     CASE WHEN status = 'queued' THEN 'lost' ELSE status END,
                     CASE WHEN status = 'failed' THEN error::json ->> 'message'
                          WHEN status = 'cancelled' THEN 'attempt ' || number || ' on ' || agent || ' was lost (' || $4::text || ') after cancellation was requested; the job is cancelled'
                          ELSE 'attempt ' || number || ' on ' || agent || ' was lost (' || $4::text || '); the job is queued again' END
                 FROM moved
             )
             SELECT (SELECT COUNT(*) FROM lost), ARRAY(SELECT id FROM moved WHERE status <> 'queued')"
        )
    };
}

const LOSE_OF_AGENT: &str =
    lose!("SELECT id FROM attempts WHERE state = 'running' AND agent = $1 ORDER BY id FOR UPDATE");
const LOSE_EXPIRED: &str = lose!(
    "SELECT id FROM attempts WHERE state = 'running' AND lease_expires_ms < $1 ORDER BY id FOR UPDATE SKIP LOCKED"
);

/// Move running attempts to `lost` and requeue their jobs (fail them when out of attempts,
/// cancel them when cancellation was requested), in one statement. Returns how many were lost,
/// and the jobs that finished for it.
pub(super) async fn lose_attempts(
    c: &impl GenericClient,
    which: Lose<'_>,
    now: i64,
    why: &str,
) -> StoreResult<(u64, Vec<String>)> {
    let outcome = serde_json::json!({"kind": "lost", "message": why}).to_string();
    let row = match which {
        Lose::OfAgent(agent) => one(c, LOSE_OF_AGENT, &[&agent, &now, &outcome, &why]).await?,
        Lose::Expired(before) => one(c, LOSE_EXPIRED, &[&before, &now, &outcome, &why]).await?,
    };
    Ok((col::<i64>(&row, 0)? as u64, col(&row, 1)?))
}

/// Insert a job (its class must be stored): `created` is false when its idempotency key names
/// another job, which is answered instead. A job pinned to a task version that is not
/// registered is refused ([`StoreError::TaskVersionGone`]) and nothing is stored.
pub(super) async fn insert(c: &Object, job: &NewJob) -> StoreResult<Inserted> {
    let report_hash = blake3::hash(job.report.as_bytes()).to_hex().to_string();
    let limits = serde_json::to_string(&job.limits).map_err(backend)?;
    let optional = serde_json::to_string(&job.optional_imports).map_err(backend)?;
    let report: &str = &job.report;
    let pin = job.task.as_deref().map(parse_pin).transpose()?;
    let pin_version = pin.map(|(_, v)| int(v));
    let class = job.requirements.as_ref().map(|r| &r.class);
    let max_attempts = int(job.max_attempts);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &job.id,
        &job.component,
        &job.input,
        &max_attempts,
        &limits,
        &optional,
        &report_hash,
        &report,
        &job.kv_scope,
        &job.task,
        &job.idempotency_key,
        &job.now_ms,
        &class,
    ];
    let sql = match &pin {
        None => INSERT_JOB,
        Some((task, _)) => {
            params.push(task);
            params.push(&pin_version);
            INSERT_TASK_JOB
        }
    };
    let stmt = c.prepare_cached(sql).await.map_err(pg)?;
    let inserted = c.query_opt(&stmt, &params).await.map_err(|e| {
        if is_constraint(&e) {
            StoreError::Conflict(format!("the job could not be stored: {}", db_message(&e)))
        } else {
            pg(e)
        }
    })?;
    if let Some(row) = inserted {
        return Ok(Inserted {
            job: job_from_row(&row)?,
            created: true,
        });
    }
    // The idempotency key names a job already (committed before this insert looked), or the
    // job's task version is not registered.
    let existing = match &job.idempotency_key {
        Some(key) => opt(c, JOB_BY_KEY, &[key]).await?,
        None => None,
    };
    match (existing, pin) {
        (Some(row), _) => Ok(Inserted {
            job: job_from_row(&row)?,
            created: false,
        }),
        (None, Some((task, version))) => Err(StoreError::TaskVersionGone {
            task: task.to_string(),
            version,
        }),
        (None, None) => Err(backend("an insert without a row names no existing job")),
    }
}

/// Store a component once; true when the bytes were new.
pub(super) async fn put_blob(
    c: &impl GenericClient,
    hash: &str,
    bytes: &[u8],
) -> StoreResult<bool> {
    // Most uploads repeat a component already stored: check before sending the bytes.
    if opt(c, "SELECT 1 FROM blobs WHERE hash = $1", &[&hash])
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let n = exec(
        c,
        "INSERT INTO blobs (hash, bytes, size, created_ms) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[&hash, &bytes, &(bytes.len() as i64), &now_ms()],
    )
    .await?;
    Ok(n == 1)
}

/// A stored component's bytes.
pub(super) async fn get_blob(c: &impl GenericClient, hash: &str) -> StoreResult<Option<Vec<u8>>> {
    opt(c, "SELECT bytes FROM blobs WHERE hash = $1", &[&hash])
        .await?
        .map(|r| col(&r, 0))
        .transpose()
}

/// A job with its attempts; both queries go out together.
pub(super) async fn get(c: &impl GenericClient, id: &str) -> StoreResult<Option<JobRecord>> {
    // Both queries go out together (one round trip).
    let by_id: Params<'_> = &[&id];
    let (job, attempts) = tokio::try_join!(
        opt(c, JOB_BY_ID, by_id),
        rows(
            c,
            "SELECT number, agent, state, started_ms, finished_ms, lease_expires_ms, outcome, log FROM attempts WHERE job_id = $1 ORDER BY number",
            by_id,
        )
    )?;
    let Some(job) = job else { return Ok(None) };
    let attempt_list = attempts
        .iter()
        .map(|r| {
            let state: String = col(r, 2)?;
            let outcome: Option<String> = col(r, 6)?;
            Ok(Attempt {
                number: uint(col(r, 0)?),
                agent: col(r, 1)?,
                state: AttemptState::parse(&state).unwrap_or(AttemptState::Lost),
                started_ms: col(r, 3)?,
                finished_ms: col(r, 4)?,
                lease_expires_ms: col(r, 5)?,
                outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
                log: col(r, 7)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(JobRecord {
        job: job_from_row(&job)?,
        attempt_list,
    }))
}

/// The job an idempotency key named, with its admission report.
pub(super) async fn by_idempotency_key(
    c: &impl GenericClient,
    key: &str,
) -> StoreResult<Option<(Job, String)>> {
    let Some(row) = opt(c, JOB_BY_KEY, &[&key]).await? else {
        return Ok(None);
    };
    let report: Option<String> = col(&row, 21)?;
    Ok(Some((
        job_from_row(&row)?,
        report.unwrap_or_else(|| "null".into()),
    )))
}

/// Jobs newest first (each filter combination has its own prepared statement, so each uses
/// its index).
pub(super) async fn list(
    c: &impl GenericClient,
    status: Option<JobStatus>,
    before: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<Job>> {
    let limit = i64::from(limit);
    let status = status.map(JobStatus::as_str);
    let sql = list_jobs_sql(status.is_some(), before.is_some());
    let found = match (&status, &before) {
        (None, None) => rows(c, sql, &[&limit]).await?,
        (Some(s), None) => rows(c, sql, &[&limit, s]).await?,
        (None, Some(b)) => rows(c, sql, &[&limit, b]).await?,
        (Some(s), Some(b)) => rows(c, sql, &[&limit, s, b]).await?,
    };
    found.iter().map(job_from_row).collect()
}

/// A job's events, oldest first.
pub(super) async fn events(c: &impl GenericClient, id: &str) -> StoreResult<Vec<Event>> {
    rows(
        c,
        "SELECT attempt, at_ms, kind, message FROM events WHERE job_id = $1 ORDER BY id",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Event {
            attempt: col::<Option<i32>>(r, 0)?.map(uint),
            at_ms: col(r, 1)?,
            kind: col(r, 2)?,
            message: col(r, 3)?,
        })
    })
    .collect()
}

/// Extend a lease (fenced); whether cancellation was requested.
pub(super) async fn heartbeat(
    c: &impl GenericClient,
    token: &str,
    lease_ms: i64,
    now: i64,
) -> StoreResult<bool> {
    let row = opt(
        c,
        "WITH a AS (
             UPDATE attempts SET lease_expires_ms = $2 WHERE lease_token = $1 AND state = 'running'
             RETURNING job_id
         )
         SELECT j.cancel_requested FROM jobs j JOIN a ON a.job_id = j.id",
        &[&token, &(now + lease_ms)],
    )
    .await?;
    match row {
        Some(r) => col(&r, 0),
        None => Err(StoreError::StaleLease),
    }
}

/// Record progress (fenced). The attempt row is locked (`FOR SHARE`) in the same statement:
/// a finish or a reaper holding it makes this wait, then see the attempt ended and change
/// nothing, so a stale attempt never writes after its end.
pub(super) async fn set_progress(
    c: &impl GenericClient,
    token: &str,
    percent: u8,
    message: &str,
) -> StoreResult<()> {
    let n = exec(
        c,
        "WITH a AS (SELECT job_id FROM attempts WHERE lease_token = $1 AND state = 'running' FOR SHARE)
         UPDATE jobs SET progress = $2, progress_msg = $3 FROM a WHERE jobs.id = a.job_id",
        &[&token, &i16::from(percent), &message],
    )
    .await?;
    if n == 0 {
        Err(StoreError::StaleLease)
    } else {
        Ok(())
    }
}

/// Save the job's checkpoint (fenced, like [`set_progress`]).
pub(super) async fn save_checkpoint(
    c: &impl GenericClient,
    token: &str,
    data: &[u8],
) -> StoreResult<()> {
    let n = exec(
        c,
        "WITH a AS (SELECT job_id FROM attempts WHERE lease_token = $1 AND state = 'running' FOR SHARE)
         UPDATE jobs SET checkpoint = $2 FROM a WHERE jobs.id = a.job_id",
        &[&token, &data],
    )
    .await?;
    if n == 0 {
        Err(StoreError::StaleLease)
    } else {
        Ok(())
    }
}

/// The job's checkpoint.
pub(super) async fn load_checkpoint(
    c: &impl GenericClient,
    job_id: &str,
) -> StoreResult<Option<Vec<u8>>> {
    Ok(
        opt(c, "SELECT checkpoint FROM jobs WHERE id = $1", &[&job_id])
            .await?
            .map(|r| col::<Option<Vec<u8>>>(&r, 0))
            .transpose()?
            .flatten(),
    )
}

/// Jobs by status.
pub(super) async fn stats(c: &impl GenericClient) -> StoreResult<StoreStats> {
    let found = rows(c, "SELECT status, COUNT(*) FROM jobs GROUP BY status", &[]).await?;
    let mut counts = Vec::with_capacity(found.len());
    for r in &found {
        counts.push((col::<String>(r, 0)?, col::<i64>(r, 1)?));
    }
    let jobs = JobStatus::ALL
        .into_iter()
        .map(|s| {
            let n = counts.iter().find(|(n, _)| n == s.as_str());
            (s, n.map_or(0, |(_, c)| *c as u64))
        })
        .collect();
    Ok(StoreStats { jobs })
}
