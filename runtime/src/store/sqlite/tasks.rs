//! Deployed tasks in SQLite: each function runs inside the writer's (or a reader's)
//! transaction, so a deploy's version row, its `current` move, the generation bump and the
//! audit row commit together or not at all.

use super::{Cached, backend};
use crate::store::*;
use rusqlite::{Connection, OptionalExtension, params};

/// The task generation now.
pub(super) fn generation(c: &Connection) -> StoreResult<i64> {
    c.query_row_cached(
        "SELECT generation FROM task_generation WHERE id = 1",
        [],
        |r| r.get(0),
    )
    .map_err(backend)
}

fn bump_generation(c: &Connection) -> StoreResult<i64> {
    c.query_row_cached(
        "UPDATE task_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation",
        [],
        |r| r.get(0),
    )
    .map_err(backend)
}

fn current(c: &Connection, task: &str) -> StoreResult<Option<u32>> {
    c.query_row_cached(
        "SELECT current_version FROM tasks WHERE name = ?1",
        [task],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)
}

fn no_task(task: &str) -> StoreError {
    StoreError::NotFound(format!("task {task}"))
}

fn audit(
    c: &Connection,
    task: &str,
    now: i64,
    action: &str,
    who: (&str, &str),
    old: Option<u32>,
    new: Option<u32>,
) -> StoreResult<()> {
    c.execute_cached(
        "INSERT INTO task_audit (task, at_ms, action, actor, request_id, old_version, new_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![task, now, action, who.0, who.1, old, new],
    )
    .map_err(backend)?;
    Ok(())
}

/// Record the next version and make it current; identical bytes return the existing version.
pub(super) fn deploy(c: &Connection, v: &NewTaskVersion) -> StoreResult<Moved> {
    let previous = current(c, &v.task)?;
    let same: Option<u32> = c
        .query_row_cached(
            "SELECT version FROM task_versions WHERE task = ?1 AND component = ?2 AND deleted_ms IS NULL ORDER BY version DESC LIMIT 1",
            params![v.task, v.component],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    if let Some(version) = same {
        return Ok(Moved {
            version,
            previous,
            changed: false,
            generation: generation(c)?,
        });
    }
    let version: u32 = c
        .query_row_cached(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM task_versions WHERE task = ?1",
            [&v.task],
            |r| r.get(0),
        )
        .map_err(backend)?;
    c.execute_cached(
        "INSERT INTO task_versions (task, version, component, report, created_ms, deployed_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![v.task, version, v.component, &*v.report, v.now_ms, v.actor],
    )
    .map_err(backend)?;
    crate::fault::point("deploy-inside-transaction");
    c.execute_cached(
        "INSERT INTO tasks (name, current_version, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (name) DO UPDATE SET current_version = ?2, updated_ms = ?3",
        params![v.task, version, v.now_ms],
    )
    .map_err(backend)?;
    let generation = bump_generation(c)?;
    audit(
        c,
        &v.task,
        v.now_ms,
        "deploy",
        (&v.actor, &v.request_id),
        previous,
        Some(version),
    )?;
    Ok(Moved {
        version,
        previous,
        changed: true,
        generation,
    })
}

/// Make `to` (default: the newest registered version below `current`) current.
pub(super) fn rollback(
    c: &Connection,
    task: &str,
    to: Option<u32>,
    who: (&str, &str),
    now: i64,
) -> StoreResult<Moved> {
    let previous = current(c, task)?.ok_or_else(|| no_task(task))?;
    let target = match to {
        Some(v) => {
            let deleted: Option<Option<i64>> = c
                .query_row_cached(
                    "SELECT deleted_ms FROM task_versions WHERE task = ?1 AND version = ?2",
                    params![task, v],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            match deleted {
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
            }
        }
        None => c
            .query_row_cached(
                "SELECT MAX(version) FROM task_versions WHERE task = ?1 AND version < ?2 AND deleted_ms IS NULL",
                params![task, previous],
                |r| r.get::<_, Option<u32>>(0),
            )
            .map_err(backend)?
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "task {task} has no registered version below its current {previous}; name one with `to`"
                ))
            })?,
    };
    c.execute_cached(
        "UPDATE tasks SET current_version = ?2, updated_ms = ?3 WHERE name = ?1",
        params![task, target, now],
    )
    .map_err(backend)?;
    let generation = bump_generation(c)?;
    audit(c, task, now, "rollback", who, Some(previous), Some(target))?;
    Ok(Moved {
        version: target,
        previous: Some(previous),
        changed: true,
        generation,
    })
}

