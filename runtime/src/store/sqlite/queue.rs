//! SQLite's own inserts and claims (the shared operations do the rest). The writer commits
//! them in its batch; with one writer, nothing can come between a check and its write.

use super::Lite;
use crate::lifecycle::attempts as life;
use crate::store::ops::{self, jobs::job_columns};
use crate::store::sql::{Sql, params};
use crate::store::*;

/// Insert a job (with its class and report, once each) and its `queued` event; an idempotency
/// key already used answers its job instead. A job pinned to an unregistered task version is
/// refused ([`StoreError::TaskVersionGone`]) and nothing is stored.
pub(super) async fn insert(s: &mut Lite<'_>, job: &NewJob) -> StoreResult<Inserted> {
    if let Some(key) = &job.idempotency_key {
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
                job: ops::jobs::job(&existing)?,
                created: false,
            });
        }
    }
    if let Some(pin) = &job.task {
        ops::tasks::check_pin(s, pin).await?;
    }
    if let Some(r) = &job.requirements {
        ops::nodes::ensure_class(s, r, job.now_ms).await?;
    }
    let report_hash = blake3::hash(job.report.as_bytes()).to_hex().to_string();
    s.exec(
        "INSERT INTO reports (hash, report) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        params![&report_hash, &*job.report],
    )
    .await?;
    let limits = serde_json::to_string(&job.limits).map_err(super::backend)?;
    let optional = serde_json::to_string(&job.optional_imports).map_err(super::backend)?;
    s.exec(
        "INSERT INTO jobs (id, component, input, status, max_attempts, limits, optional, report, report_hash, kv_scope, task, idempotency_key, class, run_after_ms, created_ms, updated_ms)
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, '', $7, $8, $9, $10, $12, $11, $11, $11)",
        params![
            &job.id,
            &job.component,
            job.input.as_slice(),
            job.max_attempts,
            limits,
            optional,
            report_hash,
            &job.kv_scope,
            job.task.as_deref(),
            job.idempotency_key.as_deref(),
            job.now_ms,
            job.requirements.as_ref().map(|r| r.class.as_str()),
        ],
    )
    .await
    .map_err(ops::jobs::not_stored)?;
    ops::jobs::event(s, &job.id, None, job.now_ms, &life::queued()).await?;
    let stored = s
        .one(
            concat!("SELECT ", job_columns!(), " FROM jobs WHERE id = $1"),
            params![&job.id],
        )
        .await?;
    Ok(Inserted {
        job: ops::jobs::job(&stored)?,
        created: true,
    })
}

/// Claim the next runnable job for `agent` among those without a class or of `classes`: mark
/// it running, count the attempt, record the attempt with a fresh lease token and its event.
/// `INDEXED BY` keeps the queue's own index: with the class filter the planner would otherwise
/// read every queued job by status and sort them.
pub(super) async fn claim(
    s: &mut Lite<'_>,
    agent: &str,
    classes: &[String],
    lease_ms: i64,
    now: i64,
) -> StoreResult<Option<Claim>> {
    let Some(next) = s
        .row(
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs INDEXED BY jobs_queue WHERE status = 'queued' AND run_after_ms <= $1 AND (class IS NULL OR class IN (SELECT value FROM json_each($2))) ORDER BY run_after_ms, seq LIMIT 1"
            ),
            params![now, classes],
        )
        .await?
    else {
        return Ok(None);
    };
    let mut job = ops::jobs::job(&next)?;
    // Attempt rows are numbered in order; the job's `attempts` counts only charged ones (an
    // attempt interrupted by a draining node is not charged).
    let number: u32 = s
        .one(
            "SELECT COALESCE(MAX(number), 0) + 1 AS number FROM attempts WHERE job_id = $1",
            params![&job.id],
        )
        .await?
        .get("number")?;
    let (token, expires) = (life::new_token(), now + lease_ms);
    job.status = JobStatus::Running;
    job.attempts += 1;
    s.exec(
        "UPDATE jobs SET status = 'running', attempts = $2, updated_ms = $3 WHERE id = $1 AND status = 'queued'",
        params![&job.id, job.attempts, now],
    )
    .await?;
    s.exec(
        "INSERT INTO attempts (job_id, number, agent, lease_token, lease_expires_ms, state, started_ms) VALUES ($1, $2, $3, $4, $5, 'running', $6)",
        params![&job.id, number, agent, &token, expires, now],
    )
    .await?;
    ops::jobs::event(s, &job.id, Some(number), now, &life::claimed(agent)).await?;
    Ok(Some(Claim {
        job,
        attempt: number,
        lease_token: token,
        lease_expires_ms: expires,
    }))
}
