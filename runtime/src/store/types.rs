//! The records the store keeps.

use crate::engine::Limits;

pub use crate::host::{KvEffects, KvObserved, KvValue, KvWrite};
pub use crate::lifecycle::states::{AttemptState, JobFailure, JobStatus, Next};

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id.
    pub id: String,
    /// The component's blake3 hash (the blob must be stored first).
    pub component: String,
    /// Input bytes for `run`.
    pub input: Vec<u8>,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Per-attempt limits.
    pub limits: Limits,
    /// Extra optional imports declared at submission.
    pub optional_imports: Vec<String>,
    /// The compat report at admission, as JSON text.
    pub report: std::sync::Arc<str>,
    /// kv scope.
    pub kv_scope: String,
    /// The task version a task job is pinned to.
    pub task: Option<TaskPin>,
    /// Idempotency key, if the client sent one.
    pub idempotency_key: Option<String>,
    /// What makes the submission one request (a hash of its component, input and options):
    /// a reused idempotency key must come with the same.
    pub request_hash: Option<String>,
    /// What the job needs from a host (`None`: any node may claim it).
    pub requirements: Option<Requirements>,
    /// When it was accepted.
    pub now_ms: i64,
    /// Its place in the queue: priority, earliest start, concurrency key.
    pub turn: Turn,
    /// The schedule tick that makes it (stored only through
    /// [`ScheduleStore::fire_schedule`](super::ScheduleStore::fire_schedule)).
    pub schedule: Option<Firing>,
}

impl NewJob {
    /// When it may first be claimed: its `not_before_ms`, or now when that is past or unset.
    pub fn run_after_ms(&self) -> i64 {
        self.turn
            .not_before_ms
            .unwrap_or(self.now_ms)
            .max(self.now_ms)
    }

    /// Its `queued` event (for a schedule's job, with the schedule and tick that made it).
    pub(crate) fn queued(&self) -> crate::lifecycle::attempts::Told {
        let run_after = self.run_after_ms();
        let mut told = crate::lifecycle::attempts::queued(
            (run_after > self.now_ms).then_some(run_after),
            self.turn
                .concurrency
                .as_ref()
                .map(|c| (c.key.as_str(), c.limit)),
        );
        if let Some(f) = &self.schedule {
            told.message = format!(
                "{}; {}",
                told.message,
                crate::lifecycle::schedules::made_by(&f.schedule, f.tick_ms, f.skipped)
            );
        }
        told
    }
}

/// One tick of a schedule firing: the job it makes carries it, and the schedule moves on from
/// `due_ms` to `next_ms` in the same transaction, or nothing happens (another node fired it,
/// or the schedule was replaced or deleted meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The schedule's name.
    pub schedule: String,
    /// The schedule's revision when its due tick was read.
    pub revision: i64,
    /// Its `next_tick_ms` when read: the compare-and-set expects it.
    pub due_ms: i64,
    /// The tick that fires (the latest due one).
    pub tick_ms: i64,
    /// Earlier due ticks skipped (the missed-tick policy).
    pub skipped: u64,
    /// Its next tick after this one.
    pub next_ms: i64,
}

/// The schedule and tick that made a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTick {
    /// The schedule's name.
    pub name: String,
    /// The tick (ms since the epoch).
    pub tick_ms: i64,
}

