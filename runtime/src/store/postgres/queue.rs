//! PostgreSQL's own inserts, claims and finishes: each is one statement (data-modifying CTEs,
//! atomic on their own, one round trip), with the meaning of the shared operations and the
//! lifecycle's decisions and sentences passed in as parameters.
//!
//! Locks are always taken attempt before job (finish, the reaper, recovery, fenced writes),
//! and queue row before job (claim, cancel). A claim locks a queue row and then its queued job,
//! which no running attempt belongs to, so these statements do not deadlock with each other.

use super::sql::records;
use super::{GenericClient, pg};
use crate::lifecycle::attempts::{self as life, JobMove};
use crate::store::ops::jobs::{
    heads, job, job_columns, move_params, not_stored, queue_state, still_held,
};
use crate::store::sql::{Record, Value, params};
use crate::store::*;
use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;

/// Run a cached prepared statement; its rows as records.
async fn query(c: &impl GenericClient, sql: &str, p: &[Value]) -> StoreResult<Vec<Record>> {
    let stmt = c.prepare_cached(sql).await.map_err(pg)?;
    let refs: Vec<&(dyn ToSql + Sync)> = p.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    records(&c.query(&stmt, &refs).await.map_err(pg)?)
}

/// The CTEs that store a job without a concurrency key (`report`, `job`, `queued`, `event`):
/// `$1`..`$13` the job (`$10` the task of its pin, `$12` now), `$14` the `queued` event's
/// message, `$15` the version of its pin, `$16` its request hash, `$17` when it may run, `$18`
/// its priority; `$guard` is the condition for storing it at all.
macro_rules! insert_ctes {
    ($guard:literal) => {
        concat!(
            "report AS (
                 INSERT INTO reports (hash, report) SELECT $7, $8 WHERE ", $guard, "
                 ON CONFLICT DO NOTHING
             ),
             job AS (
                 INSERT INTO jobs (id, component, input, status, max_attempts, limits, optional, report_hash, kv_scope, task_name, task_version, idempotency_key, class, run_after_ms, created_ms, updated_ms, request_hash, priority)
                 SELECT $1, $2, $3, 'queued', $4, $5, $6, $7, $9, $10, $15, $11, $13, $17, $12, $12, $16, $18 WHERE ", $guard, "
                 ON CONFLICT (idempotency_key) DO NOTHING
                 RETURNING ", job_columns!(), "
             ),
             queued AS (
                 INSERT INTO queue (job_id, run_after_ms, seq, class, priority, state)
                 SELECT id, run_after_ms, seq, class, priority, ", queue_state!("$12::bigint"), " FROM job
             ),
             event AS (
                 INSERT INTO events (job_id, attempt, at_ms, kind, message)
                 SELECT id, NULL, $12, 'queued', $14 FROM job
             )
             SELECT * FROM job"
        )
    };
}

/// Store a job. No row: its idempotency key names another job.
const INSERT_JOB: &str = concat!("WITH ", insert_ctes!("TRUE"));

/// [`INSERT_JOB`] for a job pinned to a task version: the version's row is
/// locked `FOR KEY SHARE` and must be registered, or nothing is inserted. A delete of the
/// version locks the row `FOR UPDATE` before it counts the jobs pinning it, so whichever
/// commits second sees the other.
const INSERT_TASK_JOB: &str = concat!(
    "WITH pin AS (
         SELECT 1 FROM task_versions WHERE task = $10 AND version = $15 AND deleted_ms IS NULL
         FOR KEY SHARE
     ), ",
    insert_ctes!("EXISTS (SELECT 1 FROM pin)")
);

const JOB_BY_KEY: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM jobs WHERE idempotency_key = $1"
);

