//! Jobs and attempts: reading them back, the fenced writes of a running attempt, cancelling,
//! ending an attempt and losing attempts, all as the [`lifecycle`](crate::lifecycle) decides.

use crate::lifecycle::attempts::{self as life, JobMove, LossCause, LostAttempt, Told};
use crate::store::sql::{Dialect, Record, Sql, Value, params};
use crate::store::*;

/// The columns [`job`] reads, in every statement that returns a job.
macro_rules! job_columns {
    () => {
        "id, seq, component, status, input, max_attempts, attempts, limits, optional, kv_scope, task_name, task_version, run_after_ms, created_ms, updated_ms, finished_ms, output, error, progress, progress_msg, cancel_requested, class, request_hash, priority, concurrency_key, concurrency_limit, schedule_name, schedule_tick_ms"
    };
}
pub(crate) use job_columns;

/// The condition that an attempt (the table or alias `$a`) is still held: its identity's hold
/// is the one it was claimed under. Every write about a running attempt requires it.
macro_rules! still_held {
    ($a:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM agents g WHERE g.id = ",
            $a,
            ".agent AND g.hold = ",
            $a,
            ".hold)"
        )
    };
}
pub(crate) use still_held;

/// The state of a queue row as it enters the queue, given its `run_after_ms` column or
/// parameter (`$run`), its concurrency key (`$key`, or the row's column by default) and now
/// (`$now`): `delayed` before its time; then `parked` when it has a concurrency key (the
/// key's [`settle`](super::turns::settle) makes it ready when a slot is free), else `ready`.
macro_rules! queue_state {
    ($now:literal) => {
        queue_state!("run_after_ms", "concurrency_key", $now)
    };
    ($run:literal, $key:literal, $now:literal) => {
        concat!(
            "CASE WHEN ",
            $run,
            " > ",
            $now,
            " THEN 'delayed' WHEN ",
            $key,
            " IS NOT NULL THEN 'parked' ELSE 'ready' END"
        )
    };
}
pub(crate) use queue_state;

/// A job from a row with the [`job_columns!`].
pub(crate) fn job(r: &Record) -> StoreResult<Job> {
    let status: String = r.get("status")?;
    let progress: Option<u8> = r.get("progress")?;
    Ok(Job {
        id: r.get("id")?,
        seq: r.get("seq")?,
        component: r.get("component")?,
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        input: r.get("input")?,
        max_attempts: r.get("max_attempts")?,
        attempts: r.get("attempts")?,
        limits: r.json("limits")?.unwrap_or_default(),
        optional_imports: r.json("optional")?.unwrap_or_default(),
        kv_scope: r.get("kv_scope")?,
        task: match r.get::<Option<String>>("task_name")? {
            Some(task) => Some(TaskPin {
                task,
                version: r.get("task_version")?,
            }),
            None => None,
        },
        run_after_ms: r.get("run_after_ms")?,
        created_ms: r.get("created_ms")?,
        updated_ms: r.get("updated_ms")?,
        finished_ms: r.get("finished_ms")?,
        output: r.get("output")?,
        error: r.json("error")?,
        progress: progress.map(|p| {
            (
                p,
                r.get::<Option<String>>("progress_msg")
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            )
        }),
        cancel_requested: r.get("cancel_requested")?,
        class: r.get("class")?,
        request_hash: r.get("request_hash")?,
        priority: r.get("priority")?,
        concurrency: match r.get::<Option<String>>("concurrency_key")? {
            Some(key) => Some(ConcurrencyKey {
                key,
                limit: r.get::<Option<u32>>("concurrency_limit")?.unwrap_or(1),
            }),
            None => None,
        },
        schedule: match r.get::<Option<String>>("schedule_name")? {
            Some(name) => Some(ScheduleTick {
                name,
                tick_ms: r.get("schedule_tick_ms")?,
            }),
            None => None,
        },
    })
}

/// An attempt from a row with the [`attempt_columns!`] (and `log` when `with_log`).
fn attempt(r: &Record, with_log: bool) -> StoreResult<Attempt> {
    let state: String = r.get("state")?;
    Ok(Attempt {
        number: r.get("number")?,
        agent: r.get("agent")?,
        holder: r.get("holder")?,
        state: AttemptState::parse(&state).unwrap_or(AttemptState::Lost),
        started_ms: r.get("started_ms")?,
        finished_ms: r.get("finished_ms")?,
        lease_expires_ms: r.get("lease_expires_ms")?,
        outcome: r.json("outcome")?,
        log: if with_log { r.get("log")? } else { None },
    })
}