/// A schedule to create or replace, for
/// [`ScheduleStore::put_schedule`](super::ScheduleStore::put_schedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchedule {
    /// Its name (checked by the caller).
    pub name: String,
    /// The task each firing submits to (its `current` version then).
    pub task: String,
    /// The cron pattern (checked by the caller).
    pub cron: String,
    /// The IANA time zone the pattern is read in.
    pub timezone: String,
    /// The jobs' input (JSON bytes).
    pub input: Vec<u8>,
    /// Its first tick after now.
    pub next_tick_ms: i64,
    /// When.
    pub now_ms: i64,
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Its name.
    pub name: String,
    /// The task each firing submits to.
    pub task: String,
    /// The cron pattern.
    pub cron: String,
    /// The IANA time zone.
    pub timezone: String,
    /// The jobs' input (JSON bytes).
    pub input: Vec<u8>,
    /// Created at.
    pub created_ms: i64,
    /// Last put.
    pub updated_ms: i64,
    /// Grows with every put.
    pub revision: i64,
    /// Its next tick.
    pub next_tick_ms: i64,
    /// The tick that fired last.
    pub last_tick_ms: Option<i64>,
    /// The job that tick made.
    pub last_job: Option<String>,
    /// Ticks fired since it was created.
    pub fired: u64,
    /// Missed ticks skipped since it was created.
    pub skipped: u64,
}

/// A job a schedule made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledJob {
    /// The job's id.
    pub id: String,
    /// The tick that made it.
    pub tick_ms: i64,
    /// Where it is.
    pub status: JobStatus,
    /// The task version it was pinned to.
    pub task: Option<TaskPin>,
}

/// How a job waits its turn: claims take the highest priority first, oldest first within a
/// priority; a job is not claimed before `run_after_ms`; of the jobs sharing a concurrency key,
/// at most its limit hold a slot (are ready or running) at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Turn {
    /// Higher runs first (default 0).
    pub priority: i32,
    /// Not claimed before this time (ms since the epoch); `None` or a time already past: at
    /// once.
    pub not_before_ms: Option<i64>,
    /// The concurrency key the job shares with others, if any.
    pub concurrency: Option<ConcurrencyKey>,
}

/// A concurrency key and the most jobs of it that may hold a slot at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyKey {
    /// The key (any text the submitter chooses, e.g. a customer id).
    pub key: String,
    /// At most this many of its jobs are ready or running at once (at least 1). Each job
    /// counts against its own limit.
    pub limit: u32,
}

/// The task version a job is pinned to at submission (it never changes afterwards).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskPin {
    /// The task's name.
    pub task: String,
    /// The version.
    pub version: u32,
}

impl TaskPin {
    /// `task@version`.
    pub fn new(task: impl Into<String>, version: u32) -> TaskPin {
        TaskPin {
            task: task.into(),
            version,
        }
    }
}

impl std::fmt::Display for TaskPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.task, self.version)
    }
}

/// What a job needs from a host, as its compatibility class (defined by `compat`).
pub use crate::compat::Requirements;

/// A compatibility class as stored, for nodes catching up on classes they have not judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementClass {
    /// Order of first appearance: a node asks for the classes after the last one it saw.
    pub seq: i64,
    /// The class id.
    pub class: String,
    /// The requirements as JSON.
    pub spec: String,
}

/// A node process announcing itself in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRegistration {
    /// The process (`host:pid:start`): the registry's key, as two processes of one node name
    /// run side by side during a hand-over.
    pub process: String,
    /// The node name (agent identities are `<node>/<n>`).
    pub node: String,
    /// Where its API listens (`127.0.0.1:7878`).
    pub address: String,
    /// The version of driftless it runs.
    pub version: String,
    /// Its catalog: the modules it provides with their functions, as JSON.
    pub catalog: String,
    /// How many agents it runs.
    pub agents: u32,
    /// When it started.
    pub now_ms: i64,
}

/// What a node process's heartbeat found in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// False when the registry has no live row for the process (it was marked gone: register
    /// again).
    pub live: bool,
    /// A drain (`true`) or resume (`false`) asked of the node through any node's API, not yet
    /// acted on.
    pub drain_request: Option<bool>,
}

