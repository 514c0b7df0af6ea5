//! The shared store: PostgreSQL, for several nodes on one database.
//!
//! Every call takes a connection from a pool ([`PostgresOptions::max_connections`], 16 by
//! default) and runs as one statement or one short transaction of prepared (cached)
//! statements; commits are durable (the server's `synchronous_commit`). Claims take the head of
//! the `queue` table (one row per queued job) with `FOR UPDATE SKIP LOCKED`, so claimers on any
//! number of nodes never wait for each other and never share an attempt. Every write about an
//! attempt is fenced by its lease token, like in SQLite; locks are taken attempt before job and
//! queue row before job.
//!
//! Migrations run at connect, in one transaction under a cluster-wide advisory lock, tracked in
//! `schema_migrations`: nodes starting together apply each migration exactly once.
//!
//! Wake-ups travel over LISTEN/NOTIFY: `driftless_jobs` after jobs are queued,
//! `driftless_tasks` (payload: the task's name) when a task's `current` moves, and
//! `driftless_done` (payload: job ids) when jobs finish. See [`PostgresStore::listen`] and
//! [`PostgresStore::listen_finished`].

use super::*;

mod jobs;
mod kv;
mod nodes;
mod notify;
mod tasks;

pub use notify::Notice;

use crate::host::KvBackendError;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
    TimeoutType,
};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{NoTls, Row};

/// The schema, one file per version; `schema_migrations` records which ones a database has.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres_0001_init.sql"),
    include_str!("migrations/postgres_0002_cluster.sql"),
];

/// The advisory lock key that serialises migrations across nodes ("driftles" in ASCII).
const MIGRATION_LOCK: i64 = 0x6472_6966_746c_6573;

/// How a [`PostgresStore`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Most connections the pool opens (default 16). Each call holds one connection for the
    /// duration of one statement or transaction.
    pub max_connections: usize,
    /// How long opening a connection may take (default 10 s).
    pub connect_timeout: Duration,
    /// How long a call waits for a free connection before failing (default 30 s).
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    target: String,
    options: PostgresOptions,
    /// Sends `driftless_jobs` and `driftless_done` after commits.
    notifier: notify::Notifier,
    /// Compatibility classes known to be stored (classes are never deleted).
    known_classes: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connect to `url` (`postgres://user[:password]@host[:port]/database`, or libpq's
    /// `key=value` form) with the default [`PostgresOptions`], and bring the schema up to date.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// [`connect`](Self::connect) with explicit options.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> StoreResult<PostgresStore> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Backend(format!(
                "the PostgreSQL address is not valid ({e}); check --store / DRIFTLESS_STORE (postgres://user[:password]@host[:port]/database)"
            ))
        })?;
        if config.get_application_name().is_none() {
            config.application_name("driftless");
        }
        config.connect_timeout(options.connect_timeout);
        let target = describe(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(options.connect_timeout))
            .wait_timeout(Some(options.acquire_timeout))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))?;
        let notifier = notify::Notifier::start(pool.clone());
        let store = PostgresStore {
            pool,
            config,
            target,
            options,
            notifier,
            known_classes: Mutex::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Where this store connects (`user@host:port/database`; never the password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Subscribe to the store's notifications. Each call opens one dedicated connection that
    /// LISTENs on `driftless_jobs` and `driftless_tasks` (it is listening when this returns)
    /// and forwards what arrives; if that connection drops it reconnects with backoff and then
    /// sends [`Notice::Reconnected`], since notices may have been missed meanwhile. It closes
    /// once every receiver is dropped. Notices are wake-ups, not a log: polling stays the
    /// backstop.
    pub async fn listen(&self) -> StoreResult<broadcast::Receiver<Notice>> {
        notify::listen(&self.config, &self.target, notify::notices()).await
    }

    /// Subscribe to finished jobs: the ids of jobs that reached a final status (succeeded,
    /// failed, cancelled) through any node, shortly after their commit. Like
    /// [`listen`](Self::listen), one dedicated connection per call that reconnects by itself;
    /// ids announced while it was down are not repeated, so waiters keep a polling backstop.
    pub async fn listen_finished(&self) -> StoreResult<broadcast::Receiver<String>> {
        notify::listen(&self.config, &self.target, notify::finished()).await
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(TimeoutType::Wait) => StoreError::Backend(format!(
                "no connection to PostgreSQL at {} became free within {:?} (all {} are busy); the database is slow or overloaded",
                self.target, self.options.acquire_timeout, self.options.max_connections
            )),
            PoolError::Timeout(_) => StoreError::Backend(format!(
                "connecting to PostgreSQL at {} timed out after {:?}; check --store / DRIFTLESS_STORE and that the server is running and reachable",
                self.target, self.options.connect_timeout
            )),
            PoolError::Backend(e) => connect_error(&self.target, &e),
            other => StoreError::Backend(format!(
                "the PostgreSQL connection pool failed: {other}"
            )),
        })
    }

    /// Apply the migrations this database lacks, once across every node starting at once.
    async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_ms BIGINT NOT NULL
             )",
        )
        .await
        .map_err(pg)?;
        let applied: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        let known = MIGRATIONS.len() as i32;
        if applied > known {
            return Err(StoreError::Backend(format!(
                "the PostgreSQL database at {} has schema version {applied}, newer than this driftless knows (versions 1 to {known}): upgrade driftless, or point --store / DRIFTLESS_STORE at another database",
                self.target
            )));
        }
        for (version, sql) in (1..).zip(MIGRATIONS).skip(applied as usize) {
            tx.batch_execute(sql).await.map_err(|e| {
                StoreError::Backend(format!(
                    "migration {version} failed on {}: {}",
                    self.target,
                    db_message(&e)
                ))
            })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                &[&version, &now_ms()],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    /// Store a job's class before the job (its foreign key), unless known to be stored.
    async fn ensure_class(&self, c: &mut Object, r: &Requirements, now: i64) -> StoreResult<()> {
        if self
            .known_classes
            .lock()
            .expect("class cache")
            .contains(&r.class)
        {
            return Ok(());
        }
        nodes::ensure_class(c, r, now).await?;
        self.known_classes
            .lock()
            .expect("class cache")
            .insert(r.class.clone());
        Ok(())
    }

    /// An attempt's end was recorded: announce its job when it is finished.
    fn ended(&self, ended: jobs::Ended) -> JobStatus {
        if ended.status.is_terminal() {
            self.notifier.finished([ended.job]);
        }
        ended.status
    }
}