/// Record an event.
pub(crate) async fn event(
    s: &mut impl Sql,
    job: &str,
    attempt: Option<u32>,
    now: i64,
    told: &Told,
) -> StoreResult<()> {
    let message = match attempt {
        Some(n) => told.message_for(n),
        None => told.message.clone(),
    };
    s.exec(
        "INSERT INTO events (job_id, attempt, at_ms, kind, message) VALUES ($1, $2, $3, $4, $5)",
        params![job, attempt, now, told.kind.as_str(), message],
    )
    .await?;
    Ok(())
}

/// The attempt columns [`attempt`] reads, without the log.
macro_rules! attempt_columns {
    () => {
        "number, agent, holder, state, started_ms, finished_ms, lease_expires_ms, outcome"
    };
}

/// One job with its attempts (without their logs: see [`logs`]).
pub(crate) async fn get(s: &mut impl Sql, id: &str) -> StoreResult<Option<JobRecord>> {
    let Some(row) = s
        .row(
            concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1"),
            params![id],
        )
        .await?
    else {
        return Ok(None);
    };
    let attempt_list = s
        .rows(
            concat!(
                "SELECT ",
                attempt_columns!(),
                " FROM attempts WHERE job_id = $1 ORDER BY number"
            ),
            params![id],
        )
        .await?
        .iter()
        .map(|r| attempt(r, false))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(JobRecord {
        job: job(&row)?,
        attempt_list,
    }))
}

/// The newest `limit` attempts of a job with their logs, oldest first; `None` when there is no
/// such job.
pub(crate) async fn logs(
    s: &mut impl Sql,
    id: &str,
    limit: u32,
) -> StoreResult<Option<Vec<Attempt>>> {
    if !exists(s, id).await? {
        return Ok(None);
    }
    let mut attempts = s
        .rows(
            concat!(
                "SELECT ",
                attempt_columns!(),
                ", log FROM attempts WHERE job_id = $1 ORDER BY number DESC LIMIT $2"
            ),
            params![id, limit],
        )
        .await?
        .iter()
        .map(|r| attempt(r, true))
        .collect::<StoreResult<Vec<_>>>()?;
    attempts.reverse();
    Ok(Some(attempts))
}

/// The job an idempotency key named, with its admission report (JSON text).
pub(crate) async fn by_idempotency_key(
    s: &mut impl Sql,
    key: &str,
) -> StoreResult<Option<(Job, String)>> {
    let Some(row) = s
        .row(
            concat!(
                "SELECT ",
                job_columns!(),
                ", (SELECT report FROM reports r WHERE r.hash = jobs.report_hash) AS report FROM jobs WHERE idempotency_key = $1"
            ),
            params![key],
        )
        .await?
    else {
        return Ok(None);
    };
    let report: Option<String> = row.get("report")?;
    Ok(Some((job(&row)?, report.unwrap_or_else(|| "null".into()))))
}

/// The columns [`summary`] reads: a job's summary, with the sizes of its input and output
/// computed by the database (the bytes are never read) and the code of its error.
macro_rules! summary_columns {
    ($error_code:literal) => {
        concat!(
            "SELECT id, seq, component, status, task_name, task_version, attempts, max_attempts, created_ms, updated_ms, finished_ms, LENGTH(input) AS input_bytes, LENGTH(output) AS output_bytes, ",
            $error_code,
            " AS error_code FROM jobs"
        )
    };
}
pub(crate) use summary_columns;

/// A job's summary from a row with the [`summary_columns!`].
pub(crate) fn summary(r: &Record) -> StoreResult<JobSummary> {
    let status: String = r.get("status")?;
    Ok(JobSummary {
        id: r.get("id")?,
        seq: r.get("seq")?,
        component: r.get("component")?,
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        task: match r.get::<Option<String>>("task_name")? {
            Some(task) => Some(TaskPin {
                task,
                version: r.get("task_version")?,
            }),
            None => None,
        },
        attempts: r.get("attempts")?,
        max_attempts: r.get("max_attempts")?,
        created_ms: r.get("created_ms")?,
        updated_ms: r.get("updated_ms")?,
        finished_ms: r.get("finished_ms")?,
        input_bytes: r.get("input_bytes")?,
        output_bytes: r.get("output_bytes")?,
        error_code: r.get("error_code")?,
    })
}