/// A node process as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The process (`host:pid:start`).
    pub process: String,
    /// The node name.
    pub node: String,
    /// Where its API listens.
    pub address: String,
    /// The version of driftless it runs.
    pub version: String,
    /// Its catalog as JSON (modules with their functions).
    pub catalog: String,
    /// How many agents it runs.
    pub agents: u32,
    /// The agent identities it holds now.
    pub identities: Vec<String>,
    /// When it registered.
    pub started_ms: i64,
    /// Its last heartbeat.
    pub heartbeat_ms: i64,
    /// Whether it is draining.
    pub draining: bool,
    /// Attempts running on it at its last heartbeat.
    pub inflight: u32,
    /// When it left or was marked gone (`None`: live).
    pub gone_ms: Option<i64>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// Queue position; the pagination cursor.
    pub seq: i64,
    /// The component's hash.
    pub component: String,
    /// Where it is.
    pub status: JobStatus,
    /// Input bytes.
    pub input: Vec<u8>,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Attempts started so far (interrupted ones are not counted).
    pub attempts: u32,
    /// Per-attempt limits.
    pub limits: Limits,
    /// Extra optional imports.
    pub optional_imports: Vec<String>,
    /// kv scope.
    pub kv_scope: String,
    /// The task version a task job is pinned to (shown as `name@version`).
    pub task: Option<TaskPin>,
    /// Its compatibility class (`None`: any node may claim it).
    pub class: Option<String>,
    /// Earliest time of the next attempt (ms since epoch).
    pub run_after_ms: i64,
    /// Accepted at.
    pub created_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// Finished at.
    pub finished_ms: Option<i64>,
    /// Output of a succeeded job.
    pub output: Option<Vec<u8>>,
    /// Why it failed (or why the last attempt did).
    pub error: Option<JobFailure>,
    /// Latest progress.
    pub progress: Option<(u8, String)>,
    /// Whether cancellation was requested.
    pub cancel_requested: bool,
    /// The submission's request hash (see [`NewJob::request_hash`]).
    pub request_hash: Option<String>,
    /// Higher runs first.
    pub priority: i32,
    /// The concurrency key it shares, with its limit.
    pub concurrency: Option<ConcurrencyKey>,
    /// The schedule and tick that made it.
    pub schedule: Option<ScheduleTick>,
}

/// A job as a listing shows it: what it is and where it stands, with the sizes of its input
/// and output but not the bytes (read without them, so a listing's memory is bounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSummary {
    /// Its id.
    pub id: String,
    /// Queue position; the pagination cursor.
    pub seq: i64,
    /// The component's hash.
    pub component: String,
    /// Where it is.
    pub status: JobStatus,
    /// The task version a task job is pinned to.
    pub task: Option<TaskPin>,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Accepted at.
    pub created_ms: i64,
    /// Last change.
    pub updated_ms: i64,
    /// Finished at.
    pub finished_ms: Option<i64>,
    /// Size of the input, in bytes.
    pub input_bytes: u64,
    /// Size of a succeeded job's output, in bytes.
    pub output_bytes: Option<u64>,
    /// The code of why it failed (or why its last attempt did).
    pub error_code: Option<String>,
}

/// One attempt as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// The agent identity that ran it.
    pub agent: String,
    /// The process that claimed it (`host:pid:start`; `None` for attempts claimed before
    /// holds were recorded). Not part of the API's wire view.
    pub holder: Option<String>,
    /// How it ended (or `running`).
    pub state: AttemptState,
    /// Started at.
    pub started_ms: i64,
    /// Ended at.
    pub finished_ms: Option<i64>,
    /// When the lease expires (running attempts).
    pub lease_expires_ms: i64,
    /// The engine outcome (without output bytes), JSON.
    pub outcome: Option<serde_json::Value>,
    /// What the attempt logged: read by [`JobStore::job_logs`](super::JobStore::job_logs)
    /// only (`None` in [`JobStore::get_job`](super::JobStore::get_job)'s answer).
    pub log: Option<String>,
}

/// A job with its attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// The job.
    pub job: Job,
    /// Its attempts, oldest first.
    pub attempt_list: Vec<Attempt>,
}

