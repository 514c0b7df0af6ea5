//! Deployed tasks: each write runs in its caller's transaction and first takes the task lock
//! (the one `task_generation` row; on PostgreSQL `FOR UPDATE`, so deploys, rollbacks and
//! deletes are serialised across nodes; SQLite has one writer). A deploy's version row, its
//! `current` move, the generation bump, the audit row and the `driftless_tasks` notification
//! commit together or not at all.

use crate::lifecycle::tasks::{self as rules, Action, Deploy, DeployFacts, VersionRow};
use crate::store::sql::{Dialect, Record, Sql, params};
use crate::store::*;

/// The channel that tells nodes a task's `current` moved (payload: the task's name).
pub(crate) const TASKS_CHANNEL: &str = "driftless_tasks";

/// The task generation now.
pub(crate) async fn generation(s: &mut impl Sql) -> StoreResult<i64> {
    s.one("SELECT generation FROM task_generation WHERE id = 1", &[])
        .await?
        .get("generation")
}

/// Take the task lock; returns the generation.
async fn lock(s: &mut impl Sql) -> StoreResult<i64> {
    let sql = match s.dialect() {
        Dialect::Postgres => "SELECT generation FROM task_generation WHERE id = 1 FOR UPDATE",
        Dialect::Sqlite => "SELECT generation FROM task_generation WHERE id = 1",
    };
    s.one(sql, &[]).await?.get("generation")
}

async fn bump_generation(s: &mut impl Sql) -> StoreResult<i64> {
    s.one(
        "UPDATE task_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation",
        &[],
    )
    .await?
    .get("generation")
}

async fn current(s: &mut impl Sql, task: &str) -> StoreResult<Option<u32>> {
    s.row(
        "SELECT current_version FROM tasks WHERE name = $1",
        params![task],
    )
    .await?
    .map(|r| r.get("current_version"))
    .transpose()
}

fn version_row(r: &Record) -> StoreResult<VersionRow> {
    Ok(match r.get::<Option<i64>>("deleted_ms")? {
        None => VersionRow::Registered,
        Some(_) => VersionRow::Unregistered,
    })
}

/// A version's row; on PostgreSQL locked `FOR UPDATE` when `for_update`.
async fn version(
    s: &mut impl Sql,
    task: &str,
    version: u32,
    for_update: bool,
) -> StoreResult<Option<VersionRow>> {
    let sql = match (s.dialect(), for_update) {
        (Dialect::Postgres, true) => {
            "SELECT deleted_ms FROM task_versions WHERE task = $1 AND version = $2 FOR UPDATE"
        }
        _ => "SELECT deleted_ms FROM task_versions WHERE task = $1 AND version = $2",
    };
    s.row(sql, params![task, version])
        .await?
        .map(|r| version_row(&r))
        .transpose()
}

/// Audit a change, bump the generation and tell the nodes; returns the new generation.
async fn record_change(
    s: &mut impl Sql,
    task: &str,
    action: Action,
    who: (&str, &str),
    (old, new): (Option<u32>, Option<u32>),
    now: i64,
) -> StoreResult<i64> {
    s.exec(
        "INSERT INTO task_audit (task, at_ms, action, actor, request_id, old_version, new_version) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![task, now, action.as_str(), who.0, who.1, old, new],
    )
    .await?;
    if action == Action::DeleteVersion {
        return generation(s).await;
    }
    let generation = bump_generation(s).await?;
    s.notify(TASKS_CHANNEL, task).await?;
    Ok(generation)
}

/// Record the next version and make it current; identical bytes return the existing version.
pub(crate) async fn deploy(s: &mut impl Sql, v: &NewTaskVersion) -> StoreResult<Moved> {
    let generation = lock(s).await?;
    let previous = current(s, &v.task).await?;
    let same_bytes = s
        .row(
            "SELECT version FROM task_versions WHERE task = $1 AND component = $2 AND max_concurrency IS NOT DISTINCT FROM CAST($3 AS INTEGER) AND deleted_ms IS NULL ORDER BY version DESC LIMIT 1",
            params![&v.task, &v.component, v.max_concurrency],
        )
        .await?
        .map(|r| r.get("version"))
        .transpose()?;
    let highest = s
        .one(
            "SELECT MAX(version) AS highest FROM task_versions WHERE task = $1",
            params![&v.task],
        )
        .await?
        .get("highest")?;
    let facts = DeployFacts {
        current: previous,
        same_bytes,
        highest,
    };
    let version = match rules::deploy(facts) {
        Deploy::Unchanged { version } => {
            return Ok(Moved {
                version,
                previous,
                changed: false,
                generation,
            });
        }
        Deploy::Record { version } => version,
    };
    s.exec(
        "INSERT INTO task_versions (task, version, component, report, created_ms, deployed_by, max_concurrency) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![&v.task, version, &v.component, &*v.report, v.now_ms, &v.actor, v.max_concurrency],
    )
    .await?;
    crate::fault::point("deploy-inside-transaction");
    s.exec(
        "INSERT INTO tasks (name, current_version, created_ms, updated_ms) VALUES ($1, $2, $3, $3)
         ON CONFLICT (name) DO UPDATE SET current_version = excluded.current_version, updated_ms = excluded.updated_ms",
        params![&v.task, version, v.now_ms],
    )
    .await?;
    let who = (v.actor.as_str(), v.request_id.as_str());
    let change = (previous, Some(version));
    let generation = record_change(s, &v.task, Action::Deploy, who, change, v.now_ms).await?;
    Ok(Moved {
        version,
        previous,
        changed: true,
        generation,
    })
}