/// Insert a job (its class must be stored): `created` is false when its idempotency key names
/// another job, which is answered instead. A job pinned to a task version that is not
/// registered is refused ([`StoreError::TaskVersionGone`]) and nothing is stored.
pub(super) async fn insert(c: &Object, j: &NewJob) -> StoreResult<Inserted> {
    debug_assert!(
        j.turn.concurrency.is_none(),
        "a job with a concurrency key is stored by the shared insert, which settles its key"
    );
    let report_hash = blake3::hash(j.report.as_bytes()).to_hex().to_string();
    let p = params![
        &j.id,
        &j.component,
        j.input.as_slice(),
        j.max_attempts,
        serde_json::to_string(&j.limits).map_err(super::backend)?,
        serde_json::to_string(&j.optional_imports).map_err(super::backend)?,
        report_hash,
        &*j.report,
        &j.kv_scope,
        j.task.as_ref().map(|p| p.task.as_str()),
        j.idempotency_key.as_deref(),
        j.now_ms,
        j.requirements.as_ref().map(|r| r.class.as_str()),
        j.queued().message,
        j.task.as_ref().map(|p| p.version),
        j.request_hash.as_deref(),
        j.run_after_ms(),
        j.turn.priority,
    ]
    .to_vec();
    let sql = match j.task {
        None => INSERT_JOB,
        Some(_) => INSERT_TASK_JOB,
    };
    if let Some(row) = query(c, sql, &p).await.map_err(not_stored)?.first() {
        return Ok(Inserted {
            job: job(row)?,
            created: true,
        });
    }
    // The idempotency key names a job already (committed before this insert looked), or the
    // job's task version is not registered.
    let existing = match &j.idempotency_key {
        Some(key) => query(c, JOB_BY_KEY, params![key]).await?.into_iter().next(),
        None => None,
    };
    match (existing, &j.task) {
        (Some(row), _) => Ok(Inserted {
            job: job(&row)?,
            created: false,
        }),
        (None, Some(pin)) => Err(crate::lifecycle::tasks::gone(&pin.task, pin.version).into()),
        (None, None) => Err(super::backend(
            "an insert without a row names no existing job",
        )),
    }
}

/// The CTEs of a claim (`held`, `next`, `claimed`, `new_attempt`, `claim_event`), with the
/// positions of its parameters (now, classes, agent, token, lease expiry, the `claimed`
/// event's message, the agent's hold) and an extra condition: check that the identity is still
/// held under the hold (its row locked `FOR SHARE`, so a take waits for the claim, and a claim
/// after a take sees the new hold), take the oldest of the heads of the classes (one
/// `queue_heads` probe each, see [`heads`]), skipping rows another claimer
/// holds (claimers on every node proceed in parallel and never wait for each other), mark its
/// job running, count the attempt, and record the attempt row (numbered by the job's own
/// counter, read under its row lock, with its hold and holding process) and its event.
/// `held` is empty when the hold is gone; `claimed` has the job's columns, then the number.
macro_rules! claim_ctes {
    ($now:literal, $classes:literal, $agent:literal, $token:literal, $expires:literal, $told:literal, $hold:literal, $and:literal) => {
        concat!(
            "held AS (
                 SELECT holder FROM agents WHERE id = ", $agent, " AND hold = ", $hold, " FOR SHARE
             ),
             next AS (
                 DELETE FROM queue WHERE job_id = (
                     SELECT h.job_id FROM unnest(", $classes, "::text[]) AS c (class)
                     CROSS JOIN LATERAL (
                         SELECT job_id, priority, run_after_ms, seq FROM queue q
                         WHERE COALESCE(q.class, '') = c.class AND q.state = 'ready'", $and,
            " ORDER BY q.priority DESC, q.run_after_ms, q.seq LIMIT 1
                         FOR UPDATE SKIP LOCKED
                     ) h
                     ORDER BY h.priority DESC, h.run_after_ms, h.seq LIMIT 1
                 ) AND EXISTS (SELECT 1 FROM held)
                 RETURNING job_id AS next_id
             ),
             claimed AS (
                 UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1,
                     attempt_rows = jobs.attempt_rows + 1, updated_ms = ", $now,
            " FROM next WHERE jobs.id = next.next_id AND jobs.status = 'queued'
                 RETURNING ", job_columns!(), ", attempt_rows
             ),
             new_attempt AS (
                 INSERT INTO attempts (job_id, number, agent, lease_token, lease_expires_ms, state, started_ms, hold, holder)
                 SELECT id, attempt_rows, ", $agent, ", ", $token, ", ", $expires, ", 'running', ", $now,
            ", ", $hold, ", (SELECT holder FROM held) FROM claimed
             ),
             claim_event AS (
                 INSERT INTO events (job_id, attempt, at_ms, kind, message)
                 SELECT id, attempt_rows, ", $now, ", 'claimed', replace(", $told, "::text, '{attempt}', attempt_rows::text) FROM claimed
             )"
        )
    };
}

