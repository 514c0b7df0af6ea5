//! `/v1/jobs`, `/v1/components`, `/v1/check`, `/v1/modules`: what goes in and what comes out.

use super::{
    AttemptState, CompatReport, JobFailure, JobSchedule, JobStatus, Limits, Module, Placement,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A job's options: the multipart `spec` part, or the whole body of an `application/json`
/// submission naming an uploaded component or a deployed task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The component's blake3 hash (JSON submissions of an uploaded component).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// A deployed task: `name`, `name@current` or `name@7` (JSON submissions). The version is
    /// resolved and pinned at submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The input, any JSON value (default `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Wall-clock limit per attempt, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Memory limit per attempt, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Attempts allowed in all (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Imports the job can run without, on top of those the component declares.
    #[serde(default)]
    pub optional_imports: Vec<String>,
    /// Higher runs first (default 0); within a priority, the job ready longest runs first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Run no sooner than this many milliseconds after acceptance (at most 366 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Run no sooner than this time (RFC 3339, e.g. `2026-12-24T18:00:00+01:00`; at most 366
    /// days ahead). Not with `delay_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// A key the job shares with others (e.g. a customer id): at most `concurrency_limit` of
    /// them are ready or running at once, across the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    /// How many jobs of `concurrency_key` may be ready or running at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_limit: Option<u32>,
}

/// Query of `POST /v1/jobs`: the options of an `application/wasm` submission, and `wait` for
/// any content type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    /// The input as JSON text.
    pub input: Option<String>,
    /// Wall-clock limit per attempt, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Memory limit per attempt, in MiB.
    pub memory_mib: Option<u64>,
    /// Attempts allowed in all.
    pub max_attempts: Option<u32>,
    /// Comma-separated optional imports.
    pub optional: Option<String>,
    /// Answer only when the job finished, or after this many seconds.
    pub wait: Option<u64>,
    /// Higher runs first (default 0).
    pub priority: Option<i32>,
    /// Run no sooner than this many milliseconds after acceptance.
    pub delay_ms: Option<u64>,
    /// Run no sooner than this time (RFC 3339).
    pub not_before: Option<String>,
    /// A key the job shares with others: at most `concurrency_limit` of them at once.
    pub concurrency_key: Option<String>,
    /// How many jobs of `concurrency_key` may be ready or running at once (default 1).
    pub concurrency_limit: Option<u32>,
}

/// Query of `GET /v1/jobs/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// Wait up to this many seconds (at most 60) for the job to finish.
    pub wait: Option<u64>,
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only jobs with this status.
    pub status: Option<JobStatus>,
    /// Page size (default 50, at most 500).
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub before: Option<i64>,
    /// Only jobs of this task: `name` (any version) or `name@version`.
    pub task: Option<String>,
    /// Only jobs with an attempt on this node (its agents `node/n`).
    pub node: Option<String>,
}

/// Query of the list routes paged by a cursor other than `GET /v1/jobs`
/// (`GET /v1/jobs/{id}/events`, `GET /v1/tasks`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size (each route has a default and a maximum; larger values are capped).
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

/// Query of the routes whose lists are capped but not paged (`GET /v1/jobs/{id}/logs`,
/// `GET /v1/tasks/{name}`, `GET /v1/nodes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitQuery {
    /// How many entries to show, newest (each route has a default and a maximum).
    pub limit: Option<u32>,
}

/// The latest progress a job reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// 0 to 100.
    pub percent: u8,
    /// What the job says it is doing.
    pub message: String,
}

/// A job, without its attempts. Every field is always present (null where it does not apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// `job_` and 32 hex digits.
    pub id: String,
    /// Where it is.
    pub status: JobStatus,
    /// The component's blake3 hash.
    pub component: String,
    /// The task version it is pinned to, `name@version`.
    pub task: Option<String>,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Accepted at (ms since the epoch).
    pub created_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// Finished at.
    pub finished_ms: Option<i64>,
    /// Earliest time of the next attempt.
    pub run_after_ms: i64,
    /// A succeeded job's output, when it is JSON.
    pub output: Option<Value>,
    /// A succeeded job's output, when it is not JSON (as text).
    pub output_text: Option<String>,
    /// Why it failed, or why its last attempt did.
    pub error: Option<JobFailure>,
    /// The latest progress it reported.
    pub progress: Option<Progress>,
    /// Whether cancellation was requested.
    pub cancel_requested: bool,
    /// Per-attempt limits.
    pub limits: Limits,
    /// Imports it may run without, declared at submission.
    pub optional_imports: Vec<String>,
    /// Its compatibility class (`None`: any node may claim it).
    pub class: Option<String>,
    /// Higher runs first.
    pub priority: i32,
    /// The concurrency key it shares with other jobs.
    pub concurrency_key: Option<String>,
    /// How many jobs of its key may be ready or running at once (`null` without a key).
    pub concurrency_limit: Option<u32>,
    /// The schedule and tick that made it (`null`: submitted).
    pub schedule: Option<JobSchedule>,
}