/// `user@host:port/database`, for messages: never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config
                .get_ports()
                .get(i)
                .or(config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                tokio_postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
                tokio_postgres::config::Host::Unix(p) => format!("{}:{port}", p.display()),
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let hosts = if hosts.is_empty() {
        "(no host)".to_string()
    } else {
        hosts.join(",")
    };
    format!("{user}{hosts}/{}", config.get_dbname().unwrap_or(""))
}

fn connect_error(target: &str, e: &tokio_postgres::Error) -> StoreError {
    StoreError::Backend(format!(
        "cannot connect to PostgreSQL at {target}: {}; check --store / DRIFTLESS_STORE and that the server is running",
        db_message(e)
    ))
}

/// The server's own words for a database error, else the client's.
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Map a PostgreSQL error from a call.
pub(super) fn pg(e: tokio_postgres::Error) -> StoreError {
    if e.as_db_error().is_some() {
        StoreError::Backend(format!(
            "PostgreSQL refused the request: {}",
            db_message(&e)
        ))
    } else if e.is_closed() {
        StoreError::Backend(format!(
            "the connection to PostgreSQL was lost ({e}); check that the server is running, then retry"
        ))
    } else {
        StoreError::Backend(format!("PostgreSQL failed: {e}"))
    }
}

/// Whether the error is an integrity constraint violation (SQLSTATE class 23).
fn is_constraint(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code().starts_with("23"))
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Rows of a cached prepared statement.
async fn rows(c: &impl GenericClient, sql: &str, p: Params<'_>) -> StoreResult<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(pg)?;
    c.query(&stmt, p).await.map_err(pg)
}

/// The one row of a cached prepared statement.
async fn one(c: &impl GenericClient, sql: &str, p: Params<'_>) -> StoreResult<Row> {
    let stmt = c.prepare_cached(sql).await.map_err(pg)?;
    c.query_one(&stmt, p).await.map_err(pg)
}

/// The row, if any, of a cached prepared statement.
async fn opt(c: &impl GenericClient, sql: &str, p: Params<'_>) -> StoreResult<Option<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(pg)?;
    c.query_opt(&stmt, p).await.map_err(pg)
}

/// Run a cached prepared statement; how many rows it changed.
async fn exec(c: &impl GenericClient, sql: &str, p: Params<'_>) -> StoreResult<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(pg)?;
    c.execute(&stmt, p).await.map_err(pg)
}

/// Column `i` of a row.
fn col<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> StoreResult<T> {
    r.try_get(i).map_err(pg)
}

