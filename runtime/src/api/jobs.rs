//! `/v1/jobs` and `/v1/components`: submit, look up, list, wait, cancel, logs.

use super::error::{ApiError, Path, Query};
use super::submission::{self, Caps};
use super::{AppState, body, page, view};
use crate::admission::{self, AdmissionError, Admitted, Component, Upload};
use crate::engine::{Limits, Ready, WhenBusy};
use crate::metrics::Stage;
use crate::node::FinishWatch;
use crate::node::resolver::TaskRef;
use crate::store::{Job, JobFilter, JobStatus, NewJob, ResolvedTask, StoreError, Turn, now_ms};
use crate::wire::AttemptState;
use crate::wire::{
    Activity, ActivityBucket, ActivityQuery, ComponentAnswer, ErrorCode, EventList, GetQuery,
    JobList, JobSpec, JobView, LimitQuery, ListQuery, PageQuery, SubmitAnswer, SubmitQuery,
};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::time::Duration;

/// Most attempts a job may ask for.
const MAX_ATTEMPTS: u32 = 100;
/// Longest wait a client may ask for, in seconds.
const MAX_WAIT_SECS: u64 = 60;

impl SubmitQuery {
    fn take_spec(&mut self, caps: &Caps) -> Result<JobSpec, ApiError> {
        let input = match self.input.take() {
            None => None,
            Some(text) => Some(submission::query_input(&text, caps)?),
        };
        Ok(JobSpec {
            component: None,
            task: None,
            input,
            timeout_ms: self.timeout_ms,
            memory_mib: self.memory_mib,
            max_attempts: self.max_attempts,
            optional_imports: self
                .optional
                .take()
                .map(|o| {
                    o.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            priority: self.priority,
            delay_ms: self.delay_ms,
            not_before: self.not_before.take(),
            concurrency_key: self.concurrency_key.take(),
            concurrency_limit: self.concurrency_limit,
        })
    }
}

/// This node's submission caps.
pub(super) fn caps(state: &AppState) -> Caps {
    let config = state.node.config();
    Caps {
        max_upload_bytes: config.max_upload_bytes,
        max_input_bytes: config.max_input_bytes,
    }
}

fn limits(state: &AppState, spec: &JobSpec) -> Result<(Limits, u32), ApiError> {
    let mut limits = Limits::default();
    if let Some(t) = spec.timeout_ms {
        if t == 0 || t > 3_600_000 {
            return Err(ApiError::new(
                ErrorCode::BadSpec,
                "timeout_ms must be between 1 and 3600000 (one hour)",
            ));
        }
        limits.timeout_ms = t;
    }
    if let Some(m) = spec.memory_mib {
        let cap = state.node.sandbox().engine().config().max_memory_bytes >> 20;
        if m == 0 || m > cap {
            return Err(ApiError::new(
                ErrorCode::BadSpec,
                format!("memory_mib must be between 1 and {cap} on this node"),
            ));
        }
        limits.memory_bytes = m << 20;
    }
    let attempts = spec.max_attempts.unwrap_or(admission::DEFAULT_MAX_ATTEMPTS);
    if attempts == 0 || attempts > MAX_ATTEMPTS {
        return Err(ApiError::new(
            ErrorCode::BadSpec,
            format!("max_attempts must be between 1 and {MAX_ATTEMPTS}"),
        ));
    }
    Ok((limits, attempts))
}

/// A request body up to the upload cap: 413 `too-large` over it, 400 when it is cut short.
pub(super) async fn read_body(state: &AppState, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.node.config().max_upload_bytes;
    body::read_at_most(body, limit, limit, || submission::too_large(limit)).await
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Where a submission's component comes from.
enum Source {
    /// Uploaded with the request.
    Upload(Upload),
    /// Stored earlier, named by hash.
    Stored(String),
    /// A deployed task's version (resolved now, then pinned).
    Task(TaskRef),
}

/// Admit a submission's component (see [`Admission::admit`]); for a task, resolve and pin the
/// version first. Refusals of the component itself are counted.
async fn admit(
    state: &AppState,
    source: &Source,
    optional: &[String],
) -> Result<(Admitted, Option<ResolvedTask>), ApiError> {
    let admitted = match source {
        Source::Upload(upload) => (
            admission::admit(&state.node, Component::Upload(upload), optional).await,
            None,
        ),
        Source::Stored(hash) => (
            admission::admit(&state.node, Component::Stored(hash), optional).await,
            None,
        ),
        Source::Task(r) => match admission::admit_task(&state.node, r, optional).await {
            Ok((admitted, resolved)) => (Ok(admitted), Some(resolved)),
            Err(e) => (Err(e), None),
        },
    };
    match admitted {
        (Ok(admitted), task) => Ok((admitted, task)),
        (Err(e), _) => {
            if !matches!(
                e,
                AdmissionError::Store(_)
                    | AdmissionError::UnknownComponent(_)
                    | AdmissionError::UnknownTask { .. }
                    | AdmissionError::Prepare(crate::engine::PrepareError::Pool(_))
            ) {
                state.node.metrics().job_rejected();
            }
            Err(e.into())
        }
    }
}

/// `POST /v1/jobs`.
pub async fn submit(
    State(state): State<AppState>,
    Query(mut query): Query<SubmitQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let idempotency_key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (source, spec) = read_submission(&state, &mut query, request).await?;
    let fingerprint = fingerprint(&source, &spec);
    // A key already used names its job: answer with it, unjudged, if this is the same request.
    if let Some(key) = &idempotency_key
        && let Some((job, report)) = state.node.store().job_by_idempotency_key(key).await?
    {
        same_request(key, &job, &fingerprint)?;
        let answer = Answer {
            status: StatusCode::OK,
            created: false,
            watch: None,
        };
        return submit_answer(&state, answer, &job, &report, query.wait).await;
    }
    let (limits, max_attempts) = limits(&state, &spec)?;
    let turn = submission::turn(&spec, state.node.store().now())?;
    let began = std::time::Instant::now();
    let (admitted, task) = admit(&state, &source, &spec.optional_imports).await?;
    state
        .node
        .metrics()
        .stage(Stage::Admission, began.elapsed());
    let id = format!("job_{}", uuid::Uuid::now_v7().simple());
    // A client that waits watches its job before it is stored: its end cannot come first.
    let watch = query
        .wait
        .filter(|w| *w > 0)
        .map(|_| state.node.watch_finish(&id));
    let job = |admitted: &Admitted, task: &Option<ResolvedTask>| {
        let made = admitted.job(
            task.as_ref(),
            id.clone(),
            serde_json::to_vec(spec.input.as_ref().unwrap_or(&Value::Null)).expect("JSON encodes"),
            state.node.store().now(),
        );
        NewJob {
            max_attempts,
            limits,
            optional_imports: spec.optional_imports.clone(),
            idempotency_key: idempotency_key.clone(),
            request_hash: Some(fingerprint.clone()),
            // A job without a key of its own is held to its task version's limit, if any.
            turn: Turn {
                concurrency: turn.concurrency.clone().or(made.turn.concurrency.clone()),
                ..turn.clone()
            },
            ..made
        }
    };
    let began = std::time::Instant::now();
    let (inserted, admitted) = match state.node.store().insert_job(job(&admitted, &task)).await {
        Err(gone @ StoreError::TaskVersionGone { .. }) => {
            resolve_again(&state, &source, gone).await?;
            let (admitted, task) = admit(&state, &source, &spec.optional_imports).await?;
            (
                state.node.store().insert_job(job(&admitted, &task)).await?,
                admitted,
            )
        }
        inserted => (inserted?, admitted),
    };
    if let (false, Some(key)) = (inserted.created, &idempotency_key) {
        same_request(key, &inserted.job, &fingerprint)?;
    }
    state.node.metrics().stage(Stage::Insert, began.elapsed());
    if inserted.created {
        state.node.metrics().job_submitted();
        state.node.wake_agents();
    }
    let answer = Answer {
        status: if inserted.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        created: inserted.created,
        watch,
    };
    let report = &admitted.report_json;
    submit_answer(&state, answer, &inserted.job, report, query.wait).await
}

/// What makes two submissions the same request: the component (the upload's hash, the stored
/// hash, or the task reference as written), the input and the options, hashed.
fn fingerprint(source: &Source, spec: &JobSpec) -> String {
    let component = match source {
        Source::Upload(upload) => format!("upload:{}", upload.hash),
        Source::Stored(hash) => format!("stored:{hash}"),
        Source::Task(r) => format!("task:{}", spec.task.as_deref().unwrap_or(&r.name)),
    };
    let request = serde_json::json!({
        "component": component,
        "input": spec.input.as_ref().unwrap_or(&Value::Null),
        "timeout_ms": spec.timeout_ms,
        "memory_mib": spec.memory_mib,
        "max_attempts": spec.max_attempts,
        "optional_imports": spec.optional_imports,
        "priority": spec.priority,
        "delay_ms": spec.delay_ms,
        "not_before": spec.not_before,
        "concurrency_key": spec.concurrency_key,
        "concurrency_limit": spec.concurrency_limit,
    });
    blake3::hash(request.to_string().as_bytes())
        .to_hex()
        .to_string()
}

/// Refuse a request that reuses another request's idempotency key: the key names one request.
fn same_request(key: &str, first: &Job, fingerprint: &str) -> Result<(), ApiError> {
    match &first.request_hash {
        Some(h) if h != fingerprint => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            format!(
                "Idempotency-Key `{key}` already named job {} for a different request (another component, input or options), so nothing was stored; send a new key for a new request, or resend the first request unchanged",
                first.id
            ),
        )),
        _ => Ok(()),
    }
}

/// After the store refused a job because its task version was unregistered meanwhile: for
/// `name` / `name@current` (`current` moved, perhaps through another node), drop the cached
/// resolution so the caller resolves and admits again, once; for a pinned `name@V` (or
/// anything else) the refusal stands.
async fn resolve_again(
    state: &AppState,
    source: &Source,
    gone: StoreError,
) -> Result<(), ApiError> {
    let Source::Task(r) = source else {
        return Err(gone.into());
    };
    if r.version.is_some() {
        return Err(gone.into());
    }
    tracing::info!(error = %gone, "the resolved version was unregistered before the job was stored; resolving again");
    state.node.forget_resolution(&r.name);
    if let Err(e) = state.node.refresh_resolutions().await {
        tracing::warn!(error = %e, "could not compare the task resolution cache with the store");
    }
    Ok(())
}

/// The component and spec of a submission, by Content-Type, checked for consistency.
async fn read_submission(
    state: &AppState,
    query: &mut SubmitQuery,
    request: Request,
) -> Result<(Source, JobSpec), ApiError> {
    let caps = caps(state);
    let (source, spec) = match content_type(request.headers()).as_str() {
        "application/wasm" | "application/octet-stream" => {
            let spec = query.take_spec(&caps)?;
            let bytes = read_body(state, request.into_body()).await?;
            (Source::Upload(Upload::new(bytes).await), spec)
        }
        "multipart/form-data" => {
            let header = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = read_body(state, request.into_body()).await?;
            let (component, spec) = submission::multipart(&header, body, &caps).await?;
            (Source::Upload(Upload::new(component.into()).await), spec)
        }
        "application/json" => {
            // An over-cap spec is read to its end (up to the upload cap) before the refusal.
            let drain = state.node.config().max_upload_bytes;
            let body =
                body::read_at_most(request.into_body(), caps.max_spec_bytes(), drain, || {
                    submission::input_too_large("the JSON body", None, &caps)
                })
                .await?;
            let spec = submission::spec(&body, &caps)?;
            (json_source(&spec)?, spec)
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "content type `{other}` is not accepted; send the component as application/wasm, multipart/form-data (component + spec), or a JSON spec naming an uploaded component"
                ),
            ));
        }
    };
    if spec.task.is_some() && matches!(source, Source::Upload(_)) {
        return Err(ApiError::new(
            ErrorCode::BadSpec,
            "the request uploads a component and names a task; submit to a task with a JSON body ({\"task\": \"name\"}), without a component",
        ));
    }
    if let (Some(hash), Source::Upload(upload)) = (&spec.component, &source)
        && *hash != upload.hash
    {
        return Err(ApiError::new(
            ErrorCode::BadSpec,
            "the spec's `component` hash does not match the uploaded component; leave it out when uploading",
        ));
    }
    Ok((source, spec))
}