/// The result of [`Store::insert_job`](super::Store::insert_job).
#[derive(Debug, Clone, PartialEq)]
pub struct Inserted {
    /// The job (new, or the one the idempotency key already named).
    pub job: Job,
    /// False when the idempotency key named an existing job.
    pub created: bool,
}

/// A claimed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The job (status running; `attempts` counts this one).
    pub job: Job,
    /// The attempt's number among all the job's attempts (interrupted ones included).
    pub attempt: u32,
    /// The lease token fencing every write about this attempt.
    pub lease_token: String,
    /// When the lease expires unless extended.
    pub lease_expires_ms: i64,
}

/// How an attempt ended, for [`Store::finish_attempt`](super::Store::finish_attempt).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptEnd {
    /// The attempt's final state.
    pub state: AttemptState,
    /// The engine outcome (JSON, output omitted).
    pub outcome: serde_json::Value,
    /// The attempt's log.
    pub log: String,
    /// What happens to the job.
    pub next: Next,
    /// What the attempt read from and wrote to the kv store: the writes commit with a success
    /// (after its reads are checked), and are discarded otherwise.
    pub kv: KvEffects,
}

/// One event in a job's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its position in the store (the cursor of a page of events).
    pub id: i64,
    /// The attempt it concerns.
    pub attempt: Option<u32>,
    /// When.
    pub at_ms: i64,
    /// `queued`, `claimed`, `succeeded`, `retry`, `lost`, ...
    pub kind: String,
    /// A sentence.
    pub message: String,
}

/// Counts for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Jobs by status.
    pub jobs: Vec<(JobStatus, u64)>,
    /// Queued jobs by where they wait: `ready` (for an agent), `delayed` (for their time),
    /// `parked` (for a slot of their concurrency key).
    pub queue: Vec<(&'static str, u64)>,
}

/// A task version to record, for [`Store::deploy_task`](super::Store::deploy_task).
#[derive(Debug, Clone)]
pub struct NewTaskVersion {
    /// The task's name (checked by the caller).
    pub task: String,
    /// The component's hash (the blob must be stored first).
    pub component: String,
    /// The compat report at deploy, as JSON text.
    pub report: std::sync::Arc<str>,
    /// Who deployed.
    pub actor: String,
    /// The request that deployed.
    pub request_id: String,
    /// When.
    pub now_ms: i64,
    /// At most this many of the task's jobs ready or running at once (its jobs without a
    /// concurrency key of their own get the key `task:<name>` with this limit).
    pub max_concurrency: Option<u32>,
}

/// Where a task's `current` points after a deploy or rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The version now current (for a no-op deploy: the existing version with these bytes).
    pub version: u32,
    /// The version current before, if any.
    pub previous: Option<u32>,
    /// False when nothing changed (the same bytes were deployed again).
    pub changed: bool,
    /// The task generation after the change.
    pub generation: i64,
}

/// What [`Store::delete_task_version`](super::Store::delete_task_version) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The version is unregistered.
    Deleted,
    /// Queued or running jobs pin it: how many, and the first few ids.
    Pinned {
        /// How many jobs.
        count: u64,
        /// Up to ten of their ids.
        jobs: Vec<String>,
    },
}

/// What a task reference resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTask {
    /// The task's name.
    pub task: String,
    /// The version.
    pub version: u32,
    /// Its component's hash.
    pub component: String,
    /// The task generation the resolution was read at.
    pub generation: i64,
    /// The version's limit on the task's jobs at once, if it has one.
    pub max_concurrency: Option<u32>,
}

impl ResolvedTask {
    /// The concurrency key a job of this version gets when it brings none of its own.
    pub fn concurrency(&self) -> Option<ConcurrencyKey> {
        self.max_concurrency.map(|limit| ConcurrencyKey {
            key: format!("task:{}", self.task),
            limit,
        })
    }
}

/// Jobs pinned to one version, by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Waiting.
    pub queued: u64,
    /// Running.
    pub running: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
}

