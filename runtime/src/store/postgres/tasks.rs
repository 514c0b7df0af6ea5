//! Deployed tasks in PostgreSQL. The writes run inside their caller's transaction and first
//! lock the one `task_generation` row, so deploys, rollbacks and deletes are serialised across
//! every node: a deploy's version row, its `current` move, the generation bump, the audit row
//! and the `driftless_tasks` notification commit together or not at all.

use super::{GenericClient, col, exec, int, notify, one, opt, rows, uint};
use crate::store::*;
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

/// The task generation now.
pub(super) async fn generation(c: &impl GenericClient) -> StoreResult<i64> {
    col(
        &one(
            c,
            "SELECT generation FROM task_generation WHERE id = 1",
            &[],
        )
        .await?,
        0,
    )
}

/// Take the task lock (the generation row); returns the generation.
async fn lock(tx: &Transaction<'_>) -> StoreResult<i64> {
    col(
        &one(
            tx,
            "SELECT generation FROM task_generation WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?,
        0,
    )
}

async fn bump_generation(tx: &Transaction<'_>) -> StoreResult<i64> {
    col(
        &one(
            tx,
            "UPDATE task_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation",
            &[],
        )
        .await?,
        0,
    )
}

async fn current(c: &impl GenericClient, task: &str) -> StoreResult<Option<u32>> {
    opt(
        c,
        "SELECT current_version FROM tasks WHERE name = $1",
        &[&task],
    )
    .await?
    .map(|r| col(&r, 0).map(uint))
    .transpose()
}

fn no_task(task: &str) -> StoreError {
    StoreError::NotFound(format!("task {task}"))
}

async fn audit(
    tx: &Transaction<'_>,
    task: &str,
    now: i64,
    action: &str,
    who: (&str, &str),
    old: Option<u32>,
    new: Option<u32>,
) -> StoreResult<()> {
    exec(
        tx,
        "INSERT INTO task_audit (task, at_ms, action, actor, request_id, old_version, new_version) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[&task, &now, &action, &who.0, &who.1, &old.map(int), &new.map(int)],
    )
    .await?;
    Ok(())
}

/// Tell listeners on `driftless_tasks` that `task`'s `current` moved (delivered at commit).
async fn notify_moved(tx: &Transaction<'_>, task: &str) -> StoreResult<()> {
    exec(
        tx,
        "SELECT pg_notify($1, $2)",
        &[&notify::TASKS_CHANNEL, &task],
    )
    .await?;
    Ok(())
}

/// The `deleted_ms` of a version: `None` when there is no such version.
async fn deleted_ms(
    tx: &Transaction<'_>,
    task: &str,
    version: u32,
) -> StoreResult<Option<Option<i64>>> {
    opt(
        tx,
        "SELECT deleted_ms FROM task_versions WHERE task = $1 AND version = $2",
        &[&task, &int(version)],
    )
    .await?
    .map(|r| col(&r, 0))
    .transpose()
}

/// Record the next version and make it current; identical bytes return the existing version.
pub(super) async fn deploy(tx: &Transaction<'_>, v: &NewTaskVersion) -> StoreResult<Moved> {
    let generation = lock(tx).await?;
    let previous = current(tx, &v.task).await?;
    let same = opt(
        tx,
        "SELECT version FROM task_versions WHERE task = $1 AND component = $2 AND deleted_ms IS NULL ORDER BY version DESC LIMIT 1",
        &[&v.task, &v.component],
    )
    .await?;
    if let Some(same) = same {
        return Ok(Moved {
            version: uint(col(&same, 0)?),
            previous,
            changed: false,
            generation,
        });
    }
    let version: i32 = col(
        &one(
            tx,
            "SELECT COALESCE(MAX(version), 0) + 1 FROM task_versions WHERE task = $1",
            &[&v.task],
        )
        .await?,
        0,
    )?;
    let report: &str = &v.report;
    exec(
        tx,
        "INSERT INTO task_versions (task, version, component, report, created_ms, deployed_by) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&v.task, &version, &v.component, &report, &v.now_ms, &v.actor],
    )
    .await?;
    crate::fault::point("deploy-inside-transaction");
    exec(
        tx,
        "INSERT INTO tasks (name, current_version, created_ms, updated_ms) VALUES ($1, $2, $3, $3)
         ON CONFLICT (name) DO UPDATE SET current_version = EXCLUDED.current_version, updated_ms = EXCLUDED.updated_ms",
        &[&v.task, &version, &v.now_ms],
    )
    .await?;
    let generation = bump_generation(tx).await?;
    let version = uint(version);
    audit(
        tx,
        &v.task,
        v.now_ms,
        "deploy",
        (&v.actor, &v.request_id),
        previous,
        Some(version),
    )
    .await?;
    notify_moved(tx, &v.task).await?;
    Ok(Moved {
        version,
        previous,
        changed: true,
        generation,
    })
}

/// Make `to` (default: the newest registered version below `current`) current.
pub(super) async fn rollback(
    tx: &Transaction<'_>,
    task: &str,
    to: Option<u32>,
    who: (&str, &str),
    now: i64,
) -> StoreResult<Moved> {
    lock(tx).await?;
    let previous = current(tx, task).await?.ok_or_else(|| no_task(task))?;
    let target = match to {
        Some(v) => match deleted_ms(tx, task, v).await? {
            None => return Err(StoreError::NotFound(format!("version {v} of task {task}"))),
            Some(Some(_)) => {
                return Err(StoreError::Conflict(format!(
                    "version {v} of task {task} was unregistered; deploy its component again to get a new version"
                )));
            }
            Some(None) if v == previous => {
                return Err(StoreError::Conflict(format!(
                    "version {v} of task {task} is already current; nothing to roll back"
                )));
            }
            Some(None) => v,
        },
        None => col::<Option<i32>>(
            &one(
                tx,
                "SELECT MAX(version) FROM task_versions WHERE task = $1 AND version < $2 AND deleted_ms IS NULL",
                &[&task, &int(previous)],
            )
            .await?,
            0,
        )?
        .map(uint)
        .ok_or_else(|| {
            StoreError::Conflict(format!(
                "task {task} has no registered version below its current {previous}; name one with `to`"
            ))
        })?,
    };
    exec(
        tx,
        "UPDATE tasks SET current_version = $2, updated_ms = $3 WHERE name = $1",
        &[&task, &int(target), &now],
    )
    .await?;
    let generation = bump_generation(tx).await?;
    audit(tx, task, now, "rollback", who, Some(previous), Some(target)).await?;
    notify_moved(tx, task).await?;
    Ok(Moved {
        version: target,
        previous: Some(previous),
        changed: true,
        generation,
    })
}

/// Unregister a version unless it is current or queued/running jobs pin it.
pub(super) async fn delete_version(
    tx: &Transaction<'_>,
    task: &str,
    version: u32,
    who: (&str, &str),
    now: i64,
) -> StoreResult<DeleteOutcome> {
    lock(tx).await?;
    let current = current(tx, task).await?.ok_or_else(|| no_task(task))?;
    // Lock the version's row before counting the jobs that pin it: an insert of a job pinned
    // to it holds the row `FOR KEY SHARE` until it commits, so the count below sees every such
    // job, and an insert after this delete commits finds the version gone.
    let locked = opt(
        tx,
        "SELECT deleted_ms FROM task_versions WHERE task = $1 AND version = $2 FOR UPDATE",
        &[&task, &int(version)],
    )
    .await?
    .map(|r| col::<Option<i64>>(&r, 0))
    .transpose()?;
    match locked {
        None | Some(Some(_)) => {
            return Err(StoreError::NotFound(format!(
                "version {version} of task {task}"
            )));
        }
        Some(None) if version == current => {
            return Err(StoreError::Conflict(format!(
                "version {version} is the current version of task {task}; deploy or roll back to another version first"
            )));
        }
        Some(None) => {}
    }
    let pin = format!("{task}@{version}");
    let pinned = rows(
        tx,
        "SELECT id, COUNT(*) OVER () FROM jobs WHERE task = $1 AND status IN ('queued', 'running') ORDER BY seq LIMIT 10",
        &[&pin],
    )
    .await?;
    if let Some(first) = pinned.first() {
        let count: i64 = col(first, 1)?;
        let jobs = pinned
            .iter()
            .map(|r| col(r, 0))
            .collect::<StoreResult<Vec<String>>>()?;
        return Ok(DeleteOutcome::Pinned {
            count: count as u64,
            jobs,
        });
    }
    exec(
        tx,
        "UPDATE task_versions SET deleted_ms = $3 WHERE task = $1 AND version = $2",
        &[&task, &int(version), &now],
    )
    .await?;
    audit(tx, task, now, "delete-version", who, Some(version), None).await?;
    Ok(DeleteOutcome::Deleted)
}

/// The version and component a reference names (`None`: `current`).
pub(super) async fn resolve(
    c: &impl GenericClient,
    task: &str,
    version: Option<u32>,
) -> StoreResult<ResolvedTask> {
    let found = async {
        match version {
            None => {
                opt(
                    c,
                    "SELECT v.version, v.component, v.deleted_ms FROM tasks t JOIN task_versions v ON v.task = t.name AND v.version = t.current_version WHERE t.name = $1",
                    &[&task],
                )
                .await
            }
            Some(v) => {
                opt(
                    c,
                    "SELECT version, component, deleted_ms FROM task_versions WHERE task = $1 AND version = $2",
                    &[&task, &int(v)],
                )
                .await
            }
        }
    };
    let (generation, row) = tokio::try_join!(generation(c), found)?;
    let Some(row) = row else {
        return Err(match version {
            None => no_task(task),
            Some(v) => StoreError::NotFound(format!("version {v} of task {task}")),
        });
    };
    let found = uint(col(&row, 0)?);
    if col::<Option<i64>>(&row, 2)?.is_some() {
        return Err(StoreError::TaskVersionGone {
            task: task.to_string(),
            version: found,
        });
    }
    Ok(ResolvedTask {
        task: task.to_string(),
        version: found,
        component: col(&row, 1)?,
        generation,
    })
}

/// Record what `node` resolves `task`'s `current` to (an older report never wins).
pub(super) async fn report_resolution(
    c: &impl GenericClient,
    node: &str,
    task: &str,
    version: u32,
    generation: i64,
    now: i64,
) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO task_resolutions (node, task, version, generation, at_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (node, task) DO UPDATE SET version = EXCLUDED.version, generation = EXCLUDED.generation, at_ms = EXCLUDED.at_ms
         WHERE task_resolutions.generation <= EXCLUDED.generation",
        &[&node, &task, &int(version), &generation, &now],
    )
    .await?;
    Ok(())
}