/// Job summaries newest first, optionally by status, before a `seq` cursor, at most `limit`
/// (each filter combination is its own statement, so each uses its index).
pub(crate) async fn list(
    s: &mut impl Sql,
    status: Option<JobStatus>,
    before: Option<i64>,
    limit: u32,
) -> StoreResult<Vec<JobSummary>> {
    macro_rules! statements {
        ($code:literal) => {
            [
                concat!(summary_columns!($code), " ORDER BY seq DESC LIMIT $1"),
                concat!(
                    summary_columns!($code),
                    " WHERE status = $2 ORDER BY seq DESC LIMIT $1"
                ),
                concat!(
                    summary_columns!($code),
                    " WHERE seq < $2 ORDER BY seq DESC LIMIT $1"
                ),
                concat!(
                    summary_columns!($code),
                    " WHERE status = $2 AND seq < $3 ORDER BY seq DESC LIMIT $1"
                ),
            ]
        };
    }
    let sql = match s.dialect() {
        Dialect::Sqlite => statements!("json_extract(error, '$.code')"),
        Dialect::Postgres => statements!("(error::jsonb ->> 'code')"),
    };
    let status = status.map(JobStatus::as_str);
    let rows = match (status, before) {
        (None, None) => s.rows(sql[0], params![limit]).await?,
        (Some(st), None) => s.rows(sql[1], params![limit, st]).await?,
        (None, Some(b)) => s.rows(sql[2], params![limit, b]).await?,
        (Some(st), Some(b)) => s.rows(sql[3], params![limit, st, b]).await?,
    };
    rows.iter().map(summary).collect()
}

/// A job's events, oldest first, after the event `after` (a page's cursor), at most `limit`;
/// `None` when there is no such job.
pub(crate) async fn events(
    s: &mut impl Sql,
    id: &str,
    after: Option<i64>,
    limit: u32,
) -> StoreResult<Option<Vec<Event>>> {
    if !exists(s, id).await? {
        return Ok(None);
    }
    s.rows(
        "SELECT id, attempt, at_ms, kind, message FROM events WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        params![id, after.unwrap_or(0), limit],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Event {
            id: r.get("id")?,
            attempt: r.get("attempt")?,
            at_ms: r.get("at_ms")?,
            kind: r.get("kind")?,
            message: r.get("message")?,
        })
    })
    .collect::<StoreResult<Vec<_>>>()
    .map(Some)
}

/// Whether a job with this id is stored (read without its input or output).
async fn exists(s: &mut impl Sql, id: &str) -> StoreResult<bool> {
    Ok(s.row("SELECT id FROM jobs WHERE id = $1", params![id])
        .await?
        .is_some())
}

/// Jobs by status.
pub(crate) async fn stats(s: &mut impl Sql) -> StoreResult<StoreStats> {
    let rows = s
        .rows(
            "SELECT status, COUNT(*) AS n FROM jobs GROUP BY status",
            &[],
        )
        .await?;
    let mut counts = Vec::with_capacity(rows.len());
    for r in &rows {
        counts.push((r.get::<String>("status")?, r.get::<u64>("n")?));
    }
    let jobs = JobStatus::ALL
        .into_iter()
        .map(|st| {
            let n = counts.iter().find(|(n, _)| n == st.as_str());
            (st, n.map_or(0, |(_, c)| *c))
        })
        .collect();
    let rows = s
        .rows("SELECT state, COUNT(*) AS n FROM queue GROUP BY state", &[])
        .await?;
    let mut waiting = Vec::with_capacity(rows.len());
    for r in &rows {
        waiting.push((r.get::<String>("state")?, r.get::<u64>("n")?));
    }
    let queue = QUEUE_STATES
        .into_iter()
        .map(|st| {
            let n = waiting.iter().find(|(n, _)| n == st);
            (st, n.map_or(0, |(_, c)| *c))
        })
        .collect();
    Ok(StoreStats { jobs, queue })
}

/// Where a queued job waits (the `queue` table's `state`).
const QUEUE_STATES: [&str; 3] = ["ready", "delayed", "parked"];

/// Extend a lease (fenced by the token and the identity's hold); whether cancellation was
/// requested.
pub(crate) async fn heartbeat(
    s: &mut impl Sql,
    token: &str,
    lease_ms: i64,
    now: i64,
) -> StoreResult<bool> {
    s.row(
        concat!(
            "UPDATE attempts SET lease_expires_ms = $2 WHERE lease_token = $1 AND state = 'running' AND ",
            still_held!("attempts"),
            " RETURNING (SELECT cancel_requested FROM jobs WHERE jobs.id = attempts.job_id) AS cancel_requested"
        ),
        params![token, now + lease_ms],
    )
    .await?
    .ok_or(StoreError::StaleLease)?
    .get("cancel_requested")
}