/// Unregister a version unless it is current or queued/running jobs pin it.
pub(super) fn delete_version(
    c: &Connection,
    task: &str,
    version: u32,
    who: (&str, &str),
    now: i64,
) -> StoreResult<DeleteOutcome> {
    let current = current(c, task)?.ok_or_else(|| no_task(task))?;
    let deleted: Option<Option<i64>> = c
        .query_row_cached(
            "SELECT deleted_ms FROM task_versions WHERE task = ?1 AND version = ?2",
            params![task, version],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    match deleted {
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
    let count: u64 = c
        .query_row_cached(
            "SELECT COUNT(*) FROM jobs WHERE task = ?1 AND status IN ('queued', 'running')",
            [&pin],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if count > 0 {
        let mut stmt = c
            .prepare_cached("SELECT id FROM jobs WHERE task = ?1 AND status IN ('queued', 'running') ORDER BY seq LIMIT 10")
            .map_err(backend)?;
        let jobs = stmt
            .query_map([&pin], |r| r.get(0))
            .map_err(backend)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(backend)?;
        return Ok(DeleteOutcome::Pinned { count, jobs });
    }
    c.execute_cached(
        "UPDATE task_versions SET deleted_ms = ?3 WHERE task = ?1 AND version = ?2",
        params![task, version, now],
    )
    .map_err(backend)?;
    audit(c, task, now, "delete-version", who, Some(version), None)?;
    Ok(DeleteOutcome::Deleted)
}

/// Refuse a job pinned (`name@version`) to a version that is not registered (never, or no
/// longer): called inside the insert's transaction.
pub(super) fn check_pin(c: &Connection, pin: &str) -> StoreResult<()> {
    let (task, version) = parse_pin(pin)?;
    let registered = c
        .query_row_cached(
            "SELECT 1 FROM task_versions WHERE task = ?1 AND version = ?2 AND deleted_ms IS NULL",
            params![task, version],
            |_| Ok(()),
        )
        .optional()
        .map_err(backend)?;
    match registered {
        Some(()) => Ok(()),
        None => Err(StoreError::TaskVersionGone {
            task: task.to_string(),
            version,
        }),
    }
}

/// The version and component a reference names (`None`: `current`).
pub(super) fn resolve(
    c: &Connection,
    task: &str,
    version: Option<u32>,
) -> StoreResult<ResolvedTask> {
    let generation = generation(c)?;
    let row: Option<(u32, String, Option<i64>)> = match version {
        None => c
            .query_row_cached(
                "SELECT v.version, v.component, v.deleted_ms FROM tasks t JOIN task_versions v ON v.task = t.name AND v.version = t.current_version WHERE t.name = ?1",
                [task],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(backend)?,
        Some(v) => c
            .query_row_cached(
                "SELECT version, component, deleted_ms FROM task_versions WHERE task = ?1 AND version = ?2",
                params![task, v],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(backend)?,
    };
    match row {
        None if version.is_none() => Err(no_task(task)),
        None => Err(StoreError::NotFound(format!(
            "version {} of task {task}",
            version.unwrap_or_default()
        ))),
        Some((v, _, Some(_))) => Err(StoreError::TaskVersionGone {
            task: task.to_string(),
            version: v,
        }),
        Some((version, component, None)) => Ok(ResolvedTask {
            task: task.to_string(),
            version,
            component,
            generation,
        }),
    }
}

/// Record what `node` resolves `task`'s `current` to.
pub(super) fn report_resolution(
    c: &Connection,
    node: &str,
    task: &str,
    version: u32,
    generation: i64,
    now: i64,
) -> StoreResult<()> {
    c.execute_cached(
        "INSERT INTO task_resolutions (node, task, version, generation, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (node, task) DO UPDATE SET version = ?3, generation = ?4, at_ms = ?5 WHERE generation <= ?4",
        params![node, task, version, generation, now],
    )
    .map_err(backend)?;
    Ok(())
}

/// Every task, by name.
pub(super) fn list(c: &Connection) -> StoreResult<Vec<TaskSummary>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT t.name, t.current_version, t.updated_ms,
                    (SELECT COUNT(*) FROM task_versions v WHERE v.task = t.name AND v.deleted_ms IS NULL)
             FROM tasks t ORDER BY t.name",
        )
        .map_err(backend)?;
    stmt.query_map([], |r| {
        Ok(TaskSummary {
            name: r.get(0)?,
            current: r.get(1)?,
            updated_ms: r.get(2)?,
            versions: r.get(3)?,
        })
    })
    .map_err(backend)?
    .collect::<rusqlite::Result<_>>()
    .map_err(backend)
}

/// One task with everything about it.
pub(super) fn get(c: &Connection, task: &str) -> StoreResult<Option<Task>> {
    let row: Option<(u32, i64, i64)> = c
        .query_row_cached(
            "SELECT current_version, created_ms, updated_ms FROM tasks WHERE name = ?1",
            [task],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(backend)?;
    let Some((current, created_ms, updated_ms)) = row else {
        return Ok(None);
    };
    let mut counts: std::collections::HashMap<u32, JobCounts> = Default::default();
    let mut stmt = c
        .prepare_cached("SELECT task, status, COUNT(*) FROM jobs WHERE task >= ?1 AND task < ?2 GROUP BY task, status")
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![format!("{task}@"), format!("{task}A")], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u64>(2)?,
            ))
        })
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    for (pin, status, n) in rows {
        let Some(v) = pin
            .strip_prefix(&format!("{task}@"))
            .and_then(|v| v.parse().ok())
        else {
            continue;
        };
        let c = counts.entry(v).or_default();
        match status.as_str() {
            "queued" => c.queued = n,
            "running" => c.running = n,
            "succeeded" => c.succeeded = n,
            "failed" => c.failed = n,
            _ => c.cancelled = n,
        }
    }
    let mut stmt = c
        .prepare_cached("SELECT version, component, created_ms, deployed_by, deleted_ms, report FROM task_versions WHERE task = ?1 ORDER BY version")
        .map_err(backend)?;
    let versions = stmt
        .query_map([task], |r| {
            let version: u32 = r.get(0)?;
            Ok(TaskVersion {
                version,
                component: r.get(1)?,
                created_ms: r.get(2)?,
                deployed_by: r.get(3)?,
                deleted_ms: r.get(4)?,
                imports: TaskVersion::import_summary(&r.get::<_, String>(5)?),
                jobs: counts.remove(&version).unwrap_or_default(),
            })
        })
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    let mut stmt = c
        .prepare_cached("SELECT node, version, generation, at_ms FROM task_resolutions WHERE task = ?1 ORDER BY node")
        .map_err(backend)?;
    let nodes = stmt
        .query_map([task], |r| {
            Ok(NodeResolution {
                node: r.get(0)?,
                version: r.get(1)?,
                generation: r.get(2)?,
                at_ms: r.get(3)?,
            })
        })
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    let mut stmt = c
        .prepare_cached("SELECT at_ms, action, actor, request_id, old_version, new_version FROM task_audit WHERE task = ?1 ORDER BY id")
        .map_err(backend)?;
    let audit = stmt
        .query_map([task], |r| {
            Ok(AuditEntry {
                at_ms: r.get(0)?,
                action: r.get(1)?,
                actor: r.get(2)?,
                request_id: r.get(3)?,
                old_version: r.get(4)?,
                new_version: r.get(5)?,
            })
        })
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    Ok(Some(Task {
        name: task.to_string(),
        current,
        generation: generation(c)?,
        created_ms,
        updated_ms,
        versions,
        nodes,
        audit,
    }))
}
