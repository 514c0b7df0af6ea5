//! `/v1/tasks`: deploy immutable task versions, roll back, unregister, look up.

use super::error::{ApiError, Path, Query};
use super::{AppState, jobs, page, submission, view};
use crate::admission::{self, Component, Upload};
use crate::node::resolver::{TaskRef, check_name};
use crate::store::{DeleteOutcome, NewTaskVersion, now_ms};
use crate::tokens::Caller;
use crate::wire::{
    DeleteQuery, DeployAnswer, DeployQuery, ErrorCode, LimitQuery, PageQuery, RollbackAnswer,
    RollbackSpec, Task, TaskList, ThisNode, UnregisterAnswer,
};
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Longest a delete may wait for a version's jobs to drain, in seconds.
const MAX_DRAIN_WAIT_SECS: u64 = 600;

/// Who asked, for the audit trail: the token's name; in open mode the `x-driftless-actor`
/// header (the CLI sends `$USER@host`), else `anonymous`.
pub(super) fn actor(caller: &Caller, headers: &HeaderMap) -> String {
    if let Caller::Token(grant) = caller {
        return grant.name.clone();
    }
    headers
        .get("x-driftless-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(128).collect())
        .unwrap_or_else(|| "anonymous".into())
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

fn name_ok(name: &str) -> Result<(), ApiError> {
    check_name(name).map_err(|e| ApiError::new(ErrorCode::BadTaskName, e.0))
}

/// After `current` moved: drop this node's cached resolutions and resolve the task again, so
/// this node reports the new version at once (other nodes follow within one refresh).
async fn moved_current(state: &AppState, name: &str, generation: i64) {
    state.node.invalidate_resolutions(generation).await;
    let current = TaskRef {
        name: name.to_string(),
        version: None,
    };
    if let Err(e) = state.node.resolve_task(&current).await {
        tracing::warn!(task = %name, error = %e, "could not resolve a task right after changing it");
    }
}

/// `PUT /v1/tasks/{name}`: deploy the body (a component) as the task's next version. It goes
/// through admission first, as a job would: a component no node of the cluster can run is
/// refused (422 `rejected`, with the report) and changes nothing. Bytes identical to an
/// existing version return that version and change nothing.
pub async fn deploy(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<DeployQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    name_ok(&name)?;
    if let Some(n) = query.max_concurrency
        && (n == 0 || n > submission::MAX_CONCURRENCY_LIMIT)
    {
        return Err(ApiError::bad_request(format!(
            "max_concurrency must be between 1 and {}; it is {n} (leave it out for no limit)",
            submission::MAX_CONCURRENCY_LIMIT
        )));
    }
    let upload = Upload::new(jobs::read_body(&state, body).await?).await;
    let admitted = admission::admit(&state.node, Component::Upload(&upload), &[]).await?;
    crate::fault::point("deploy-after-blob");
    let deployed = state
        .node
        .store()
        .deploy_task(NewTaskVersion {
            task: name.clone(),
            component: admitted.hash.clone(),
            report: admitted.report_json.clone(),
            actor: actor(&caller, &headers),
            request_id: request_id(&headers),
            now_ms: now_ms(),
            max_concurrency: query.max_concurrency,
        })
        .await?;
    if deployed.changed {
        moved_current(&state, &name, deployed.generation).await;
        tracing::info!(task = %name, version = deployed.version, previous = ?deployed.previous, "task deployed");
    }
    let status = if deployed.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(DeployAnswer {
            task: name,
            version: deployed.version,
            previous: deployed.previous,
            created: deployed.changed,
            component: admitted.hash,
            report: view::report(&admitted.report_json)?,
        }),
    )
        .into_response())
}

/// `POST /v1/tasks/{name}/rollback`.
pub async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<RollbackAnswer>, ApiError> {
    name_ok(&name)?;
    let spec: RollbackSpec = if body.is_empty() {
        RollbackSpec::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "the rollback body is not valid ({e}); send nothing, or {{\"to\": VERSION}}"
            ))
        })?
    };
    let moved = state
        .node
        .store()
        .rollback_task(
            &name,
            spec.to,
            &actor(&caller, &headers),
            &request_id(&headers),
            now_ms(),
        )
        .await?;
    moved_current(&state, &name, moved.generation).await;
    tracing::info!(task = %name, version = moved.version, previous = ?moved.previous, "task rolled back");
    Ok(Json(RollbackAnswer {
        task: name,
        version: moved.version,
        previous: moved.previous,
    }))
}

/// `DELETE /v1/tasks/{name}/versions/{v}`: unregister a version; refused (409) while queued
/// or running jobs pin it, unless they finish within `?wait=SECONDS`.
pub async fn delete_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, u32)>,
    Query(q): Query<DeleteQuery>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
) -> Result<Json<UnregisterAnswer>, ApiError> {
    name_ok(&name)?;
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(MAX_DRAIN_WAIT_SECS));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let outcome = state
            .node
            .store()
            .delete_task_version(
                &name,
                version,
                &actor(&caller, &headers),
                &request_id(&headers),
                now_ms(),
            )
            .await?;
        match outcome {
            DeleteOutcome::Deleted => {
                return Ok(Json(UnregisterAnswer {
                    task: name,
                    version,
                    deleted: true,
                }));
            }
            DeleteOutcome::Pinned { count, jobs } => {
                if tokio::time::Instant::now() >= deadline {
                    let shown = jobs.join(", ");
                    let more = if count as usize > jobs.len() {
                        ", ..."
                    } else {
                        ""
                    };
                    return Err(ApiError::new(
                        ErrorCode::VersionInUse,
                        format!(
                            "version {version} of task {name} is pinned by {count} queued or running job(s) ({shown}{more}); wait for them (DELETE ...?wait=SECONDS), or cancel them, then delete again"
                        ),
                    ));
                }
                tokio::time::sleep(
                    Duration::from_millis(100).min(deadline - tokio::time::Instant::now()),
                )
                .await;
            }
        }
    }
}

/// `GET /v1/tasks?limit=&after=`: tasks by name.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Result<Json<TaskList>, ApiError> {
    let size = page::TASKS.size(q.limit);
    let rows = state
        .node
        .store()
        .list_tasks(q.after.as_deref(), size + 1)
        .await?;
    let (tasks, next) = page::page(rows, size, |t| t.name.clone());
    Ok(Json(TaskList {
        tasks: tasks.into_iter().map(Into::into).collect(),
        next,
    }))
}

/// `GET /v1/tasks/{name}?limit=`: the newest versions (with import summaries and job counts),
/// `current`, what every node resolves `current` to, and the newest audit entries.
pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<Task>, ApiError> {
    name_ok(&name)?;
    let size = page::TASK_VERSIONS.size(q.limit);
    let task = state.node.store().get_task(&name, size).await?.ok_or_else(|| {
        ApiError::new(ErrorCode::UnknownTask,
            format!("no task is named {name}; deploy it with PUT /v1/tasks/{name} (GET /v1/tasks lists tasks)"),
        )
    })?;
    let (generation, cached) = state.node.resolutions();
    let this_node = ThisNode {
        node: state.node.config().node.clone(),
        generation,
        resolves_current_to: cached.iter().find(|r| r.task == name).map(|r| r.version),
    };
    Ok(Json(view::task(task, this_node)))
}