/// A write about the running attempt's job, fenced by its token and its identity's hold (the
/// statements check both, see [`still_held!`]). On PostgreSQL the attempt
/// row is locked `FOR SHARE` in the same statement: a finish or a reaper holding it makes this
/// wait, then see the attempt ended and change nothing.
async fn fenced(
    s: &mut impl Sql,
    sqlite: &'static str,
    postgres: &'static str,
    params: &[Value],
) -> StoreResult<()> {
    let sql = match s.dialect() {
        Dialect::Sqlite => sqlite,
        Dialect::Postgres => postgres,
    };
    match s.exec(sql, params).await? {
        0 => Err(StoreError::StaleLease),
        _ => Ok(()),
    }
}

/// Record progress of a running attempt (fenced).
pub(crate) async fn set_progress(
    s: &mut impl Sql,
    token: &str,
    percent: u8,
    message: &str,
) -> StoreResult<()> {
    fenced(
        s,
        concat!(
            "UPDATE jobs SET progress = $2, progress_msg = $3 WHERE id = (SELECT job_id FROM attempts WHERE lease_token = $1 AND state = 'running' AND ",
            still_held!("attempts"),
            ")"
        ),
        concat!(
            "WITH a AS (SELECT job_id FROM attempts WHERE lease_token = $1 AND state = 'running' AND ",
            still_held!("attempts"),
            " FOR SHARE) UPDATE jobs SET progress = $2, progress_msg = $3 FROM a WHERE jobs.id = a.job_id"
        ),
        params![token, u32::from(percent), message],
    )
    .await
}

/// Save the job's checkpoint from a running attempt (fenced).
pub(crate) async fn save_checkpoint(s: &mut impl Sql, token: &str, data: &[u8]) -> StoreResult<()> {
    fenced(
        s,
        concat!(
            "UPDATE jobs SET checkpoint = $2 WHERE id = (SELECT job_id FROM attempts WHERE lease_token = $1 AND state = 'running' AND ",
            still_held!("attempts"),
            ")"
        ),
        concat!(
            "WITH a AS (SELECT job_id FROM attempts WHERE lease_token = $1 AND state = 'running' AND ",
            still_held!("attempts"),
            " FOR SHARE) UPDATE jobs SET checkpoint = $2 FROM a WHERE jobs.id = a.job_id"
        ),
        params![token, data],
    )
    .await
}

/// The job's checkpoint.
pub(crate) async fn load_checkpoint(s: &mut impl Sql, id: &str) -> StoreResult<Option<Vec<u8>>> {
    Ok(
        s.row("SELECT checkpoint FROM jobs WHERE id = $1", params![id])
            .await?
            .map(|r| r.get::<Option<Vec<u8>>>("checkpoint"))
            .transpose()?
            .flatten(),
    )
}

/// A job's move as statement parameters, in this order: status, output, whether `error`
/// changes, the error, run after, finished at, uncharged (1 or 0).
pub(crate) fn move_params(m: &JobMove, now: i64) -> Vec<Value> {
    let error = m.error_json();
    params![
        m.status.as_str(),
        m.output.clone(),
        error.is_some(),
        error.flatten(),
        m.run_after_ms,
        m.finished_ms(now),
        u32::from(m.uncharge)
    ]
    .to_vec()
}

/// Move a running job as `m` decides (its attempt `number` ended); a job queued again gets its
/// row in the `queue` table.
pub(crate) async fn apply_move(
    s: &mut impl Sql,
    job: &str,
    number: u32,
    m: &JobMove,
    now: i64,
) -> StoreResult<()> {
    let moved = s
        .row(
            "UPDATE jobs SET status = $2, output = COALESCE($3, output),
             error = CASE WHEN $4 THEN $5 ELSE error END,
             run_after_ms = COALESCE($6, run_after_ms), finished_ms = $7,
             attempts = attempts - $8, updated_ms = $9, conflicts = conflicts + $10
         WHERE id = $1 AND status = 'running' RETURNING concurrency_key",
            &[
                &[Value::from(job)][..],
                &move_params(m, now),
                params![now, u32::from(m.conflict)],
            ]
            .concat(),
        )
        .await?;
    if m.status == JobStatus::Queued {
        s.exec(
            concat!(
                "INSERT INTO queue (job_id, run_after_ms, seq, class, priority, state, concurrency_key) SELECT id, run_after_ms, seq, class, priority, ",
                queue_state!("$2"),
                ", concurrency_key FROM jobs WHERE id = $1"
            ),
            params![job, now],
        )
        .await?;
    }
    event(s, job, Some(number), now, &m.told).await?;
    if let Some(key) = moved
        .map(|r| r.get::<Option<String>>("concurrency_key"))
        .transpose()?
        .flatten()
    {
        super::turns::settle(s, &key).await?;
    }
    Ok(())
}