/// What a JSON submission names: an uploaded component by hash, or a deployed task.
fn json_source(spec: &JobSpec) -> Result<Source, ApiError> {
    match (&spec.component, &spec.task) {
        (Some(hash), None) => Ok(Source::Stored(hash.clone())),
        (None, Some(task)) => Ok(Source::Task(
            TaskRef::parse(task).map_err(|e| ApiError::new(ErrorCode::BadTaskName, e.0))?,
        )),
        (Some(_), Some(_)) => Err(ApiError::new(
            ErrorCode::BadSpec,
            "a job names either a component (`component`) or a deployed task (`task`), not both",
        )),
        (None, None) => Err(ApiError::new(
            ErrorCode::BadSpec,
            "a JSON submission names a deployed task in `task` (`name`, `name@7`) or an uploaded component by hash in `component`; or send the .wasm as application/wasm",
        )),
    }
}

/// How a submission is answered: its status code, whether the job was created, and, for a
/// client that waits, its watch on the job taken before the job was stored.
struct Answer {
    status: StatusCode,
    created: bool,
    watch: Option<FinishWatch>,
}

/// The answer to a submission: the job (with its attempts, once finished, when the client asked
/// to `wait`), whether it was created, and its admission report — JSON text serialized once,
/// when the component was prepared (or stored with the job).
async fn submit_answer(
    state: &AppState,
    answer: Answer,
    job: &Job,
    report: &str,
    wait: Option<u64>,
) -> Result<Response, ApiError> {
    let shown = match (wait.filter(|w| *w > 0), &answer.watch) {
        (None, _) => JobView::Job(Box::new(job.into())),
        // Just stored, and watched since before: it has not finished unless announced.
        (Some(secs), Some(watch)) if answer.created => JobView::Record(Box::new(
            (&wait_with(state, &job.id, secs, Some(watch), false).await?).into(),
        )),
        (Some(secs), _) => {
            JobView::Record(Box::new((&wait_for(state, &job.id, secs).await?).into()))
        }
    };
    let body = SubmitAnswer {
        job: shown,
        created: answer.created,
        report: view::report(report)?,
    };
    Ok((
        answer.status,
        [(header::LOCATION, format!("/v1/jobs/{}", job.id))],
        Json(body),
    )
        .into_response())
}

