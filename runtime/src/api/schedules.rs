//! `/v1/schedules`: cron schedules that submit a job to a deployed task at every tick. A
//! schedule pins nothing: each tick's job resolves the task's `current` version when it fires.

use super::error::{ApiError, Path, Query};
use super::{AppState, body, jobs, page, submission, view};
use crate::lifecycle::schedules::Timetable;
use crate::node::resolver::{TaskRef, check_name};
use crate::store::{NewSchedule, StoreError};
use crate::wire::{
    ErrorCode, LimitQuery, PageQuery, ScheduleAnswer, ScheduleDeleted, ScheduleList,
    ScheduleRecord, ScheduleSpec,
};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

fn name_ok(name: &str) -> Result<(), ApiError> {
    check_name(name).map_err(|e| {
        ApiError::new(
            ErrorCode::BadSchedule,
            e.0.replace("is not a task name", "is not a schedule name"),
        )
    })
}

fn unknown(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownSchedule,
        format!(
            "no schedule is named {name}; GET /v1/schedules lists schedules, and PUT /v1/schedules/{name} creates one"
        ),
    )
}

/// The body of a put, read up to the spec cap and parsed.
async fn read_spec(state: &AppState, body: Body) -> Result<ScheduleSpec, ApiError> {
    let caps = jobs::caps(state);
    let drain = state.node.config().max_upload_bytes;
    let bytes = body::read_at_most(body, caps.max_spec_bytes(), drain, || {
        submission::input_too_large("the schedule's JSON body", None, &caps)
    })
    .await?;
    let spec: ScheduleSpec = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::BadSchedule,
            format!(
                "the schedule is not valid ({e}); send a JSON object such as {{\"task\": \"report\", \"cron\": \"0 */15 * * * *\", \"input\": {{\"full\": true}}, \"timezone\": \"Europe/Berlin\"}} (`input` and `timezone` are optional)"
            ),
        )
    })?;
    submission::check_input(spec.input.as_ref(), &caps)?;
    Ok(spec)
}

/// `PUT /v1/schedules/{name}`: create (201) or replace (200) a schedule. The cron pattern and
/// time zone are checked (400 `bad-schedule`, saying what is wrong with a valid example) and
/// the task must be deployed (404 `unknown-task`); nothing changes otherwise. A replaced
/// schedule ticks from now on by its new pattern.
pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    name_ok(&name)?;
    let spec = read_spec(&state, body).await?;
    if spec.task.contains('@') {
        return Err(ApiError::new(
            ErrorCode::BadSchedule,
            format!(
                "`{}` names a version; a schedule names a task alone (`task`: \"{}\"), and each tick submits to the version current at that moment: a schedule pins nothing",
                spec.task,
                spec.task.split('@').next().unwrap_or_default()
            ),
        ));
    }
    check_name(&spec.task).map_err(|e| ApiError::new(ErrorCode::BadTaskName, e.0))?;
    let store = state.node.store();
    let now = store.now();
    let table = Timetable::parse(&spec.cron, spec.timezone.as_deref(), now)
        .map_err(|e| ApiError::new(ErrorCode::BadSchedule, e.0))?;
    let current = TaskRef {
        name: spec.task.clone(),
        version: None,
    };
    state.node.resolve_task(&current).await.map_err(|e| match e {
        StoreError::NotFound(what) => ApiError::new(
            ErrorCode::UnknownTask,
            format!(
                "{what} does not exist, so the schedule was not stored; deploy it first (PUT /v1/tasks/{}), then put the schedule",
                spec.task
            ),
        ),
        other => other.into(),
    })?;
    let next_tick_ms = table.next_after(now).ok_or_else(|| {
        ApiError::new(
            ErrorCode::BadSchedule,
            format!("`{}` has no tick after now", spec.cron),
        )
    })?;
    let created = store
        .put_schedule(NewSchedule {
            name: name.clone(),
            task: spec.task.clone(),
            cron: spec.cron.trim().to_string(),
            timezone: table.timezone().to_string(),
            input: serde_json::to_vec(spec.input.as_ref().unwrap_or(&Value::Null))
                .expect("JSON encodes"),
            next_tick_ms,
            now_ms: now,
        })
        .await?;
    let stored = store
        .get_schedule(&name)
        .await?
        .ok_or_else(|| unknown(&name))?;
    tracing::info!(schedule = %name, task = %spec.task, cron = %stored.cron, timezone = %stored.timezone, created, "schedule put");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ScheduleAnswer {
            schedule: view::schedule(stored),
            created,
        }),
    )
        .into_response())
}

/// `GET /v1/schedules?limit=&after=`: schedules by name.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ScheduleList>, ApiError> {
    let size = page::SCHEDULES.size(q.limit);
    let rows = state
        .node
        .store()
        .list_schedules(q.after.as_deref(), size + 1)
        .await?;
    let (schedules, next) = page::page(rows, size, |s| s.name.clone());
    Ok(Json(ScheduleList {
        schedules: schedules.into_iter().map(view::schedule).collect(),
        next,
    }))
}

/// `GET /v1/schedules/{name}?limit=`: the schedule, its next tick, and the newest jobs it
/// made.
pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<ScheduleRecord>, ApiError> {
    name_ok(&name)?;
    let store = state.node.store();
    let schedule = store
        .get_schedule(&name)
        .await?
        .ok_or_else(|| unknown(&name))?;
    let jobs = store
        .schedule_jobs(&name, page::SCHEDULE_JOBS.size(q.limit))
        .await?;
    Ok(Json(ScheduleRecord {
        schedule: view::schedule(schedule),
        jobs: jobs.into_iter().map(Into::into).collect(),
    }))
}

/// `DELETE /v1/schedules/{name}`: no tick fires after it; the jobs it made stay.
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ScheduleDeleted>, ApiError> {
    name_ok(&name)?;
    if !state.node.store().delete_schedule(&name).await? {
        return Err(unknown(&name));
    }
    tracing::info!(schedule = %name, "schedule deleted");
    Ok(Json(ScheduleDeleted {
        name,
        deleted: true,
    }))
}