/// End an attempt, fenced by its token and its identity's hold, and move its job on. A
/// success commits the attempt's
/// kv writes in the same transaction, once its kv reads are checked: if another attempt
/// changed any of them meanwhile, the writes are discarded and the job runs again (see
/// [`life::conflicted`]). PostgreSQL runs a finish with kv effects in a serializable
/// transaction, so two attempts checking at once cannot both commit.
pub(crate) async fn finish(
    s: &mut impl Sql,
    token: &str,
    end: &AttemptEnd,
    now: i64,
) -> StoreResult<(JobStatus, String)> {
    if commits_kv(end)
        && let Some(moved) = commit_kv(s, token, end, now).await?
    {
        return Ok(moved);
    }
    let ended = s
        .row(
            concat!(
                "UPDATE attempts SET state = $2, finished_ms = $3, outcome = $4, log = $5 WHERE lease_token = $1 AND state = 'running' AND ",
                still_held!("attempts"),
                " RETURNING job_id, number"
            ),
            params![token, end.state.as_str(), now, end.outcome.to_string(), &end.log],
        )
        .await?
        .ok_or(StoreError::StaleLease)?;
    let m = life::ended(&end.next, now);
    let job: String = ended.get("job_id")?;
    apply_move(s, &job, ended.get("number")?, &m, now).await?;
    Ok((m.status, job))
}

/// Whether ending the attempt this way commits kv effects (a success that touched kv).
pub(crate) fn commits_kv(end: &AttemptEnd) -> bool {
    matches!(end.next, Next::Succeed(_)) && !end.kv.is_empty()
}

/// Check a succeeding attempt's kv reads and apply its writes (`None`: the finish goes on as
/// a success), or record the conflict and move its job (`Some`: the job's status now).
async fn commit_kv(
    s: &mut impl Sql,
    token: &str,
    end: &AttemptEnd,
    now: i64,
) -> StoreResult<Option<(JobStatus, String)>> {
    let sql = match s.dialect() {
        Dialect::Postgres => concat!(
            "SELECT a.job_id, a.number, j.attempts, j.max_attempts, j.conflicts FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.lease_token = $1 AND a.state = 'running' AND ",
            still_held!("a"),
            " FOR UPDATE OF a"
        ),
        Dialect::Sqlite => concat!(
            "SELECT a.job_id, a.number, j.attempts, j.max_attempts, j.conflicts FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.lease_token = $1 AND a.state = 'running' AND ",
            still_held!("a")
        ),
    };
    let a = s
        .row(sql, params![token])
        .await?
        .ok_or(StoreError::StaleLease)?;
    let changed = super::kv::changed(s, &end.kv).await?;
    if changed.is_empty() {
        super::kv::apply(s, &end.kv).await?;
        return Ok(None);
    }
    let c = life::Conflicted {
        number: a.get("number")?,
        attempts: a.get("attempts")?,
        max_attempts: a.get("max_attempts")?,
        conflicts: a.get("conflicts")?,
        changed,
    };
    let m = life::conflicted(&c, now);
    let outcome =
        serde_json::json!({"kind": "kv-conflict", "message": m.told.message_for(c.number)});
    s.exec(
        "UPDATE attempts SET state = 'interrupted', finished_ms = $2, outcome = $3, log = $4 WHERE lease_token = $1 AND state = 'running'",
        params![token, now, outcome.to_string(), &end.log],
    )
    .await?;
    let job: String = a.get("job_id")?;
    apply_move(s, &job, c.number, &m, now).await?;
    Ok(Some((m.status, job)))
}

