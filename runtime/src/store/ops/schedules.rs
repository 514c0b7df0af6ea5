//! Cron schedules: put, read, list and delete them, find the due ones, and fire a tick — the
//! schedule moves on by compare-and-set and the tick's job is stored, in one transaction. When
//! ticks fall and which one fires is the [`lifecycle`](crate::lifecycle::schedules)'s to
//! decide; the caller passes its decision in ([`Firing`]).

use crate::store::sql::{Record, Sql, params};
use crate::store::*;

/// The columns [`schedule`] reads.
macro_rules! schedule_columns {
    () => {
        "name, task, cron, timezone, input, created_ms, updated_ms, revision, next_tick_ms, last_tick_ms, last_job, fired, skipped"
    };
}

fn schedule(r: &Record) -> StoreResult<Schedule> {
    Ok(Schedule {
        name: r.get("name")?,
        task: r.get("task")?,
        cron: r.get("cron")?,
        timezone: r.get("timezone")?,
        input: r.get("input")?,
        created_ms: r.get("created_ms")?,
        updated_ms: r.get("updated_ms")?,
        revision: r.get("revision")?,
        next_tick_ms: r.get("next_tick_ms")?,
        last_tick_ms: r.get("last_tick_ms")?,
        last_job: r.get("last_job")?,
        fired: r.get("fired")?,
        skipped: r.get("skipped")?,
    })
}

/// Replace a schedule (a new revision, ticking from `next_tick_ms`), or create it; true when
/// created.
pub(crate) async fn put(s: &mut impl Sql, n: &NewSchedule) -> StoreResult<bool> {
    const REPLACE: &str = "UPDATE schedules SET task = $2, cron = $3, timezone = $4, input = $5, next_tick_ms = $6, updated_ms = $7, revision = revision + 1 WHERE name = $1";
    let p = params![
        &n.name,
        &n.task,
        &n.cron,
        &n.timezone,
        n.input.as_slice(),
        n.next_tick_ms,
        n.now_ms
    ];
    if s.exec(REPLACE, p).await? > 0 {
        return Ok(false);
    }
    let created = s
        .exec(
            "INSERT INTO schedules (name, task, cron, timezone, input, next_tick_ms, created_ms, updated_ms, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1) ON CONFLICT (name) DO NOTHING",
            p,
        )
        .await?;
    if created == 1 {
        return Ok(true);
    }
    // Created by a concurrent put since the update looked: replace that one.
    s.exec(REPLACE, p).await?;
    Ok(false)
}

/// One schedule.
pub(crate) async fn get(s: &mut impl Sql, name: &str) -> StoreResult<Option<Schedule>> {
    s.row(
        concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM schedules WHERE name = $1"
        ),
        params![name],
    )
    .await?
    .map(|r| schedule(&r))
    .transpose()
}

/// Schedules by name after `after`, at most `limit`.
pub(crate) async fn list(
    s: &mut impl Sql,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<Schedule>> {
    s.rows(
        concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM schedules WHERE name > $1 ORDER BY name LIMIT $2"
        ),
        params![after.unwrap_or(""), limit],
    )
    .await?
    .iter()
    .map(schedule)
    .collect()
}

/// Delete a schedule; whether it existed. Its jobs stay, and keep saying which schedule made
/// them.
pub(crate) async fn delete(s: &mut impl Sql, name: &str) -> StoreResult<bool> {
    Ok(
        s.exec("DELETE FROM schedules WHERE name = $1", params![name])
            .await?
            == 1,
    )
}

/// Schedules whose next tick is at or before `now`, the most overdue first, at most `limit`.
pub(crate) async fn due(s: &mut impl Sql, now: i64, limit: u32) -> StoreResult<Vec<Schedule>> {
    s.rows(
        concat!(
            "SELECT ",
            schedule_columns!(),
            " FROM schedules WHERE next_tick_ms <= $1 ORDER BY next_tick_ms LIMIT $2"
        ),
        params![now, limit],
    )
    .await?
    .iter()
    .map(schedule)
    .collect()
}

/// The earliest next tick of any schedule.
pub(crate) async fn next_tick(s: &mut impl Sql) -> StoreResult<Option<i64>> {
    s.one("SELECT MIN(next_tick_ms) AS next FROM schedules", params![])
        .await?
        .get("next")
}

/// Fire `job`'s tick ([`NewJob::schedule`]): move the schedule on from the tick's `due_ms` to
/// its `next_ms` if its revision and next tick are still the ones read (compare-and-set), and
/// store the job. `None`, with nothing changed, when the schedule moved on, was replaced or
/// was deleted meanwhile (another node fired the tick first). A tick that already has its job
/// (a clock stepped back) moves the schedule on and stores nothing.
pub(crate) async fn fire(s: &mut impl Sql, job: &NewJob) -> StoreResult<Option<Inserted>> {
    let Some(f) = &job.schedule else {
        return Err(StoreError::Backend(
            "a schedule's firing was asked to store a job without its schedule tick".into(),
        ));
    };
    let existing: Option<String> = s
        .row(
            "SELECT id FROM jobs WHERE schedule_name = $1 AND schedule_tick_ms = $2",
            params![&f.schedule, f.tick_ms],
        )
        .await?
        .map(|r| r.get("id"))
        .transpose()?;
    let moved = s
        .exec(
            "UPDATE schedules SET next_tick_ms = $4, last_tick_ms = $5, last_job = $6, fired = fired + 1, skipped = skipped + $7 WHERE name = $1 AND revision = $2 AND next_tick_ms = $3",
            params![
                &f.schedule,
                f.revision,
                f.due_ms,
                f.next_ms,
                f.tick_ms,
                existing.as_deref().unwrap_or(&job.id),
                i64::try_from(f.skipped).unwrap_or(i64::MAX)
            ],
        )
        .await?;
    if moved == 0 || existing.is_some() {
        return Ok(None);
    }
    super::jobs::insert(s, job).await.map(Some)
}

/// The newest `limit` jobs a schedule made, newest tick first.
pub(crate) async fn jobs(
    s: &mut impl Sql,
    name: &str,
    limit: u32,
) -> StoreResult<Vec<ScheduledJob>> {
    s.rows(
        "SELECT id, schedule_tick_ms, status, task_name, task_version FROM jobs WHERE schedule_name = $1 ORDER BY schedule_tick_ms DESC LIMIT $2",
        params![name, limit],
    )
    .await?
    .iter()
    .map(|r| {
        let status: String = r.get("status")?;
        Ok(ScheduledJob {
            id: r.get("id")?,
            tick_ms: r.get("schedule_tick_ms")?,
            status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
            task: match r.get::<Option<String>>("task_name")? {
                Some(task) => Some(TaskPin {
                    task,
                    version: r.get("task_version")?,
                }),
                None => None,
            },
        })
    })
    .collect()
}