/// A version, attempt number or count as PostgreSQL `INTEGER`.
fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// An `INTEGER` column that holds a non-negative number.
fn uint(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

#[async_trait]
impl Store for PostgresStore {
    async fn put_blob(&self, hash: &str, bytes: &[u8]) -> StoreResult<bool> {
        let c = self.client().await?;
        jobs::put_blob(&c, hash, bytes).await
    }

    async fn get_blob(&self, hash: &str) -> StoreResult<Option<Vec<u8>>> {
        let c = self.client().await?;
        jobs::get_blob(&c, hash).await
    }

    async fn insert_job(&self, job: NewJob) -> StoreResult<Inserted> {
        let mut c = self.client().await?;
        if let Some(r) = &job.requirements {
            self.ensure_class(&mut c, r, job.now_ms).await?;
        }
        let inserted = jobs::insert(&c, &job).await?;
        if inserted.created {
            self.notifier.jobs_queued();
        }
        Ok(inserted)
    }

    async fn get_job(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        let c = self.client().await?;
        jobs::get(&c, id).await
    }

    async fn job_by_idempotency_key(&self, key: &str) -> StoreResult<Option<(Job, String)>> {
        let c = self.client().await?;
        jobs::by_idempotency_key(&c, key).await
    }

    async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        let c = self.client().await?;
        jobs::list(&c, status, before, limit).await
    }

    async fn events(&self, id: &str) -> StoreResult<Vec<Event>> {
        let c = self.client().await?;
        jobs::events(&c, id).await
    }

    async fn cancel_job(&self, id: &str, now: i64) -> StoreResult<Job> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let job = jobs::cancel(&tx, id, now).await?;
        tx.commit().await.map_err(pg)?;
        if job.status.is_terminal() {
            self.notifier.finished([job.id.clone()]);
        }
        Ok(job)
    }

    async fn claim(
        &self,
        agent: &str,
        classes: &[String],
        lease_ms: i64,
        now: i64,
    ) -> StoreResult<Option<Claim>> {
        let c = self.client().await?;
        jobs::claim(&c, agent, classes, lease_ms, now).await
    }

    async fn heartbeat(&self, token: &str, lease_ms: i64, now: i64) -> StoreResult<bool> {
        let c = self.client().await?;
        jobs::heartbeat(&c, token, lease_ms, now).await
    }

    async fn set_progress(&self, token: &str, percent: u8, message: &str) -> StoreResult<()> {
        let c = self.client().await?;
        jobs::set_progress(&c, token, percent, message).await
    }

    async fn save_checkpoint(&self, token: &str, data: &[u8]) -> StoreResult<()> {
        let c = self.client().await?;
        jobs::save_checkpoint(&c, token, data).await
    }

    async fn load_checkpoint(&self, job_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let c = self.client().await?;
        jobs::load_checkpoint(&c, job_id).await
    }

    async fn finish_attempt(
        &self,
        token: &str,
        end: AttemptEnd,
        now: i64,
    ) -> StoreResult<JobStatus> {
        let c = self.client().await?;
        let ended = jobs::finish(&c, token, &end, now).await?;
        Ok(self.ended(ended))
    }

    async fn finish_and_claim(
        &self,
        token: &str,
        end: AttemptEnd,
        agent: &str,
        classes: &[String],
        lease_ms: i64,
        now: i64,
    ) -> StoreResult<(JobStatus, Option<Claim>)> {
        let mut c = self.client().await?;
        let (ended, claim) =
            jobs::finish_and_claim(&mut c, token, &end, (agent, classes, lease_ms), now).await?;
        Ok((self.ended(ended), claim))
    }

    async fn requirement_classes(&self, after_seq: i64) -> StoreResult<Vec<RequirementClass>> {
        let c = self.client().await?;
        nodes::classes_after(&c, after_seq).await
    }

    async fn requirement_class(&self, class: &str) -> StoreResult<Option<String>> {
        let c = self.client().await?;
        nodes::class_spec(&c, class).await
    }

    async fn register_node(&self, node: NodeRegistration) -> StoreResult<()> {
        let c = self.client().await?;
        nodes::register(&c, &node).await
    }

    async fn node_heartbeat(
        &self,
        process: &str,
        draining: bool,
        inflight: u32,
        now: i64,
    ) -> StoreResult<bool> {
        let c = self.client().await?;
        nodes::heartbeat(&c, process, draining, inflight, now).await
    }

    async fn leave_node(&self, process: &str, now: i64) -> StoreResult<()> {
        let c = self.client().await?;
        nodes::leave(&c, process, now).await
    }

    async fn list_nodes(&self, gone_since_ms: i64) -> StoreResult<Vec<NodeRecord>> {
        let c = self.client().await?;
        nodes::list(&c, gone_since_ms).await
    }

    async fn reap_gone_nodes(&self, ttl_ms: i64, now: i64) -> StoreResult<Vec<String>> {
        let c = self.client().await?;
        nodes::reap_gone(&c, ttl_ms, now).await
    }

    async fn recover_agent(&self, agent: &str, node: &str, now: i64) -> StoreResult<u64> {
        let mut c = self.client().await?;
        let (lost, failed) = nodes::recover_agent(&mut c, agent, node, now).await?;
        self.notifier.finished(failed);
        Ok(lost)
    }

    async fn identity_holder(&self, id: &str) -> StoreResult<Option<IdentityHold>> {
        let c = self.client().await?;
        nodes::identity_holder(&c, id).await
    }

    async fn take_identity(
        &self,
        id: &str,
        node: &str,
        expected: Option<&str>,
        holder: &str,
        lease_ms: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let mut c = self.client().await?;
        nodes::take_identity(&mut c, id, node, expected, holder, lease_ms, now).await
    }

    async fn renew_identities(&self, holder: &str, lease_ms: i64, now: i64) -> StoreResult<u64> {
        let c = self.client().await?;
        nodes::renew_identities(&c, holder, lease_ms, now).await
    }

    async fn release_identities(&self, holder: &str, now: i64) -> StoreResult<u64> {
        let c = self.client().await?;
        nodes::release_identities(&c, holder, now).await
    }

    async fn reap_expired(&self, now: i64) -> StoreResult<u64> {
        let c = self.client().await?;
        let (lost, failed) =
            jobs::lose_attempts(&c, jobs::Lose::Expired(now), now, "its lease expired").await?;
        self.notifier.finished(failed);
        Ok(lost)
    }

    async fn deploy_task(&self, version: NewTaskVersion) -> StoreResult<Moved> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let moved = tasks::deploy(&tx, &version).await?;
        tx.commit().await.map_err(pg)?;
        Ok(moved)
    }

    async fn rollback_task(
        &self,
        task: &str,
        to: Option<u32>,
        actor: &str,
        request_id: &str,
        now: i64,
    ) -> StoreResult<Moved> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let moved = tasks::rollback(&tx, task, to, (actor, request_id), now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(moved)
    }

    async fn delete_task_version(
        &self,
        task: &str,
        version: u32,
        actor: &str,
        request_id: &str,
        now: i64,
    ) -> StoreResult<DeleteOutcome> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let outcome = tasks::delete_version(&tx, task, version, (actor, request_id), now).await?;
        tx.commit().await.map_err(pg)?;
        Ok(outcome)
    }

    async fn resolve_task(&self, task: &str, version: Option<u32>) -> StoreResult<ResolvedTask> {
        let c = self.client().await?;
        tasks::resolve(&c, task, version).await
    }

    async fn task_generation(&self) -> StoreResult<i64> {
        let c = self.client().await?;
        tasks::generation(&c).await
    }

    async fn report_resolution(
        &self,
        node: &str,
        task: &str,
        version: u32,
        generation: i64,
        now: i64,
    ) -> StoreResult<()> {
        let c = self.client().await?;
        tasks::report_resolution(&c, node, task, version, generation, now).await
    }

    async fn list_tasks(&self) -> StoreResult<Vec<TaskSummary>> {
        let c = self.client().await?;
        tasks::list(&c).await
    }

    async fn get_task(&self, task: &str) -> StoreResult<Option<Task>> {
        let c = self.client().await?;
        tasks::get(&c, task).await
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        let c = self.client().await?;
        jobs::stats(&c).await
    }

    async fn kv_get(&self, scope: &str, bucket: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let c = self.client().await?;
        kv::get(&c, scope, bucket, key).await
    }

    async fn kv_set(&self, scope: &str, bucket: &str, key: &str, value: &[u8]) -> StoreResult<()> {
        let c = self.client().await?;
        kv::set(&c, scope, bucket, key, value).await
    }

    async fn kv_delete(&self, scope: &str, bucket: &str, key: &str) -> StoreResult<bool> {
        let c = self.client().await?;
        kv::delete(&c, scope, bucket, key).await
    }

    async fn kv_list(&self, scope: &str, bucket: &str, prefix: &str) -> StoreResult<Vec<String>> {
        let c = self.client().await?;
        kv::list(&c, scope, bucket, prefix).await
    }

    async fn kv_increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> StoreResult<Result<i64, KvBackendError>> {
        let mut c = self.client().await?;
        kv::increment(&mut c, scope, bucket, key, delta).await
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}