/// A claim on its own: `$1` now, `$2` classes, `$3` agent, `$4` token, `$5` lease expiry,
/// `$6` the event's message, `$7` the agent's hold. One row: the claimed job's (all `NULL`
/// when none was), and whether the identity is still held.
const CLAIM: &str = concat!(
    "WITH ",
    claim_ctes!("$1", "$2", "$3", "$4", "$5", "$6", "$7", ""),
    " SELECT claimed.*, EXISTS (SELECT 1 FROM held) AS held FROM (VALUES (1)) AS one (x) LEFT JOIN claimed ON TRUE"
);

/// The CTEs that end an attempt (`ended`, `finished`, `requeued`, `end_event`) and move its job
/// as a [`JobMove`] says: `$1` token, `$2` the attempt's state, `$3` now, `$4` outcome, `$5`
/// log, then the move (`$6` status, `$7` output, `$8` whether `error` changes, `$9` the error,
/// `$10` run after, `$11` finished at, `$12` uncharged, `$13` the event's kind, `$14` its
/// message). `ended` is empty when the token is stale or the identity's hold is no longer the
/// one the attempt was claimed under.
macro_rules! finish_ctes {
    () => {
        concat!("ended AS (
             UPDATE attempts SET state = $2, finished_ms = $3, outcome = $4, log = $5
             WHERE lease_token = $1 AND state = 'running' AND ", still_held!("attempts"), "
                 AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.id = attempts.job_id AND k.concurrency_key IS NOT NULL)
             RETURNING job_id, number
         ),
         finished AS (
             UPDATE jobs SET status = $6, output = COALESCE($7, jobs.output),
                 error = CASE WHEN $8 THEN $9 ELSE jobs.error END,
                 run_after_ms = COALESCE($10, jobs.run_after_ms), finished_ms = $11,
                 attempts = jobs.attempts - $12, updated_ms = $3
             FROM ended WHERE jobs.id = ended.job_id AND jobs.status = 'running'
             RETURNING jobs.id, jobs.status, jobs.run_after_ms, jobs.seq, jobs.class, jobs.priority, jobs.concurrency_key
         ),
         requeued AS (
             INSERT INTO queue (job_id, run_after_ms, seq, class, priority, state)
             SELECT id, run_after_ms, seq, class, priority, ", queue_state!("$3::bigint"), " FROM finished WHERE status = 'queued'
         ),
         end_event AS (
             INSERT INTO events (job_id, attempt, at_ms, kind, message)
             SELECT job_id, number, $3, $13, replace($14::text, '{attempt}', number::text) FROM ended
         )")
    };
}

const FINISH: &str = concat!("WITH ", finish_ctes!(), " SELECT job_id FROM ended");

/// End an attempt whose job is finished for good and claim the agent's next one, in one
/// statement: the claim's parameters follow the ending's, and it happens only if the ending
/// did. The finished job cannot be claimed again, so the claim needs not see the ending.
const FINISH_AND_CLAIM: &str = concat!(
    "WITH ",
    finish_ctes!(),
    ", ",
    claim_ctes!(
        "$3",
        "$15",
        "$16",
        "$17",
        "$18",
        "$19",
        "$20",
        " AND EXISTS (SELECT 1 FROM ended)"
    ),
    " SELECT claimed.*, ended.job_id AS ended_job FROM ended LEFT JOIN claimed ON TRUE"
);

/// The ending's parameters (`$1` .. `$14` of [`finish_ctes!`]).
fn ending(token: &str, end: &AttemptEnd, m: &JobMove, now: i64) -> Vec<Value> {
    let attempt = params![
        token,
        end.state.as_str(),
        now,
        end.outcome.to_string(),
        &end.log
    ];
    let told = params![m.told.kind.as_str(), &m.told.message];
    [attempt, &move_params(m, now), told].concat()
}