/// `PUT /v1/components`: upload once, submit many by hash.
pub async fn put_component(
    State(state): State<AppState>,
    body: Body,
) -> Result<Response, ApiError> {
    let upload = Upload::new(read_body(&state, body).await?).await;
    let prepared = match state
        .node
        .sandbox()
        .judge_and_build(WhenBusy::Refuse, &upload.hash, upload.bytes.clone(), &[])
        .await?
    {
        Ready::Prepared(prepared) => prepared,
        Ready::Rejected(judged) => {
            return Err(crate::engine::PrepareError::Rejected(Box::new(judged.report)).into());
        }
    };
    let created = state
        .node
        .store()
        .put_blob(&prepared.hash, &upload.bytes)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ComponentAnswer {
            component: prepared.hash.clone(),
            created,
            report: prepared.report.clone(),
        }),
    )
        .into_response())
}

/// `GET /v1/jobs/{id}[?wait=SECONDS]`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<GetQuery>,
) -> Result<Response, ApiError> {
    let record = wait_for(&state, &id, q.wait.unwrap_or(0)).await?;
    let mut shown = crate::wire::JobRecord::from(&record);
    if record.job.status == JobStatus::Queued
        && let Some(class) = &record.job.class
        && let Some(spec) = state.node.store().requirement_class(class).await?
    {
        shown.placement = Some(state.node.placement(&spec).await?);
    }
    Ok(Json(shown).into_response())
}