/// Every task, by name.
pub(super) async fn list(c: &impl GenericClient) -> StoreResult<Vec<TaskSummary>> {
    rows(
        c,
        "SELECT t.name, t.current_version, t.updated_ms,
                (SELECT COUNT(*) FROM task_versions v WHERE v.task = t.name AND v.deleted_ms IS NULL)
         FROM tasks t ORDER BY t.name",
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(TaskSummary {
            name: col(r, 0)?,
            current: uint(col(r, 1)?),
            updated_ms: col(r, 2)?,
            versions: col::<i64>(r, 3)? as u32,
        })
    })
    .collect()
}

/// One task with everything about it: its queries go out together (one round trip).
pub(super) async fn get(c: &impl GenericClient, task: &str) -> StoreResult<Option<Task>> {
    let (pins_from, pins_to) = (format!("{task}@"), format!("{task}A"));
    let by_task: &[&(dyn ToSql + Sync)] = &[&task];
    let pins: &[&(dyn ToSql + Sync)] = &[&pins_from, &pins_to];
    let (head, counts, versions, nodes, audit, generation) = tokio::try_join!(
        opt(
            c,
            "SELECT current_version, created_ms, updated_ms FROM tasks WHERE name = $1",
            by_task,
        ),
        // `task` sorts by bytes (COLLATE "C"): this range is every `<task>@<version>` pin.
        rows(
            c,
            "SELECT task, status, COUNT(*) FROM jobs WHERE task >= $1 AND task < $2 GROUP BY task, status",
            pins,
        ),
        rows(
            c,
            "SELECT version, component, created_ms, deployed_by, deleted_ms, report FROM task_versions WHERE task = $1 ORDER BY version",
            by_task,
        ),
        rows(
            c,
            "SELECT node, version, generation, at_ms FROM task_resolutions WHERE task = $1 ORDER BY node",
            by_task,
        ),
        rows(
            c,
            "SELECT at_ms, action, actor, request_id, old_version, new_version FROM task_audit WHERE task = $1 ORDER BY id",
            by_task,
        ),
        generation(c),
    )?;
    let Some(head) = head else { return Ok(None) };
    let mut by_version: std::collections::HashMap<u32, JobCounts> = Default::default();
    for r in &counts {
        let pin: String = col(r, 0)?;
        let Some(v) = pin
            .strip_prefix(&pins_from)
            .and_then(|v| v.parse::<u32>().ok())
        else {
            continue;
        };
        let status: String = col(r, 1)?;
        let n = col::<i64>(r, 2)? as u64;
        let c = by_version.entry(v).or_default();
        match status.as_str() {
            "queued" => c.queued = n,
            "running" => c.running = n,
            "succeeded" => c.succeeded = n,
            "failed" => c.failed = n,
            _ => c.cancelled = n,
        }
    }
    let versions = versions
        .iter()
        .map(|r| {
            let version = uint(col(r, 0)?);
            Ok(TaskVersion {
                version,
                component: col(r, 1)?,
                created_ms: col(r, 2)?,
                deployed_by: col(r, 3)?,
                deleted_ms: col(r, 4)?,
                imports: TaskVersion::import_summary(col(r, 5)?),
                jobs: by_version.remove(&version).unwrap_or_default(),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let nodes = nodes
        .iter()
        .map(|r| {
            Ok(NodeResolution {
                node: col(r, 0)?,
                version: uint(col(r, 1)?),
                generation: col(r, 2)?,
                at_ms: col(r, 3)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let audit = audit
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                at_ms: col(r, 0)?,
                action: col(r, 1)?,
                actor: col(r, 2)?,
                request_id: col(r, 3)?,
                old_version: col::<Option<i32>>(r, 4)?.map(uint),
                new_version: col::<Option<i32>>(r, 5)?.map(uint),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(Task {
        name: task.to_string(),
        current: uint(col(&head, 0)?),
        generation,
        created_ms: col(&head, 1)?,
        updated_ms: col(&head, 2)?,
        versions,
        nodes,
        audit,
    }))
}
