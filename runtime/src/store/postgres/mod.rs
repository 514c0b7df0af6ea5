//! The shared store: PostgreSQL, for several nodes on one database.
//!
//! Every call takes a connection from a pool ([`PostgresOptions::max_connections`], 16 by
//! default) and runs as one statement or one short transaction of prepared (cached)
//! statements; commits are durable (the server's `synchronous_commit`), except lazy writes
//! (a claim on its own, a heartbeat: [`Backend::atomic_lazy`]), which run on a few
//! connections of their own with `synchronous_commit = off`. Claims take the head of
//! the `queue` table (one row per queued job) with `FOR UPDATE SKIP LOCKED`, so claimers on any
//! number of nodes never wait for each other and never share an attempt. Every write about an
//! attempt is fenced by its lease token, like in SQLite; locks are taken attempt before job and
//! queue row before job.
//!
//! Migrations run at connect, in one transaction under a cluster-wide advisory lock, tracked in
//! `schema_migrations`: nodes starting together apply each migration exactly once.
//!
//! Wake-ups travel over LISTEN/NOTIFY: `driftless_jobs` after jobs are queued,
//! `driftless_tasks` (payload: the task's name) when a task's `current` moves,
//! `driftless_components` (payload: its hash) when retention deletes a component, and
//! `driftless_done` (payload: job ids) when jobs finish. See [`PostgresStore::listen`] and
//! [`PostgresStore::listen_finished`].

use super::*;

mod clock;
mod notify;
mod queue;
mod sql;
mod tls;

use sql::Pg;

pub use notify::Notice;