/// The job once it is finished, or as it is after `secs` seconds (at most 60).
async fn wait_for(
    state: &AppState,
    id: &str,
    secs: u64,
) -> Result<crate::store::JobRecord, ApiError> {
    let watch = (secs > 0).then(|| state.node.watch_finish(id));
    wait_with(state, id, secs, watch.as_ref(), true).await
}

/// [`wait_for`] with the client's watch on the job already taken (before the job was stored,
/// for a submission); `read_first` is false when the caller knows the job has not finished.
async fn wait_with(
    state: &AppState,
    id: &str,
    secs: u64,
    watch: Option<&FinishWatch>,
    mut read_first: bool,
) -> Result<crate::store::JobRecord, ApiError> {
    let wait = Duration::from_secs(secs.min(MAX_WAIT_SECS));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Taken before the read, so an end announced between the read and the wait counts.
        let finished = watch.map(FinishWatch::next);
        tokio::pin!(finished);
        if let Some(f) = finished.as_mut().as_pin_mut() {
            f.enable();
        }
        if read_first {
            let record = state
                .node
                .store()
                .get_job(id)
                .await?
                .ok_or_else(|| missing(state, id))?;
            if record.job.status.is_terminal() || tokio::time::Instant::now() >= deadline {
                return Ok(record);
            }
        }
        read_first = true;
        // Wake on this job finishing (here or, via the store's notices, elsewhere), or poll.
        let poll = tokio::time::sleep(
            Duration::from_millis(500)
                .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
        );
        match finished.as_mut().as_pin_mut() {
            Some(f) => tokio::select! {
                _ = f => {}
                _ = poll => {}
            },
            None => poll.await,
        }
    }
}

