//! store: everything durable, behind one [`Store`] (a trait per concern: [`BlobStore`],
//! [`JobStore`], [`AttemptStore`], [`TaskStore`], [`NodeStore`], [`KvStore`], [`TokenStore`],
//! [`RetentionStore`], [`ScheduleStore`]).
//!
//! The rules live elsewhere, once: [`crate::lifecycle`] decides what every step of a job's and
//! a task's life does and how it is told; `ops/` holds every operation written once against
//! the [`sql::Sql`] executor (rows read by column name, statements in PostgreSQL's `$n` form).
//! The backends are thin and mirrored, file for file: `mod.rs` (connections, transactions, the
//! trait impls, one line each), `sql.rs` (the executor) and `queue.rs` (the operations the
//! backend runs its own way: SQLite's claim under its single writer, PostgreSQL's one-statement
//! inserts, claims and finishes). The schemas are in `migrations/<backend>/`, applied by
//! [`migrations`]'s one rule.
//!
//! SQLite ([`sqlite::SqliteStore`]) is the embedded default: WAL mode, fsynced commits, and a
//! single writer thread that commits many requests per fsync (group commit). PostgreSQL
//! ([`postgres::PostgresStore`]) is the shared store for several nodes. Every write about an
//! attempt is fenced by its lease token; a stale token gets [`StoreError::StaleLease`].
//!
//! Agent identities are exclusive: every take of one returns a fresh hold token ([`Held`]).
//! A claim checks, in its own transaction, that the identity is still held under the hold it
//! carries ([`StoreError::IdentityLost`] if not), and records the hold on the attempt; every
//! later write about the attempt (heartbeat, progress, checkpoint, result) is refused as
//! stale once the identity's hold changed. Leases, holds and registry heartbeats are judged
//! by one [`Clock`]: the database's on PostgreSQL. One test suite (`tests/tests/store.rs`)
//! holds both backends to the same behaviour.

mod backend;
mod health;
mod kv;
mod migrations;
mod ops;
pub mod postgres;
pub(crate) mod sql;
pub mod sqlite;
mod types;

pub use health::CannotWrite;
pub use kv::StoreKv;
pub use ops::activity::ActivityCounts;
pub use ops::listing::JobFilter;
pub use ops::retention::{ExpiredBlobs, ExpiredJobs};
pub use types::*;

use async_trait::async_trait;

/// Why a store call failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The attempt's lease is no longer valid (it expired and was reaped, or the attempt was
    /// recovered by a restarted agent): the write was refused and nothing changed.
    #[error(
        "the attempt's lease is no longer valid (it expired or was taken over); the write was refused"
    )]
    StaleLease,
    /// The agent identity a claim was made with is no longer held under the claimer's hold
    /// (another process took it over after the hold lapsed, or it was released): nothing was
    /// claimed. The claimer stops claiming with it.
    #[error(
        "agent identity {0} is no longer held by this process (its hold lapsed and another process took it over, or it was released); nothing was claimed: stop claiming with it and take a free identity"
    )]
    IdentityLost(String),
    /// No such job (or blob).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A job pinned to a task version that is not registered (it was unregistered, possibly
    /// after the submitter resolved `current`): nothing was stored.
    #[error(
        "version {version} of task {task} is not registered (it was unregistered); the job was not stored: submit against {task} (its current version) or another registered version"
    )]
    TaskVersionGone {
        /// The task's name.
        task: String,
        /// The version the job was pinned to.
        version: u32,
    },
    /// The database refused a write because a concurrent one touched the same data; nothing
    /// changed, and the same call may succeed at once.
    #[error("the database refused a write that raced another ({0}); nothing changed, try again")]
    Contention(String),
    /// The database cannot write (a full disk, a read-only database); nothing changed.
    #[error(transparent)]
    CannotWrite(CannotWrite),
    /// The database failed.
    #[error("the store failed: {0}")]
    Backend(String),
}