/// One version of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskVersion {
    /// Its number (1, 2, ...; never reused).
    pub version: u32,
    /// Its component's hash.
    pub component: String,
    /// Deployed at.
    pub created_ms: i64,
    /// Deployed by.
    pub deployed_by: String,
    /// Unregistered at, if it was.
    pub deleted_ms: Option<i64>,
    /// Its limit on the task's jobs at once, if it has one.
    pub max_concurrency: Option<u32>,
    /// Its non-WASI imports with their verdicts at deploy (`driftless:kv/store@1.1.0: satisfied`).
    pub imports: Vec<String>,
    /// Jobs pinned to it.
    pub jobs: JobCounts,
}

impl TaskVersion {
    /// [`imports`](Self::imports) from a version's stored admission report (JSON): each
    /// non-WASI import with its status.
    pub fn import_summary(report: &str) -> Vec<String> {
        let report: serde_json::Value = serde_json::from_str(report).unwrap_or_default();
        report["imports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| !i["package"].as_str().unwrap_or("").starts_with("wasi:"))
            .map(|i| {
                format!(
                    "{}: {}",
                    i["import"].as_str().unwrap_or("?"),
                    i["status"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }
}

/// One change of a task's `current` (or an unregistered version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at_ms: i64,
    /// `deploy`, `rollback` or `delete-version`.
    pub action: String,
    /// Who.
    pub actor: String,
    /// The request.
    pub request_id: String,
    /// `current` before (for `delete-version`: the version deleted).
    pub old_version: Option<u32>,
    /// `current` after.
    pub new_version: Option<u32>,
}

/// What a node last reported it resolves a task's `current` to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeResolution {
    /// The node.
    pub node: String,
    /// The version it resolves `current` to.
    pub version: u32,
    /// The generation it resolved at.
    pub generation: i64,
    /// When it reported.
    pub at_ms: i64,
}

/// A task in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSummary {
    /// Its name.
    pub name: String,
    /// The current version.
    pub current: u32,
    /// Registered (not deleted) versions.
    pub versions: u32,
    /// Last change of `current`.
    pub updated_ms: i64,
}

/// A task with its versions, node resolutions and audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Its name.
    pub name: String,
    /// The current version.
    pub current: u32,
    /// The task generation now.
    pub generation: i64,
    /// Created at.
    pub created_ms: i64,
    /// Last change of `current`.
    pub updated_ms: i64,
    /// Every version, oldest first (unregistered ones included, marked).
    pub versions: Vec<TaskVersion>,
    /// What each node last reported it resolves `current` to.
    pub nodes: Vec<NodeResolution>,
    /// Changes, oldest first.
    pub audit: Vec<AuditEntry>,
}

/// Who holds an agent identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHold {
    /// The holding process (`host:pid:start`), or `None` when free.
    pub holder: Option<String>,
    /// Until when the hold lasts without renewal.
    pub lease_expires_ms: i64,
}

/// An agent identity as one process holds it: the identity and the hold token its take
/// returned ([`NodeStore::take_identity`](super::NodeStore::take_identity)). Claims carry it,
/// and every write about an attempt checks that the hold it was claimed under is still the
/// identity's: once another process takes the identity, this hold claims nothing and its
/// attempts' writes are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The identity (`<node>/<n>`).
    pub agent: String,
    /// The hold token (fresh for every take).
    pub hold: String,
}

/// An API token as stored: its name, the blake3 hash of its secret (never the secret), and
/// the scopes it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Unique name; the audit trail's actor for requests made with it.
    pub name: String,
    /// blake3 of the secret, hex.
    pub hash: String,
    /// The scopes it grants (`read`, `submit`, `deploy`, `admin`).
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_ms: i64,
    /// The name of the token that made it.
    pub created_by: String,
    /// When a node last recorded its use (at most once a minute per node).
    pub last_used_ms: Option<i64>,
}