/// 404 for a job the store does not have: `job-expired` when its id is older than the
/// retention, `not-found` otherwise.
fn missing(state: &AppState, id: &str) -> ApiError {
    let node = &state.node;
    ApiError::job_missing(id, node.config().retention, node.store().now())
}

/// `GET /v1/jobs?status=&limit=&before=`: summaries, never inputs or outputs.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let size = page::JOBS.size(q.limit);
    let store = state.node.store();
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let (task, node) = (given(q.task), given(q.node));
    let rows = if task.is_none() && node.is_none() {
        store.list_jobs(q.status, q.before, size + 1).await?
    } else {
        let (task, version) = match task.as_deref().map(|t| t.split_once('@')) {
            None => (None, None),
            Some(None) => (task, None),
            Some(Some((name, version))) => {
                let version = version.parse::<u32>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "`task` is `name` or `name@version` (a number), not `{name}@{version}`"
                    ))
                })?;
                (Some(name.to_string()), Some(version))
            }
        };
        let filter = JobFilter {
            status: q.status,
            task,
            version,
            node,
        };
        store.list_jobs_where(filter, q.before, size + 1).await?
    };
    let (jobs, next) = page::page(rows, size, |j| j.seq);
    Ok(Json(JobList {
        jobs: jobs.iter().map(Into::into).collect(),
        next,
    }))
}