/// Request cancellation: a queued job is cancelled at once; a running one is flagged. Returns
/// the job after the change. The queue row goes first (on PostgreSQL, locks are taken queue
/// row before job, as claims take them).
pub(crate) async fn cancel(s: &mut impl Sql, id: &str, now: i64) -> StoreResult<Job> {
    let dequeued = s
        .row(
            "DELETE FROM queue WHERE job_id = $1 RETURNING concurrency_key",
            params![id],
        )
        .await?;
    let lock = match s.dialect() {
        Dialect::Postgres => "SELECT status FROM jobs WHERE id = $1 FOR UPDATE",
        Dialect::Sqlite => "SELECT status FROM jobs WHERE id = $1",
    };
    let status: String = s
        .row(lock, params![id])
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("job {id}")))?
        .get("status")?;
    let status = JobStatus::parse(&status).unwrap_or(JobStatus::Failed);
    if let Some((at_once, told)) = life::cancel(status) {
        let sql = if at_once {
            "UPDATE jobs SET status = 'cancelled', cancel_requested = TRUE, finished_ms = $2, updated_ms = $2 WHERE id = $1"
        } else {
            "UPDATE jobs SET cancel_requested = TRUE, updated_ms = $2 WHERE id = $1"
        };
        s.exec(sql, params![id, now]).await?;
        event(s, id, None, now, &told).await?;
    }
    if let Some(key) = dequeued
        .map(|r| r.get::<Option<String>>("concurrency_key"))
        .transpose()?
        .flatten()
    {
        super::turns::settle(s, &key).await?;
    }
    let row = s
        .one(
            concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1"),
            params![id],
        )
        .await?;
    job(&row)
}

/// Which running attempts [`lose`] takes.
pub(crate) enum Lose<'a> {
    /// Those a dead process left under an identity now held by another: claimed under
    /// another hold than `hold` by `dead` (or before holds were recorded).
    LeftBy {
        /// The identity.
        agent: &'a str,
        /// The identity's hold now.
        hold: &'a str,
        /// The process known to have died.
        dead: &'a str,
    },
    /// Those whose lease expired before this time. On PostgreSQL, attempts another transaction
    /// is writing (a heartbeat, a finish) are skipped: the next pass sees them.
    Expired(i64),
}

/// The running attempts `which` names, locked on PostgreSQL (attempt rows first, then their
/// jobs', in id order, as every other writer takes them).
async fn losing(s: &mut impl Sql, which: &Lose<'_>) -> StoreResult<Vec<LostAttempt>> {
    let pg = s.dialect() == Dialect::Postgres;
    let attempts = match which {
        Lose::LeftBy { agent, hold, dead } => {
            let sql = if pg {
                "SELECT id, job_id, number, agent FROM attempts WHERE state = 'running' AND agent = $1 AND hold IS DISTINCT FROM $2 AND (holder = $3 OR hold IS NULL) ORDER BY id FOR UPDATE"
            } else {
                "SELECT id, job_id, number, agent FROM attempts WHERE state = 'running' AND agent = $1 AND hold IS DISTINCT FROM $2 AND (holder = $3 OR hold IS NULL) ORDER BY id"
            };
            s.rows(sql, params![*agent, *hold, *dead]).await?
        }
        Lose::Expired(before) => {
            let sql = if pg {
                "SELECT id, job_id, number, agent FROM attempts WHERE state = 'running' AND lease_expires_ms < $1 ORDER BY id FOR UPDATE SKIP LOCKED"
            } else {
                "SELECT id, job_id, number, agent FROM attempts WHERE state = 'running' AND lease_expires_ms < $1 ORDER BY id"
            };
            s.rows(sql, params![*before]).await?
        }
    };
    let mut lost = Vec::with_capacity(attempts.len());
    for a in &attempts {
        let job: String = a.get("job_id")?;
        let sql = if pg {
            "SELECT attempts, max_attempts, cancel_requested FROM jobs WHERE id = $1 FOR UPDATE"
        } else {
            "SELECT attempts, max_attempts, cancel_requested FROM jobs WHERE id = $1"
        };
        let j = s.one(sql, params![&job]).await?;
        lost.push(LostAttempt {
            job,
            number: a.get("number")?,
            agent: a.get("agent")?,
            attempts: j.get("attempts")?,
            max_attempts: j.get("max_attempts")?,
            cancel_requested: j.get("cancel_requested")?,
        });
    }
    Ok(lost)
}