impl From<crate::lifecycle::tasks::Refusal> for StoreError {
    fn from(r: crate::lifecycle::tasks::Refusal) -> StoreError {
        use crate::lifecycle::tasks::Refusal;
        match r {
            Refusal::NotFound(m) => StoreError::NotFound(m),
            Refusal::Conflict(m) => StoreError::Conflict(m),
            Refusal::VersionGone { task, version } => StoreError::TaskVersionGone { task, version },
        }
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Components, stored once per blake3 hash.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Store a component by hash (content-addressed: the same bytes are stored once).
    /// Returns true when the bytes were new.
    async fn put_blob(&self, hash: &str, bytes: &[u8]) -> StoreResult<bool>;

    /// A stored component's bytes.
    async fn get_blob(&self, hash: &str) -> StoreResult<Option<Vec<u8>>>;
}

/// Jobs: storing, reading back, listing, cancelling and counting them.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Insert a job (status `queued`). With an idempotency key already used, nothing is
    /// inserted and the existing job is returned with `created = false`.
    async fn insert_job(&self, job: NewJob) -> StoreResult<Inserted>;

    /// One job with its attempts.
    async fn get_job(&self, id: &str) -> StoreResult<Option<JobRecord>>;

    /// The job an idempotency key named, with its admission report (JSON text).
    async fn job_by_idempotency_key(&self, key: &str) -> StoreResult<Option<(Job, String)>>;

    /// Job summaries (no input or output bytes are read), newest first, optionally by status,
    /// at most `limit`; `before` is the `seq` cursor of the last page.
    async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<JobSummary>>;