/// `GET /v1/activity`: queue depth, running attempts, and jobs finished per bucket of time,
/// over the whole store (every node), oldest bucket first.
pub async fn activity(
    State(state): State<AppState>,
    Query(q): Query<ActivityQuery>,
) -> Result<Json<Activity>, ApiError> {
    let window = i64::from(q.window_s.unwrap_or(900).clamp(10, 86_400)) * 1000;
    let step = i64::from(q.step_s.unwrap_or(0)) * 1000;
    let step = if step == 0 { window / 60 } else { step };
    let step = step.clamp((window / 500).max(1000), window);
    let count = (window / step) as u32;
    let store = state.node.store();
    let now = store.now();
    let from = now - step * i64::from(count);
    let buckets = store.activity(from, step, count).await?;
    Ok(Json(Activity {
        from_ms: from,
        step_ms: step,
        buckets: buckets
            .into_iter()
            .enumerate()
            .map(|(i, b)| ActivityBucket {
                at_ms: from + step * (i as i64 + 1),
                queued: b.queued,
                running: b.running,
                succeeded: b.succeeded,
                failed: b.failed,
                cancelled: b.cancelled,
            })
            .collect(),
    }))
}

/// `GET /v1/jobs/{id}/output`: a succeeded job's output as it returned it, as
/// `application/json` when it is JSON, else `application/octet-stream`.
pub async fn output(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = state
        .node
        .store()
        .get_job(&id)
        .await?
        .ok_or_else(|| missing(&state, &id))?;
    let Some(output) = record.job.output else {
        return Err(ApiError::new(
            ErrorCode::NoOutput,
            format!(
                "job {id} is {} and has no output; only a succeeded job has one (GET /v1/jobs/{id}?wait=SECONDS waits for it to finish)",
                record.job.status.as_str()
            ),
        ));
    };
    let kind = if serde_json::from_slice::<serde::de::IgnoredAny>(&output).is_ok() {
        "application/json"
    } else {
        "application/octet-stream"
    };
    Ok(([(header::CONTENT_TYPE, kind)], output).into_response())
}

/// `POST /v1/jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crate::wire::Job>, ApiError> {
    let job = match state.node.store().cancel_job(&id, now_ms()).await {
        Err(StoreError::NotFound(_)) => return Err(missing(&state, &id)),
        cancelled => cancelled?,
    };
    if job.status == JobStatus::Running {
        state.node.stop_attempt(&id);
    }
    if job.status == JobStatus::Cancelled {
        state.node.announce_finished(&id);
    }
    Ok(Json((&job).into()))
}

/// `GET /v1/jobs/{id}/logs?limit=`: the newest attempts' logs (10 by default), as text; an
/// attempt running on this node shows what it has logged so far.
pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Response, ApiError> {
    let size = page::LOGS.size(q.limit);
    let attempts = state
        .node
        .store()
        .job_logs(&id, size)
        .await?
        .ok_or_else(|| missing(&state, &id))?;
    let mut text = String::new();
    if let Some(first) = attempts.first()
        && first.number > 1
    {
        text.push_str(&format!(
            "=== attempts 1 to {} not shown (?limit= shows up to {}) ===\n",
            first.number - 1,
            page::LOGS.max
        ));
    }
    for a in &attempts {
        text.push_str(&format!(
            "=== attempt {} on {} ({}) ===\n",
            a.number,
            a.agent,
            a.state.as_str()
        ));
        if a.state == AttemptState::Running {
            match state.node.live_log(&id, a.number) {
                Some(live) => text.push_str(&live.text()),
                None => text.push_str(&format!(
                    "[driftless: this attempt runs on another node ({}); its log is kept when it ends. Ask that node's API for it live]\n",
                    a.agent
                )),
            }
        } else {
            text.push_str(a.log.as_deref().unwrap_or(""));
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// `GET /v1/jobs/{id}/events?limit=&after=`: the job's history, oldest first.
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<EventList>, ApiError> {
    let after = q
        .after
        .as_deref()
        .map(str::parse::<i64>)
        .transpose()
        .map_err(|_| {
            ApiError::bad_request(
                "`after` is not a cursor of this route; pass the `next` of the previous page",
            )
        })?;
    let size = page::EVENTS.size(q.limit);
    let rows = state
        .node
        .store()
        .events(&id, after, size + 1)
        .await?
        .ok_or_else(|| missing(&state, &id))?;
    let (events, next) = page::page(rows, size, |e| e.id.to_string());
    Ok(Json(EventList {
        events: events.into_iter().map(Into::into).collect(),
        next,
    }))
}