/// Make `to` (default: the newest registered version below `current`) current.
pub(crate) async fn rollback(
    s: &mut impl Sql,
    task: &str,
    to: Option<u32>,
    who: (&str, &str),
    now: i64,
) -> StoreResult<Moved> {
    lock(s).await?;
    let previous = current(s, task).await?;
    let requested = match to {
        Some(v) => Some((v, version(s, task, v, false).await?)),
        None => None,
    };
    let below = match (to, previous) {
        (None, Some(p)) => s
            .one(
                "SELECT MAX(version) AS below FROM task_versions WHERE task = $1 AND version < $2 AND deleted_ms IS NULL",
                params![task, p],
            )
            .await?
            .get("below")?,
        _ => None,
    };
    let target = rules::rollback(task, previous, requested, below)?;
    s.exec(
        "UPDATE tasks SET current_version = $2, updated_ms = $3 WHERE name = $1",
        params![task, target, now],
    )
    .await?;
    let generation = record_change(
        s,
        task,
        Action::Rollback,
        who,
        (previous, Some(target)),
        now,
    )
    .await?;
    Ok(Moved {
        version: target,
        previous,
        changed: true,
        generation,
    })
}

/// Unregister a version unless it is current or queued/running jobs pin it. On PostgreSQL the
/// version's row is locked before the jobs that pin it are counted: an insert of a job pinned
/// to it holds the row `FOR KEY SHARE` until it commits, so the count sees every such job, and
/// an insert after this delete commits finds the version gone.
pub(crate) async fn delete_version(
    s: &mut impl Sql,
    task: &str,
    v: u32,
    who: (&str, &str),
    now: i64,
) -> StoreResult<DeleteOutcome> {
    lock(s).await?;
    let current = current(s, task).await?;
    let row = version(s, task, v, true).await?;
    rules::may_unregister(task, v, current, row)?;
    let pinned = s
        .rows(
            "SELECT id, COUNT(*) OVER () AS pinned FROM jobs WHERE task_name = $1 AND task_version = $2 AND status IN ('queued', 'running') ORDER BY seq LIMIT 10",
            params![task, v],
        )
        .await?;
    if let Some(first) = pinned.first() {
        let jobs = pinned
            .iter()
            .map(|r| r.get("id"))
            .collect::<StoreResult<Vec<String>>>()?;
        return Ok(DeleteOutcome::Pinned {
            count: first.get("pinned")?,
            jobs,
        });
    }
    s.exec(
        "UPDATE task_versions SET deleted_ms = $3 WHERE task = $1 AND version = $2",
        params![task, v, now],
    )
    .await?;
    record_change(s, task, Action::DeleteVersion, who, (Some(v), None), now).await?;
    Ok(DeleteOutcome::Deleted)
}

/// Refuse a job pinned to a version that is not registered: called inside the insert's
/// transaction.
pub(crate) async fn check_pin(s: &mut impl Sql, pin: &TaskPin) -> StoreResult<()> {
    match version(s, &pin.task, pin.version, false).await? {
        Some(VersionRow::Registered) => Ok(()),
        _ => Err(rules::gone(&pin.task, pin.version).into()),
    }
}

/// The version and component a reference names (`None`: `current`).
pub(crate) async fn resolve(
    s: &mut impl Sql,
    task: &str,
    v: Option<u32>,
) -> StoreResult<ResolvedTask> {
    let generation = generation(s).await?;
    let row = match v {
        None => {
            s.row(
                "SELECT v.version, v.component, v.deleted_ms, v.max_concurrency FROM tasks t JOIN task_versions v ON v.task = t.name AND v.version = t.current_version WHERE t.name = $1",
                params![task],
            )
            .await?
        }
        Some(v) => {
            s.row(
                "SELECT version, component, deleted_ms, max_concurrency FROM task_versions WHERE task = $1 AND version = $2",
                params![task, v],
            )
            .await?
        }
    };
    let found = match &row {
        Some(r) => Some((r.get("version")?, version_row(r)?)),
        None => None,
    };
    let version = rules::resolved(task, v, found)?;
    let row = row.expect("a resolved version has its row");
    Ok(ResolvedTask {
        task: task.to_string(),
        version,
        component: row.get("component")?,
        generation,
        max_concurrency: row.get("max_concurrency")?,
    })
}