    /// Job summaries matching `filter` (by status, task, version, node), newest first, at
    /// most `limit`; `before` is the `seq` cursor of the last page.
    async fn list_jobs_where(
        &self,
        filter: JobFilter,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<JobSummary>>;

    /// The job's events, oldest first, after the event id `after`, at most `limit` (`None`:
    /// no such job).
    async fn events(
        &self,
        id: &str,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Option<Vec<Event>>>;

    /// The newest `limit` attempts of a job with their logs, oldest first (`None`: no such
    /// job).
    async fn job_logs(&self, id: &str, limit: u32) -> StoreResult<Option<Vec<Attempt>>>;

    /// Request cancellation: a queued job is cancelled at once; a running one is flagged and
    /// its agent stops it. Returns the job after the change.
    async fn cancel_job(&self, id: &str, now_ms: i64) -> StoreResult<Job>;

    /// Counts for metrics and readiness.
    async fn stats(&self) -> StoreResult<StoreStats>;

    /// Jobs over time: `count` buckets of `step_ms` after `from_ms`, oldest first (queue depth
    /// and running attempts at each bucket's end, jobs ended within it), for every node.
    async fn activity(
        &self,
        from_ms: i64,
        step_ms: i64,
        count: u32,
    ) -> StoreResult<Vec<ActivityCounts>>;

    /// Whether the store can take writes now ([`StoreError::CannotWrite`] with the reason if
    /// not): the last write failure of that kind, until a write succeeds again, and a probe
    /// (SQLite: the database's file system is writable and has room; PostgreSQL: the server
    /// is not a standby in recovery, nor read-only by default).
    async fn writable(&self) -> StoreResult<()>;
}

/// Attempts: claiming, the fenced writes of a running attempt, ending it, and losing attempts whose agent is gone (see [`crate::lifecycle`] for what each does to the job).
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Claim the next runnable job for `agent`, in one transaction: check that the identity
    /// is still held under `agent.hold` ([`StoreError::IdentityLost`] if not), mark the job
    /// running, count the attempt, and record the agent, its hold, the holding process and a
    /// fresh lease token. Only jobs whose class is `NULL` or one of `classes` (the
    /// compatibility classes the agent's catalog satisfies) are considered; others are
    /// skipped, never claimed and given back.
    async fn claim(
        &self,
        agent: &Held,
        classes: &[String],
        lease_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Option<Claim>>;

    /// Extend a lease. Returns whether cancellation was requested for the job. Like every
    /// write about an attempt below, refused with [`StoreError::StaleLease`] once the token
    /// is stale or the identity's hold is no longer the one the attempt was claimed under.
    async fn heartbeat(&self, token: &str, lease_ms: i64, now_ms: i64) -> StoreResult<bool>;

    /// Record progress of a running attempt (fenced).
    async fn set_progress(&self, token: &str, percent: u8, message: &str) -> StoreResult<()>;

    /// Save the job's checkpoint from a running attempt (fenced).
    async fn save_checkpoint(&self, token: &str, data: &[u8]) -> StoreResult<()>;

    /// The job's checkpoint.
    async fn load_checkpoint(&self, job_id: &str) -> StoreResult<Option<Vec<u8>>>;

    /// End an attempt and move its job on, fenced by the token.
    async fn finish_attempt(
        &self,
        token: &str,
        end: AttemptEnd,
        now_ms: i64,
    ) -> StoreResult<JobStatus>;

    /// [`finish_attempt`](Self::finish_attempt), then [`claim`](Self::claim) the agent's next
    /// attempt, in one transaction (one commit per job an agent runs).
    async fn finish_and_claim(
        &self,
        token: &str,
        end: AttemptEnd,
        agent: &Held,
        classes: &[String],
        lease_ms: i64,
        now_ms: i64,
    ) -> StoreResult<(JobStatus, Option<Claim>)>;

    /// Return to the queue (or fail, when out of attempts) what `dead`, the identity's
    /// previous holder, known to have died, left running under `agent`: its attempts claimed
    /// under another hold by that process (or before holds were recorded). Attempts of a
    /// holder not known dead are left alone, whatever their lease: they are fenced out (their
    /// hold is no longer the identity's), and the reaper returns them once their lease
    /// expires. Returns how many.
    async fn recover_agent(
        &self,
        agent: &Held,
        dead: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<u64>;

    /// Return attempts whose lease expired to the queue (or fail their jobs). Returns how many.
    async fn reap_expired(&self, now_ms: i64) -> StoreResult<u64>;

    /// Delayed jobs (and retries waiting out their backoff) whose time has come, at most
    /// `limit` of them, become ready (or parked, when their concurrency key has no free slot).
    /// Returns how many were due. Safe to run on every node at once.
    async fn promote_due(&self, now_ms: i64, limit: u32) -> StoreResult<u64>;

    /// When the next delayed job is due (ms since the epoch), if one is waiting.
    async fn next_due(&self) -> StoreResult<Option<i64>>;
}

/// Deployed tasks: immutable numbered versions, `current`, rollback, unregistering, resolution and the audit trail.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Deploy a task version: in one transaction, record the version (numbered after the
    /// task's highest), make it `current`, bump the task generation and write the audit row.
    /// Bytes identical to a registered version change nothing and return that version.
    async fn deploy_task(&self, version: NewTaskVersion) -> StoreResult<Moved>;

    /// Make `to` (default: the newest registered version below `current`) the task's
    /// `current`, with the generation bump and the audit row, in one transaction.
    async fn rollback_task(
        &self,
        task: &str,
        to: Option<u32>,
        actor: &str,
        request_id: &str,
        now_ms: i64,
    ) -> StoreResult<Moved>;

    /// Unregister a version (never the current one). While queued or running jobs pin it,
    /// nothing changes and the answer says how many and which.
    async fn delete_task_version(
        &self,
        task: &str,
        version: u32,
        actor: &str,
        request_id: &str,
        now_ms: i64,
    ) -> StoreResult<DeleteOutcome>;

    /// What `task@version` (`None`: `current`) names now.
    async fn resolve_task(&self, task: &str, version: Option<u32>) -> StoreResult<ResolvedTask>;

    /// The task generation: it grows with every deploy and rollback.
    async fn task_generation(&self) -> StoreResult<i64>;

    /// Record what `node` resolves `task`'s `current` to.
    async fn report_resolution(
        &self,
        node: &str,
        task: &str,
        version: u32,
        generation: i64,
        now_ms: i64,
    ) -> StoreResult<()>;

    /// Tasks by name after `after` (the last name of the previous page), at most `limit`.
    async fn list_tasks(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<TaskSummary>>;

    /// One task with its newest `limit` versions and audit entries, and its node resolutions.
    async fn get_task(&self, task: &str, limit: u32) -> StoreResult<Option<Task>>;
}

/// The cluster: the node registry, agent identities and compatibility classes.
#[async_trait]
pub trait NodeStore: Send + Sync {
    /// Compatibility classes first stored after `after_seq`, oldest first (a job's insert
    /// stores its class when it is new).
    async fn requirement_classes(&self, after_seq: i64) -> StoreResult<Vec<RequirementClass>>;

    /// One compatibility class's requirements (JSON), if stored.
    async fn requirement_class(&self, class: &str) -> StoreResult<Option<String>>;

    /// Register this process in the node registry (replacing an earlier row of the same
    /// process), live from `now_ms`.
    async fn register_node(&self, node: NodeRegistration) -> StoreResult<()>;

    /// Record a live node process's heartbeat, draining flag and in-flight count; read any
    /// drain or resume asked of it (cleared once its draining flag matches).
    async fn node_heartbeat(
        &self,
        process: &str,
        draining: bool,
        inflight: u32,
        now_ms: i64,
    ) -> StoreResult<Beat>;

    /// Ask every live process of `node` to drain (`true`) or resume (`false`) at its next
    /// heartbeat. Returns how many processes were asked (0: no live process has that name).
    async fn request_drain(&self, node: &str, drain: bool) -> StoreResult<u64>;

    /// Mark a process gone at once (a clean exit), releasing nothing else.
    async fn leave_node(&self, process: &str, now_ms: i64) -> StoreResult<()>;

    /// Every live node process, and those gone since `gone_since_ms`, oldest first.
    async fn list_nodes(&self, gone_since_ms: i64) -> StoreResult<Vec<NodeRecord>>;

    /// Mark gone every live process whose last heartbeat is older than `now_ms - ttl_ms`: in
    /// one transaction, release the identities it held and expire the leases of the attempts
    /// its agents run (so [`reap_expired`](Self::reap_expired) returns them to the queue at
    /// once). Rows gone for more than a day are deleted. Returns the processes marked gone.
    async fn reap_gone_nodes(&self, ttl_ms: i64, now_ms: i64) -> StoreResult<Vec<String>>;

    /// Who holds agent identity `id` (`None`: the identity was never used).
    async fn identity_holder(&self, id: &str) -> StoreResult<Option<IdentityHold>>;

    /// Take identity `id` for `holder` if its holder is still `expected` (compare-and-set;
    /// `None` = free). Returns the fresh hold token when it was taken: claims carry it, and
    /// it is void once another take, a release or the registry's reaping ends the hold.
    async fn take_identity(
        &self,
        id: &str,
        node: &str,
        expected: Option<&str>,
        holder: &str,
        lease_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Option<String>>;

    /// Extend every identity `holder` holds; returns how many it holds.
    async fn renew_identities(&self, holder: &str, lease_ms: i64, now_ms: i64) -> StoreResult<u64>;

    /// Give up every identity `holder` holds; returns how many.
    async fn release_identities(&self, holder: &str, now_ms: i64) -> StoreResult<u64>;
}

/// The `driftless:kv` data, scoped per task. Attempts read it through these calls; their
/// writes commit only with their success ([`AttemptEnd::kv`]).
#[async_trait]
pub trait KvStore: Send + Sync {
    /// kv: the value under (scope, bucket, key), with its version.
    async fn kv_read(&self, scope: &str, bucket: &str, key: &str) -> StoreResult<KvValue>;

    /// kv: the keys present under a prefix, with their versions, in byte order.
    async fn kv_keys(
        &self,
        scope: &str,
        bucket: &str,
        prefix: &str,
    ) -> StoreResult<Vec<(String, u64)>>;
}

/// API tokens: only the hash of each secret is stored, with its name and scopes, so every
/// node sharing the store knows every token.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Store a new token ([`StoreError::Conflict`] when its name is taken).
    async fn create_token(&self, token: TokenRecord) -> StoreResult<()>;

    /// Every token, by name.
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>>;

    /// Revoke (delete) a token; whether it existed.
    async fn revoke_token(&self, name: &str) -> StoreResult<bool>;

    /// Record that a token was used at `now_ms`.
    async fn touch_token(&self, name: &str, now_ms: i64) -> StoreResult<()>;
}

/// Retention: what is old is deleted in bounded batches, each one transaction, so claims never
/// wait behind a long one. Every call is safe on several nodes at once.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Delete at most `limit` jobs that finished before `before_ms`, oldest first, with their
    /// attempts, events and job-scoped kv data, in one transaction. A queued or running job is
    /// never deleted.
    async fn expire_jobs(&self, before_ms: i64, limit: u32) -> StoreResult<ExpiredJobs>;

    /// Delete at most `limit` components unused since before `before_ms` (stored or uploaded
    /// again) that no job and no task version references.
    async fn expire_blobs(&self, before_ms: i64, limit: u32) -> StoreResult<ExpiredBlobs>;

    /// Give freed space back to the file system, one bounded step (SQLite: an incremental
    /// vacuum of at most 1000 pages). Returns the bytes given back and whether more are free;
    /// PostgreSQL reuses freed space itself (autovacuum) and answers `(0, false)`.
    async fn reclaim_space(&self) -> StoreResult<(u64, bool)>;
}

/// Cron schedules: each names a task and the input of the jobs its ticks make. When ticks fall
/// and which fires is [`crate::lifecycle::schedules`]'s to decide; the store keeps each
/// schedule's next tick and fires a tick at most once.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Create a schedule, or replace it (a new revision, ticking from its `next_tick_ms`);
    /// true when created.
    async fn put_schedule(&self, schedule: NewSchedule) -> StoreResult<bool>;

    /// One schedule.
    async fn get_schedule(&self, name: &str) -> StoreResult<Option<Schedule>>;

    /// Schedules by name after `after` (the last name of the previous page), at most `limit`.
    async fn list_schedules(&self, after: Option<&str>, limit: u32) -> StoreResult<Vec<Schedule>>;

    /// Delete a schedule; whether it existed. Its jobs stay.
    async fn delete_schedule(&self, name: &str) -> StoreResult<bool>;

    /// Schedules whose next tick is at or before `now_ms`, the most overdue first, at most
    /// `limit`.
    async fn due_schedules(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<Schedule>>;

    /// The earliest next tick of any schedule.
    async fn next_schedule_tick(&self) -> StoreResult<Option<i64>>;

    /// Fire the tick `job` carries ([`NewJob::schedule`]), in one transaction: move the
    /// schedule on to the tick's `next_ms` if its revision and next tick are still those the
    /// firing read (compare-and-set), and store the job. `None`, with nothing changed, when
    /// another firing moved the schedule on first, or it was replaced or deleted meanwhile: of
    /// several nodes firing one tick at once, exactly one stores its job. A job pinned to a
    /// version unregistered meanwhile is refused ([`StoreError::TaskVersionGone`]) and nothing
    /// changes.
    async fn fire_schedule(&self, job: NewJob) -> StoreResult<Option<Inserted>>;

    /// The newest `limit` jobs a schedule made, newest tick first.
    async fn schedule_jobs(&self, name: &str, limit: u32) -> StoreResult<Vec<ScheduledJob>>;
}

/// The one clock leases, identity holds and the registry's heartbeats are judged by.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch, by the store's clock: the database server's on
    /// PostgreSQL (so every node judges a lease by the same clock, whatever its own says), this
    /// machine's on SQLite (one machine). Callers pass it as the `now_ms` of lease, hold and
    /// registry calls.
    fn now(&self) -> i64;
}

/// The durable store: every concern's trait, implemented by both backends
/// ([`sqlite::SqliteStore`], [`postgres::PostgresStore`]). Callers hold an `Arc<dyn Store>`
/// and bring the traits they call into scope (`use crate::store::*` brings them all).
pub trait Store:
    BlobStore
    + JobStore
    + AttemptStore
    + TaskStore
    + NodeStore
    + KvStore
    + TokenStore
    + RetentionStore
    + ScheduleStore
    + Clock
    + 'static
{
}

impl<
    T: BlobStore
        + JobStore
        + AttemptStore
        + TaskStore
        + NodeStore
        + KvStore
        + TokenStore
        + RetentionStore
        + ScheduleStore
        + Clock
        + 'static,
> Store for T
{
}

/// Milliseconds since the Unix epoch by this machine's clock (shifted by
/// `DRIFTLESS_CLOCK_OFFSET_MS` in tests that skew it, see [`crate::fault`]). Leases and holds
/// go by [`Clock::now`] instead.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
        + crate::fault::clock_offset_ms()
}