/// Lose running attempts and move their jobs as the lifecycle decides. Returns how many were
/// lost, and the jobs that finished for it.
pub(crate) async fn lose(
    s: &mut impl Sql,
    which: Lose<'_>,
    cause: LossCause,
    now: i64,
) -> StoreResult<(u64, Vec<String>)> {
    let lost = losing(s, &which).await?;
    let outcome = serde_json::json!({"kind": "lost", "message": cause.why()}).to_string();
    let mut finished = Vec::new();
    for a in &lost {
        s.exec(
            "UPDATE attempts SET state = 'lost', finished_ms = $3, outcome = $4 WHERE job_id = $1 AND number = $2 AND state = 'running'",
            params![&a.job, a.number, now, &outcome],
        )
        .await?;
        let m = life::lost(a, cause, now);
        apply_move(s, &a.job, a.number, &m, now).await?;
        if m.status.is_terminal() {
            finished.push(a.job.clone());
        }
    }
    Ok((lost.len() as u64, finished))
}

/// Lose what `dead`, the identity's previous holder, left running under it (nothing when no
/// previous holder is known dead: live holders' attempts are fenced out and expire).
pub(crate) async fn recover_agent(
    s: &mut impl Sql,
    agent: &Held,
    dead: Option<&str>,
    now: i64,
) -> StoreResult<(u64, Vec<String>)> {
    let Some(dead) = dead else {
        return Ok((0, Vec::new()));
    };
    let which = Lose::LeftBy {
        agent: &agent.agent,
        hold: &agent.hold,
        dead,
    };
    lose(s, which, LossCause::AgentRestarted, now).await
}

/// A job insert the database refused (a constraint: its component is not stored, its id is
/// taken): nothing was stored.
pub(crate) fn not_stored(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict(m) => {
            StoreError::Conflict(format!("the job could not be stored: {m}"))
        }
        e => e,
    }
}

/// Insert a job (with its class and report, once each), its queue row and its `queued` event;
/// an idempotency key already used answers its job instead. A job pinned to an unregistered
/// task version is refused ([`StoreError::TaskVersionGone`]) and nothing is stored. (SQLite
/// runs this under its one writer, so nothing comes between a check and its write;
/// PostgreSQL runs its own one-statement insert.)
pub(crate) async fn insert(s: &mut impl Sql, j: &NewJob) -> StoreResult<Inserted> {
    if let Some(key) = &j.idempotency_key {
        let existing = s
            .row(
                concat!(
                    "SELECT ",
                    job_columns!(),
                    " FROM jobs WHERE idempotency_key = $1"
                ),
                params![key],
            )
            .await?;
        if let Some(existing) = existing {
            return Ok(Inserted {
                job: job(&existing)?,
                created: false,
            });
        }
    }
    if let Some(pin) = &j.task {
        super::tasks::check_pin(s, pin).await?;
    }
    if let Some(r) = &j.requirements {
        super::nodes::ensure_class(s, r, j.now_ms).await?;
    }
    let report_hash = blake3::hash(j.report.as_bytes()).to_hex().to_string();
    s.exec(
        "INSERT INTO reports (hash, report) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        params![&report_hash, &*j.report],
    )
    .await?;
    let stored = s
        .one(
        concat!("INSERT INTO jobs (id, component, input, status, max_attempts, limits, optional, report_hash, kv_scope, task_name, task_version, idempotency_key, class, run_after_ms, created_ms, updated_ms, request_hash, priority, concurrency_key, concurrency_limit, schedule_name, schedule_tick_ms)
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12, $15, $13, $13, $14, $16, $17, $18, $19, $20) RETURNING ", job_columns!()),
        params![
            &j.id,
            &j.component,
            j.input.as_slice(),
            j.max_attempts,
            serde_json::to_string(&j.limits).expect("limits serialize"),
            serde_json::to_string(&j.optional_imports).expect("strings serialize"),
            report_hash,
            &j.kv_scope,
            j.task.as_ref().map(|p| p.task.as_str()),
            j.task.as_ref().map(|p| p.version),
            j.idempotency_key.as_deref(),
            j.requirements.as_ref().map(|r| r.class.as_str()),
            j.now_ms,
            j.request_hash.as_deref(),
            j.run_after_ms(),
            j.turn.priority,
            j.turn.concurrency.as_ref().map(|c| c.key.as_str()),
            j.turn.concurrency.as_ref().map(|c| c.limit),
            j.schedule.as_ref().map(|f| f.schedule.as_str()),
            j.schedule.as_ref().map(|f| f.tick_ms),
        ],
    )
    .await
    .map_err(not_stored)?;
    let stored_job = job(&stored)?;
    let key = stored_job.concurrency.as_ref().map(|c| c.key.as_str());
    s.exec(
        concat!(
            "INSERT INTO queue (job_id, run_after_ms, seq, class, priority, state, concurrency_key) VALUES ($1, $2, $3, $4, $5, ",
            queue_state!("CAST($2 AS BIGINT)", "CAST($6 AS TEXT)", "CAST($7 AS BIGINT)"),
            ", $6)"
        ),
        params![
            &stored_job.id,
            stored_job.run_after_ms,
            stored_job.seq,
            stored_job.class.as_deref(),
            stored_job.priority,
            key,
            j.now_ms
        ],
    )
    .await?;
    event(s, &j.id, None, j.now_ms, &j.queued()).await?;
    if let Some(key) = key {
        super::turns::settle(s, key).await?;
    }
    Ok(Inserted {
        job: stored_job,
        created: true,
    })
}