/// Record what `node` resolves `task`'s `current` to (never an older generation over a newer).
pub(crate) async fn report_resolution(
    s: &mut impl Sql,
    node: &str,
    task: &str,
    version: u32,
    generation: i64,
    now: i64,
) -> StoreResult<()> {
    s.exec(
        "INSERT INTO task_resolutions (node, task, version, generation, at_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (node, task) DO UPDATE SET version = excluded.version, generation = excluded.generation, at_ms = excluded.at_ms
         WHERE task_resolutions.generation <= excluded.generation",
        params![node, task, version, generation, now],
    )
    .await?;
    Ok(())
}

/// Tasks by name, after the name `after` (a page's cursor), at most `limit`.
pub(crate) async fn list(
    s: &mut impl Sql,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<TaskSummary>> {
    s.rows(
        "SELECT t.name, t.current_version, t.updated_ms,
                (SELECT COUNT(*) FROM task_versions v WHERE v.task = t.name AND v.deleted_ms IS NULL) AS versions
         FROM tasks t WHERE t.name > $1 ORDER BY t.name LIMIT $2",
        params![after.unwrap_or(""), limit],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(TaskSummary {
            name: r.get("name")?,
            current: r.get("current_version")?,
            updated_ms: r.get("updated_ms")?,
            versions: r.get("versions")?,
        })
    })
    .collect()
}

/// Jobs pinned to each version of `task`, by status.
async fn job_counts(
    s: &mut impl Sql,
    task: &str,
) -> StoreResult<std::collections::HashMap<u32, JobCounts>> {
    let rows = s
        .rows(
            "SELECT task_version, status, COUNT(*) AS n FROM jobs WHERE task_name = $1 GROUP BY task_version, status",
            params![task],
        )
        .await?;
    let mut counts: std::collections::HashMap<u32, JobCounts> = Default::default();
    for r in rows {
        let n: u64 = r.get("n")?;
        let c = counts.entry(r.get("task_version")?).or_default();
        match JobStatus::parse(&r.get::<String>("status")?) {
            Some(JobStatus::Queued) => c.queued = n,
            Some(JobStatus::Running) => c.running = n,
            Some(JobStatus::Succeeded) => c.succeeded = n,
            Some(JobStatus::Failed) => c.failed = n,
            _ => c.cancelled = n,
        }
    }
    Ok(counts)
}

/// One task with its newest `limit` versions and audit entries (each oldest first) and its
/// node resolutions.
pub(crate) async fn get(s: &mut impl Sql, task: &str, limit: u32) -> StoreResult<Option<Task>> {
    let Some(row) = s
        .row(
            "SELECT current_version, created_ms, updated_ms FROM tasks WHERE name = $1",
            params![task],
        )
        .await?
    else {
        return Ok(None);
    };
    let mut counts = job_counts(s, task).await?;
    let mut versions = s
        .rows(
            "SELECT version, component, created_ms, deployed_by, deleted_ms, report, max_concurrency FROM task_versions WHERE task = $1 ORDER BY version DESC LIMIT $2",
            params![task, limit],
        )
        .await?
        .iter()
        .map(|r| {
            let version = r.get("version")?;
            Ok(TaskVersion {
                version,
                component: r.get("component")?,
                created_ms: r.get("created_ms")?,
                deployed_by: r.get("deployed_by")?,
                deleted_ms: r.get("deleted_ms")?,
                max_concurrency: r.get("max_concurrency")?,
                imports: TaskVersion::import_summary(&r.get::<String>("report")?),
                jobs: counts.remove(&version).unwrap_or_default(),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let nodes = s
        .rows(
            "SELECT node, version, generation, at_ms FROM task_resolutions WHERE task = $1 ORDER BY node",
            params![task],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(NodeResolution {
                node: r.get("node")?,
                version: r.get("version")?,
                generation: r.get("generation")?,
                at_ms: r.get("at_ms")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    versions.reverse();
    let mut audit = s
        .rows(
            "SELECT at_ms, action, actor, request_id, old_version, new_version FROM task_audit WHERE task = $1 ORDER BY id DESC LIMIT $2",
            params![task, limit],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                at_ms: r.get("at_ms")?,
                action: r.get("action")?,
                actor: r.get("actor")?,
                request_id: r.get("request_id")?,
                old_version: r.get("old_version")?,
                new_version: r.get("new_version")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    audit.reverse();
    Ok(Some(Task {
        name: task.to_string(),
        current: row.get("current_version")?,
        generation: generation(s).await?,
        created_ms: row.get("created_ms")?,
        updated_ms: row.get("updated_ms")?,
        versions,
        nodes,
        audit,
    }))
}