/// One attempt of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// The agent identity that ran it.
    pub agent: String,
    /// How it ended, or `running`.
    pub state: AttemptState,
    /// Started at.
    pub started_ms: i64,
    /// Ended at.
    pub finished_ms: Option<i64>,
    /// When its lease expires (running attempts).
    pub lease_expires_ms: i64,
    /// How it ended, tagged by `kind` (the document's `AttemptOutcome`).
    pub outcome: Option<Value>,
}

/// A job with its attempts (`GET /v1/jobs/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job.
    #[serde(flatten)]
    pub job: Job,
    /// Its attempts, oldest first.
    pub attempt_list: Vec<Attempt>,
    /// The agent of its latest attempt.
    pub agent: Option<String>,
    /// Where a queued job can run (queued jobs with a compatibility class only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// Its input, when it is JSON (it always is when submitted over the API).
    #[serde(default)]
    pub input: Option<Value>,
}

/// The job in a submission's answer: with `?wait=`, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JobView {
    /// With its attempts (the client asked to wait).
    Record(Box<JobRecord>),
    /// Without them.
    Job(Box<Job>),
}

impl JobView {
    /// The job, with or without attempts.
    pub fn job(&self) -> &Job {
        match self {
            JobView::Record(r) => &r.job,
            JobView::Job(j) => j,
        }
    }
}

/// The answer to `POST /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitAnswer {
    /// The job.
    pub job: JobView,
    /// False when an idempotency key named an existing job.
    pub created: bool,
    /// The compat report at admission.
    pub report: CompatReport,
}

/// A job as `GET /v1/jobs` lists it: where it stands and the sizes of its input and output,
/// never the bytes (`GET /v1/jobs/{id}` and `GET /v1/jobs/{id}/output` have the output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    /// `job_` and 32 hex digits.
    pub id: String,
    /// Where it is.
    pub status: JobStatus,
    /// The component's blake3 hash.
    pub component: String,
    /// The task version it is pinned to, `name@version`.
    pub task: Option<String>,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Accepted at (ms since the epoch).
    pub created_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// Finished at.
    pub finished_ms: Option<i64>,
    /// Size of the input (JSON), in bytes.
    pub input_bytes: u64,
    /// Size of a succeeded job's output, in bytes.
    pub output_bytes: Option<u64>,
    /// The code of why it failed, or why its last attempt did.
    pub error: Option<String>,
}

/// A page of `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobSummary>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next: Option<i64>,
}

/// One event in a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The attempt it concerns.
    pub attempt: Option<u32>,
    /// When.
    pub at_ms: i64,
    /// `queued`, `claimed`, `succeeded`, `retry`, `lost`, ...
    pub kind: String,
    /// A sentence.
    pub message: String,
}

/// `GET /v1/jobs/{id}/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventList {
    /// Oldest first.
    pub events: Vec<Event>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// The answer to `PUT /v1/components`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentAnswer {
    /// The component's blake3 hash.
    pub component: String,
    /// False when it was already stored.
    pub created: bool,
    /// The compat report against this node's catalog.
    pub report: CompatReport,
}

/// The answer to `POST /v1/check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckAnswer {
    /// Whether the job may run on this node.
    pub accepted: bool,
    /// The report.
    pub report: CompatReport,
    /// The report as the CLI prints it.
    pub text: String,
}

/// `GET /v1/modules`: this node's catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleList {
    /// The node's name.
    pub node: String,
    /// Sorted by name, then version.
    pub modules: Vec<Module>,
}

/// Query of `GET /v1/activity`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    /// How far back, in seconds (default 900, at most 86400).
    pub window_s: Option<u32>,
    /// The width of one bucket, in seconds (default: the window over 60; at least
    /// window / 500).
    pub step_s: Option<u32>,
}

/// The jobs of the whole store over one bucket of time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityBucket {
    /// The bucket's end (ms since the epoch); it covers the `step_ms` before.
    pub at_ms: i64,
    /// Jobs waiting at its end: accepted, not finished, no attempt running (retries waiting
    /// for their backoff included).
    pub queued: u64,
    /// Attempts running at its end.
    pub running: u64,
    /// Jobs that succeeded within it.
    pub succeeded: u64,
    /// Jobs that failed within it (out of attempts, or a failure not retried).
    pub failed: u64,
    /// Jobs cancelled within it.
    pub cancelled: u64,
}

/// `GET /v1/activity`: queue depth, throughput and failures over time, for every node of the
/// store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// The window's start (ms since the epoch, by the store's clock).
    pub from_ms: i64,
    /// The width of one bucket, in ms.
    pub step_ms: i64,
    /// Oldest first; the last one ends now.
    pub buckets: Vec<ActivityBucket>,
}