use super::backend::{Backend, BoxFuture, op};
use super::health::WriteHealth;
use super::migrations;
use super::ops::{self, jobs::commits_kv};
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
    TimeoutType,
};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres_rustls::MakeRustlsConnect;

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
    /// Connections whose commits do not wait for the WAL flush (`synchronous_commit = off`),
    /// for lazy writes only.
    lazy: Pool,
    config: tokio_postgres::Config,
    /// TLS as the address's `sslmode` asks.
    tls: MakeRustlsConnect,
    target: String,
    options: PostgresOptions,
    /// Sends `driftless_jobs` and `driftless_done` after commits.
    notifier: notify::Notifier,
    /// Compatibility classes known to be stored (classes are never deleted).
    known_classes: Mutex<HashSet<String>>,
    /// The server's clock, which leases and holds go by.
    clock: std::sync::Arc<clock::ServerClock>,
    /// The last write that found the database unable to write, until one succeeds.
    health: WriteHealth,
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
        let (url, tls) = tls::PgTls::split(url)?;
        let tls = tls.connector()?;
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
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = pool(manager, options.max_connections, &options)?;
        let mut lazy_config = config.clone();
        let sync_off = "-c synchronous_commit=off";
        lazy_config.options(&match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} {sync_off}"),
            _ => sync_off.to_string(),
        });
        let lazy_manager = Manager::from_config(
            lazy_config,
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let lazy = self::pool(lazy_manager, (options.max_connections / 4).max(2), &options)?;
        let notifier = notify::Notifier::start(pool.clone());
        let clock = clock::ServerClock::new(pool.clone());
        let store = PostgresStore {
            pool,
            lazy,
            config,
            tls,
            target,
            options,
            notifier,
            known_classes: Mutex::default(),
            clock,
            health: WriteHealth::default(),
        };
        store.migrate().await?;
        store.clock.sync(&store.client().await?).await?;
        Ok(store)
    }

    /// Where this store connects (`user@host:port/database`; never the password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Subscribe to the store's notifications. Each call opens one dedicated connection that
    /// LISTENs on `driftless_jobs`, `driftless_tasks` and `driftless_components` (it is
    /// listening when this returns)
    /// and forwards what arrives; if that connection drops it reconnects with backoff and then
    /// sends [`Notice::Reconnected`], since notices may have been missed meanwhile. It closes
    /// once every receiver is dropped. Notices are wake-ups, not a log: polling stays the
    /// backstop.
    pub async fn listen(&self) -> StoreResult<broadcast::Receiver<Notice>> {
        notify::listen(&self.config, &self.tls, &self.target, notify::notices()).await
    }

    /// Subscribe to finished jobs: the ids of jobs that reached a final status (succeeded,
    /// failed, cancelled) through any node, shortly after their commit. Like
    /// [`listen`](Self::listen), one dedicated connection per call that reconnects by itself;
    /// ids announced while it was down are not repeated, so waiters keep a polling backstop.
    pub async fn listen_finished(&self) -> StoreResult<broadcast::Receiver<String>> {
        notify::listen(&self.config, &self.tls, &self.target, notify::finished()).await
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(|e| self.unpooled(e))
    }

    /// A connection for lazy writes (see [`Backend::atomic_lazy`]).
    async fn lazy_client(&self) -> StoreResult<Object> {
        self.lazy.get().await.map_err(|e| self.unpooled(e))
    }

    /// Why no connection could be had.
    fn unpooled(&self, e: PoolError) -> StoreError {
        match e {
            PoolError::Timeout(TimeoutType::Wait) => StoreError::Backend(format!(
                "no connection to PostgreSQL at {} became free within {:?} (all {} are busy); the database is slow or overloaded",
                self.target, self.options.acquire_timeout, self.options.max_connections
            )),
            PoolError::Timeout(_) => StoreError::Backend(format!(
                "connecting to PostgreSQL at {} timed out after {:?}; check --store / DRIFTLESS_STORE and that the server is running and reachable",
                self.target, self.options.connect_timeout
            )),
            PoolError::Backend(e) => connect_error(&self.target, &e),
            other => StoreError::Backend(format!("the PostgreSQL connection pool failed: {other}")),
        }
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
        let database = format!("at {}", self.target);
        let applied = usize::try_from(applied).unwrap_or(0);
        for (version, sql) in migrations::pending(migrations::POSTGRES, applied, &database)? {
            tx.batch_execute(sql)
                .await
                .map_err(|e| migrations::failed(version, &database, db_message(&e)))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                &[&(version as i32), &now_ms()],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    /// Store a job's class before the job (its foreign key), in a transaction of its own,
    /// unless known to be stored.
    async fn ensure_class(&self, r: &Requirements, now: i64) -> StoreResult<()> {
        if self
            .known_classes
            .lock()
            .expect("class cache")
            .contains(&r.class)
        {
            return Ok(());
        }
        let class = r.clone();
        self.atomic(op!(|s| ops::nodes::ensure_class(s, &class, now)))
            .await?;
        self.known_classes
            .lock()
            .expect("class cache")
            .insert(r.class.clone());
        Ok(())
    }

    /// Run `op` in a transaction opened by `begin` on `client`: committed when it succeeds,
    /// rolled back when it fails.
    async fn transaction<R: Send + 'static>(
        &self,
        client: Object,
        begin: &'static str,
        op: impl for<'s> FnOnce(&'s mut Pg) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        let mut c = Pg::new(client);
        c.begin(begin).await?;
        match op(&mut c).await {
            Ok(v) => {
                c.commit().await?;
                Ok(v)
            }
            Err(e) => {
                c.rollback().await;
                Err(e)
            }
        }
    }

    /// Run `op` in a serializable transaction (PostgreSQL refuses it with
    /// [`StoreError::Contention`] when a concurrent one makes it unserializable).
    async fn serializable<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Pg) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        self.transaction(
            self.client().await?,
            "BEGIN ISOLATION LEVEL SERIALIZABLE",
            op,
        )
        .await
    }

    /// End a succeeding attempt with kv effects: the shared finish (check the reads, apply the
    /// writes) in a serializable transaction, run again after a short random pause when
    /// PostgreSQL refuses it for a concurrent commit (the next run sees that commit, and finds
    /// the conflict or not). After 60 refusals the error stands; the attempt's lease then runs
    /// out and the job runs again, its writes discarded.
    async fn finish_with_kv(
        &self,
        token: String,
        end: AttemptEnd,
        now: i64,
    ) -> StoreResult<JobStatus> {
        let mut tries = 0;
        loop {
            let (token, end) = (token.clone(), end.clone());
            let run = self.serializable(op!(|s| ops::jobs::finish(s, &token, &end, now)));
            match run.await {
                Err(StoreError::Contention(_)) if tries < 60 => {
                    // Concurrent finishes abort each other in waves: spread the retries out.
                    tries += 1;
                    let mut jitter = [0u8; 2];
                    getrandom::fill(&mut jitter).expect("the OS random source works");
                    let cap = 1u64 << tries.min(6);
                    let wait = 1 + u64::from(u16::from_le_bytes(jitter)) % cap;
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                Ok((status, job)) => {
                    if status.is_terminal() {
                        self.notifier.finished([job]);
                    }
                    return Ok(status);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// An attempt's end was recorded: announce its job when it is finished.
    /// The shared finish in one transaction: for the attempts the one-statement finish leaves
    /// alone (a job with a concurrency key, whose key it settles; or a stale token, which it
    /// refuses).
    async fn finish_shared(
        &self,
        token: String,
        end: AttemptEnd,
        now: i64,
    ) -> StoreResult<JobStatus> {
        let (status, job) = self
            .atomic(op!(|s| ops::jobs::finish(s, &token, &end, now)))
            .await?;
        if status.is_terminal() {
            self.notifier.finished([job]);
        }
        // Settling its key may have made parked jobs ready.
        self.notifier.jobs_queued();
        Ok(status)
    }

    fn ended(&self, ended: queue::Ended) -> JobStatus {
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
    let message = db_message(e);
    let what_to_do = if message.contains("TLS") {
        "check sslmode and sslrootcert in --store / DRIFTLESS_STORE: sslmode=require encrypts without checking the certificate, verify-ca and verify-full check it against sslrootcert=FILE (or the system's roots)"
    } else {
        "check --store / DRIFTLESS_STORE and that the server is running"
    };
    StoreError::Backend(format!(
        "cannot connect to PostgreSQL at {target}: {message}; {what_to_do}"
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
    let raced = e.code().is_some_and(|c| {
        *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
            || *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
    });
    let code = e.code();
    if raced {
        StoreError::Contention(db_message(&e))
    } else if code == Some(&tokio_postgres::error::SqlState::DISK_FULL) {
        StoreError::CannotWrite(CannotWrite::DiskFull(format!(
            "PostgreSQL: {}",
            db_message(&e)
        )))
    } else if code == Some(&tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION) {
        StoreError::CannotWrite(CannotWrite::ReadOnly(format!(
            "PostgreSQL: {}",
            db_message(&e)
        )))
    } else if is_constraint(&e) {
        StoreError::Conflict(db_message(&e))
    } else if e.as_db_error().is_some() {
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

impl Backend for PostgresStore {
    type Sql = Pg;

    async fn read<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Pg) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        op(&mut Pg::new(self.client().await?)).await
    }

    async fn write<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Pg) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        let written = op(&mut Pg::new(self.client().await?)).await;
        self.health.saw(&written);
        written
    }

    async fn atomic<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Pg) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        let written = self.transaction(self.client().await?, "BEGIN", op).await;
        self.health.saw(&written);
        written
    }

    async fn atomic_lazy<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Pg) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        let written = self
            .transaction(self.lazy_client().await?, "BEGIN", op)
            .await;
        self.health.saw(&written);
        written
    }

    async fn insert(&self, job: NewJob) -> StoreResult<Inserted> {
        if let Some(r) = &job.requirements {
            self.ensure_class(r, job.now_ms).await?;
        }
        let inserted = if job.turn.concurrency.is_some() || job.schedule.is_some() {
            // Its key is settled in the same transaction (see `ops::turns`); a schedule's job
            // is stored with its schedule and tick.
            self.atomic(op!(|s| ops::jobs::insert(s, &job))).await
        } else {
            let inserted = queue::insert(&self.client().await?, &job).await;
            self.health.saw(&inserted);
            inserted
        };
        let inserted = inserted?;
        if inserted.created {
            self.notifier.jobs_queued();
        }
        Ok(inserted)
    }

    async fn writable(&self) -> StoreResult<()> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on'",
                &[],
            )
            .await
            .map_err(pg)?;
        let read_only = |why: String| Err(StoreError::CannotWrite(CannotWrite::ReadOnly(why)));
        if row.get::<_, bool>(0) {
            return read_only(format!(
                "PostgreSQL at {} is a standby in recovery",
                self.target
            ));
        }
        if row.get::<_, bool>(1) {
            return read_only(format!(
                "PostgreSQL at {} has default_transaction_read_only on",
                self.target
            ));
        }
        self.health.check()
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    async fn claim(
        &self,
        agent: Held,
        classes: Vec<String>,
        lease_ms: i64,
        now: i64,
    ) -> StoreResult<Option<Claim>> {
        // A claim on its own is a lazy write (one statement, committed by itself).
        let c = self.lazy_client().await?;
        let claimed = queue::claim(&c, &agent, &classes, lease_ms, now).await;
        self.health.saw(&claimed);
        claimed
    }

    async fn finish(&self, token: String, end: AttemptEnd, now: i64) -> StoreResult<JobStatus> {
        if commits_kv(&end) {
            let status = self.finish_with_kv(token, end, now).await?;
            return Ok(status);
        }
        let ended = queue::finish(&self.client().await?, &token, &end, now).await;
        self.health.saw(&ended);
        match ended? {
            Some(ended) => Ok(self.ended(ended)),
            None => self.finish_shared(token, end, now).await,
        }
    }

    async fn finish_then_claim(
        &self,
        (token, end): (String, AttemptEnd),
        (agent, classes, lease_ms): (Held, Vec<String>, i64),
        now: i64,
    ) -> StoreResult<(JobStatus, Option<Claim>)> {
        if commits_kv(&end) {
            let status = self.finish_with_kv(token, end, now).await?;
            let claim = Backend::claim(self, agent, classes, lease_ms, now).await?;
            return Ok((status, claim));
        }
        let mut c = self.client().await?;
        let next = (&agent, classes.as_slice(), lease_ms);
        let done = queue::finish_and_claim(&mut c, &token, &end, next, now).await;
        self.health.saw(&done);
        drop(c);
        match done? {
            Some((ended, claim)) => Ok((self.ended(ended), claim)),
            None => {
                let status = self.finish_shared(token, end, now).await?;
                let claim = Backend::claim(self, agent, classes, lease_ms, now).await?;
                Ok((status, claim))
            }
        }
    }

    fn announce_finished(&self, jobs: Vec<String>) {
        self.notifier.finished(jobs);
    }

    fn announce_ready(&self) {
        self.notifier.jobs_queued();
    }
}

/// A pool of at most `size` connections made by `manager`.
fn pool(manager: Manager, size: usize, options: &PostgresOptions) -> StoreResult<Pool> {
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(options.connect_timeout))
        .wait_timeout(Some(options.acquire_timeout))
        .build()
        .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}