fn claim_from(row: &Record, token: String, expires: i64) -> StoreResult<Option<Claim>> {
    if row.get::<Option<String>>("id")?.is_none() {
        return Ok(None);
    }
    Ok(Some(Claim {
        job: job(row)?,
        attempt: row.get("attempt_rows")?,
        lease_token: token,
        lease_expires_ms: expires,
    }))
}

/// Claim the next runnable job for `agent` among those without a class or of `classes`
/// ([`StoreError::IdentityLost`] when the identity is no longer held under `agent.hold`).
pub(super) async fn claim(
    c: &impl GenericClient,
    agent: &Held,
    classes: &[String],
    lease_ms: i64,
    now: i64,
) -> StoreResult<Option<Claim>> {
    let (token, expires) = (life::new_token(), now + lease_ms);
    let told = life::claimed(&agent.agent).message;
    let p = params![
        now,
        heads(classes),
        &agent.agent,
        &token,
        expires,
        told,
        &agent.hold
    ];
    let rows = query(c, CLAIM, p).await?;
    let row = rows
        .first()
        .ok_or_else(|| super::backend("a claim answered no row"))?;
    if !row.get::<bool>("held")? {
        return Err(StoreError::IdentityLost(agent.agent.clone()));
    }
    claim_from(row, token, expires)
}

/// An attempt's end, as recorded.
pub(super) struct Ended {
    /// The job's status now.
    pub status: JobStatus,
    /// The job.
    pub job: String,
}

/// End an attempt, fenced by its token, and move its job on. `None`: nothing was written,
/// because the token is stale or because the job has a concurrency key (its finish settles
/// the key, which the shared finish does: run that instead, and it tells which).
pub(super) async fn finish(
    c: &impl GenericClient,
    token: &str,
    end: &AttemptEnd,
    now: i64,
) -> StoreResult<Option<Ended>> {
    let m = life::ended(&end.next, now);
    let rows = query(c, FINISH, &ending(token, end, &m, now)).await?;
    rows.first()
        .map(|row| {
            Ok(Ended {
                status: m.status,
                job: row.get("job_id")?,
            })
        })
        .transpose()
}

/// End an attempt and claim the agent's next. When the job is finished for good that is one
/// statement; when it is queued again (retry, requeue) the claim is a second statement in the
/// same transaction, sent together with the first, so that it sees the job queued again.
/// `None`: nothing was written (as for [`finish`]).
pub(super) async fn finish_and_claim(
    c: &mut Object,
    token: &str,
    end: &AttemptEnd,
    next: (&Held, &[String], i64),
    now: i64,
) -> StoreResult<Option<(Ended, Option<Claim>)>> {
    let (agent, classes, lease_ms) = next;
    let m = life::ended(&end.next, now);
    if !m.status.is_terminal() {
        let tx = c.transaction().await.map_err(pg)?;
        // A stale token fails the finish, and the transaction rolls back (the claim with it).
        let (ended, claim) = tokio::try_join!(
            finish(&tx, token, end, now),
            claim(&tx, agent, classes, lease_ms, now)
        )?;
        let Some(ended) = ended else {
            // Dropping the transaction rolls the claim back.
            return Ok(None);
        };
        tx.commit().await.map_err(pg)?;
        return Ok(Some((ended, claim)));
    }
    let (new_token, expires) = (life::new_token(), now + lease_ms);
    let mut p = ending(token, end, &m, now);
    p.extend_from_slice(params![
        heads(classes),
        &agent.agent,
        &new_token,
        expires,
        life::claimed(&agent.agent).message,
        &agent.hold
    ]);
    let rows = query(&*c, FINISH_AND_CLAIM, &p).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let ended = Ended {
        status: m.status,
        job: row.get("ended_job")?,
    };
    Ok(Some((ended, claim_from(row, new_token, expires)?)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_attempt_placeholder_is_the_one_the_statements_fill_in() {
        assert_eq!(crate::lifecycle::attempts::ATTEMPT, "{attempt}");
    }
}