/// The classes whose queue heads a claim looks at: `classes`, and `''` for jobs without one.
/// Each head is one probe of the `queue_heads` index, so jobs of other classes, however
/// many, are never walked past.
pub(crate) fn heads(classes: &[String]) -> Vec<String> {
    let mut heads = Vec::with_capacity(classes.len() + 1);
    heads.extend_from_slice(classes);
    heads.push(String::new());
    heads
}

/// SQLite's choice of the job a claim takes (`$1` the [`heads`] as JSON): the first of the
/// classes' heads (highest priority, then the longest ready).
pub(crate) const SQLITE_HEAD: &str = "SELECT q.job_id FROM json_each($1) c JOIN queue q ON q.job_id = (SELECT h.job_id FROM queue h WHERE COALESCE(h.class, '') = c.value AND h.state = 'ready' ORDER BY h.priority DESC, h.run_after_ms, h.seq LIMIT 1) ORDER BY q.priority DESC, q.run_after_ms, q.seq LIMIT 1";

/// Claim the next runnable job for `agent` among those without a class or of `classes`: check
/// that the identity is still held under `agent.hold`, take the head of the queue, mark its
/// job running, count the attempt, and record the attempt (numbered by the job's own counter)
/// with its hold, its holding process, a fresh lease token and its event. (PostgreSQL runs
/// its own one-statement claim, which skips rows other claimers hold.)
pub(crate) async fn claim(
    s: &mut impl Sql,
    agent: &Held,
    classes: &[String],
    lease_ms: i64,
    now: i64,
) -> StoreResult<Option<Claim>> {
    let holder: Option<String> = s
        .row(
            "SELECT holder FROM agents WHERE id = $1 AND hold = $2",
            params![&agent.agent, &agent.hold],
        )
        .await?
        .ok_or_else(|| StoreError::IdentityLost(agent.agent.clone()))?
        .get("holder")?;
    let head = match s.dialect() {
        Dialect::Sqlite => SQLITE_HEAD,
        Dialect::Postgres => {
            "SELECT h.job_id FROM unnest($1::text[]) AS c (class) CROSS JOIN LATERAL (SELECT job_id, priority, run_after_ms, seq FROM queue q WHERE COALESCE(q.class, '') = c.class AND q.state = 'ready' ORDER BY q.priority DESC, q.run_after_ms, q.seq LIMIT 1 FOR UPDATE SKIP LOCKED) h ORDER BY h.priority DESC, h.run_after_ms, h.seq LIMIT 1"
        }
    };
    let Some(head) = s.row(head, params![heads(classes)]).await? else {
        return Ok(None);
    };
    let id: String = head.get("job_id")?;
    s.exec("DELETE FROM queue WHERE job_id = $1", params![&id])
        .await?;
    let claimed = s
        .one(
            concat!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, attempt_rows = attempt_rows + 1, updated_ms = $2 WHERE id = $1 AND status = 'queued' RETURNING ",
                job_columns!(),
                ", attempt_rows"
            ),
            params![&id, now],
        )
        .await?;
    let number: u32 = claimed.get("attempt_rows")?;
    let (token, expires) = (life::new_token(), now + lease_ms);
    s.exec(
        "INSERT INTO attempts (job_id, number, agent, lease_token, lease_expires_ms, state, started_ms, hold, holder) VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8)",
        params![&id, number, &agent.agent, &token, expires, now, &agent.hold, holder],
    )
    .await?;
    event(s, &id, Some(number), now, &life::claimed(&agent.agent)).await?;
    Ok(Some(Claim {
        job: job(&claimed)?,
        attempt: number,
        lease_token: token,
        lease_expires_ms: expires,
    }))
}
