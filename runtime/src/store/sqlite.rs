//! The embedded store: SQLite in WAL mode with fsynced commits (`synchronous = FULL`).
//!
//! All writes go through one writer thread that takes whatever requests are waiting, runs each
//! in its own savepoint inside one transaction, commits once (one fsync for the batch), and
//! only then answers each request. A request is therefore acknowledged only when it is
//! durable, and a failing request rolls back alone. Reads use a small pool of connections.

use super::*;

mod nodes;
mod tasks;
use crate::host::KvBackendError;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::oneshot;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite_0001_init.sql"),
    include_str!("migrations/sqlite_0002_tasks.sql"),
    include_str!("migrations/sqlite_0003_identities.sql"),
    include_str!("migrations/sqlite_0004_cluster.sql"),
];
/// Most requests committed together.
const MAX_BATCH: usize = 1024;
const READERS: usize = 4;

type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;
type Work = Box<dyn FnOnce(&Connection) -> Reply + Send>;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: mpsc::Sender<Work>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
}

/// `execute` and `query_row` through the connection's prepared-statement cache: the hot
/// statements are parsed and planned once per connection, not once per call.
trait Cached {
    fn execute_cached(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize>;
    fn query_row_cached<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    fn query_row_cached<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(p, f)
    }
}

pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn open(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::Backend(format!(
            "cannot open the database {} ({e}); check the data directory",
            path.display()
        ))
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -32768;",
    )
    .map_err(backend)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> StoreResult<()> {
    let version: usize = conn
        .query_row_cached("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database has schema version {version}, newer than this driftless knows ({}): upgrade driftless, or point it at another data directory",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))
        .map_err(|e| StoreError::Backend(format!("migration {} failed: {e}", i + 1)))?;
    }
    Ok(())
}

impl SqliteStore {
    /// Open (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let conn = open(path)?;
        migrate(&conn)?;
        let (tx, rx) = mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name("driftless-store-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(backend)?;
        let readers = (0..READERS)
            .map(|_| open(path))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(SqliteStore {
            writer: tx,
            readers: Arc::new(Mutex::new(readers)),
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` in the writer's transaction; resolves once the batch is committed.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let (tx, rx) = oneshot::channel();
        let work: Work = Box::new(move |conn| {
            let result = match conn.execute_batch("SAVEPOINT request") {
                Err(e) => Err(backend(e)),
                Ok(()) => {
                    let r = f(conn);
                    let end = if r.is_ok() {
                        "RELEASE request"
                    } else {
                        "ROLLBACK TO request; RELEASE request"
                    };
                    match conn.execute_batch(end) {
                        Ok(()) => r,
                        Err(e) => Err(backend(e)),
                    }
                }
            };
            Box::new(move |committed: StoreResult<()>| {
                let _ = tx.send(committed.and(result));
            })
        });
        self.writer
            .send(work)
            .map_err(|_| StoreError::Backend("the store's writer thread stopped".into()))?;
        rx.await.map_err(|_| {
            StoreError::Backend(
                "the store's writer could not run the request (see the daemon log)".into(),
            )
        })?
    }

    /// Run `f` on a reader connection.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // Bind first: a guard in the `match` scrutinee would live through the arms.
            let pooled = readers.lock().expect("reader pool").pop();
            let conn = match pooled {
                Some(c) => c,
                None => open(&path)?,
            };
            let r = f(&conn);
            let mut pool = readers.lock().expect("reader pool");
            if pool.len() < READERS {
                pool.push(conn);
            }
            r
        })
        .await
        .map_err(backend)?
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Work>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Never run a request outside a transaction: dropping them answers each caller
            // with an error.
            tracing::error!(error = %e, requests = batch.len(), "the store could not start a transaction");
            continue;
        }
        let replies: Vec<Reply> = batch.into_iter().map(|w| w(&conn)).collect();
        let committed = conn.execute_batch("COMMIT").map_err(backend);
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(committed.clone());
        }
    }
}

/// The columns [`job_from_row`] reads. The admission report (in `reports`, by `report_hash`)
/// is not read back with the job: `NULL` keeps the column positions.
const JOB_COLUMNS: &str = "id, seq, component, status, input, max_attempts, attempts, limits, optional, NULL, kv_scope, task, run_after_ms, created_ms, updated_ms, finished_ms, output, error, progress, progress_msg, cancel_requested, class";

fn job_from_row(r: &Row) -> rusqlite::Result<Job> {
    let status: String = r.get(3)?;
    let limits: String = r.get(7)?;
    let optional: String = r.get(8)?;
    let error: Option<String> = r.get(17)?;
    let progress: Option<u8> = r.get(18)?;
    let progress_msg: Option<String> = r.get(19)?;
    Ok(Job {
        id: r.get(0)?,
        seq: r.get(1)?,
        component: r.get(2)?,
        status: JobStatus::parse(&status).unwrap_or(JobStatus::Failed),
        input: r.get(4)?,
        max_attempts: r.get(5)?,
        attempts: r.get(6)?,
        limits: serde_json::from_str(&limits).unwrap_or_default(),
        optional_imports: serde_json::from_str(&optional).unwrap_or_default(),
        kv_scope: r.get(10)?,
        task: r.get(11)?,
        run_after_ms: r.get(12)?,
        created_ms: r.get(13)?,
        updated_ms: r.get(14)?,
        finished_ms: r.get(15)?,
        output: r.get(16)?,
        error: error.and_then(|e| serde_json::from_str(&e).ok()),
        progress: progress.map(|p| (p, progress_msg.unwrap_or_default())),
        cancel_requested: r.get::<_, i64>(20)? != 0,
        class: r.get(21)?,
    })
}

fn job_by_id(conn: &Connection, id: &str) -> StoreResult<Option<Job>> {
    conn.query_row_cached(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
        [id],
        job_from_row,
    )
    .optional()
    .map_err(backend)
}

fn event(
    conn: &Connection,
    job: &str,
    attempt: Option<u32>,
    now: i64,
    kind: &str,
    message: &str,
) -> StoreResult<()> {
    conn.execute_cached(
        "INSERT INTO events (job_id, attempt, at_ms, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![job, attempt, now, kind, message],
    )
    .map_err(backend)?;
    Ok(())
}

fn new_token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Move running attempts matching `filter` to `lost` and requeue their jobs (fail them when out
/// of attempts, cancel them when cancellation was requested).
fn lose_attempts(
    conn: &Connection,
    filter: &str,
    arg: &dyn rusqlite::ToSql,
    now: i64,
    why: &str,
) -> StoreResult<u64> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT a.job_id, a.number, a.agent, j.attempts, j.max_attempts, j.cancel_requested FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.state = 'running' AND {filter}"))
        .map_err(backend)?;
    let lost: Vec<(String, u32, String, u32, u32, bool)> = stmt
        .query_map([arg], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get::<_, i64>(5)? != 0,
            ))
        })
        .map_err(backend)?
        .collect::<rusqlite::Result<_>>()
        .map_err(backend)?;
    for (job, number, agent, attempts, max, cancelling) in &lost {
        conn.execute_cached(
            "UPDATE attempts SET state = 'lost', finished_ms = ?3, outcome = ?4 WHERE job_id = ?1 AND number = ?2 AND state = 'running'",
            params![job, number, now, serde_json::json!({"kind": "lost", "message": why}).to_string()],
        )
        .map_err(backend)?;
        if *cancelling {
            conn.execute_cached(
                "UPDATE jobs SET status = 'cancelled', finished_ms = ?2, updated_ms = ?2 WHERE id = ?1 AND status = 'running'",
                params![job, now],
            )
            .map_err(backend)?;
            event(
                conn,
                job,
                Some(*number),
                now,
                "cancelled",
                &format!(
                    "attempt {number} on {agent} was lost ({why}) after cancellation was requested; the job is cancelled"
                ),
            )?;
        } else if attempts >= max {
            let failure = JobFailure {
                code: "lost".into(),
                message: format!(
                    "attempt {number} was lost ({why}) and the job has no attempts left ({max} allowed)"
                ),
                retryable: true,
            };
            conn.execute_cached(
                "UPDATE jobs SET status = 'failed', finished_ms = ?2, updated_ms = ?2, error = ?3 WHERE id = ?1 AND status = 'running'",
                params![job, now, serde_json::to_string(&failure).map_err(backend)?],
            )
            .map_err(backend)?;
            event(conn, job, Some(*number), now, "failed", &failure.message)?;
        } else {
            conn.execute_cached(
                "UPDATE jobs SET status = 'queued', run_after_ms = ?2, updated_ms = ?2 WHERE id = ?1 AND status = 'running'",
                params![job, now],
            )
            .map_err(backend)?;
            event(
                conn,
                job,
                Some(*number),
                now,
                "lost",
                &format!("attempt {number} on {agent} was lost ({why}); the job is queued again"),
            )?;
        }
    }
    Ok(lost.len() as u64)
}

/// The classes an agent may claim, as the JSON array the claim query reads with `json_each`.
fn classes_json(classes: &[String]) -> String {
    serde_json::to_string(classes).unwrap_or_else(|_| "[]".into())
}

/// Claim the next runnable job for `agent` (inside the writer's transaction). `INDEXED BY`
/// keeps the queue's own index: with the class filter the planner would otherwise read every
/// queued job by status and sort them.
fn claim_in(
    c: &Connection,
    agent: &str,
    classes: &str,
    lease_ms: i64,
    now: i64,
) -> StoreResult<Option<Claim>> {
    let next = c
            .query_row_cached(
                &format!("SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_queue WHERE status = 'queued' AND run_after_ms <= ?1 AND (class IS NULL OR class IN (SELECT value FROM json_each(?2))) ORDER BY run_after_ms, seq LIMIT 1"),
                params![now, classes],
                job_from_row,
            )
            .optional()
            .map_err(backend)?;
    let Some(mut job) = next else { return Ok(None) };
    // Attempt rows are numbered in order; the job's `attempts` counts only charged ones
    // (an attempt interrupted by a draining node is not charged).
    let number: u32 = c
        .query_row_cached(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE job_id = ?1",
            [&job.id],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let charged = job.attempts + 1;
    let token = new_token();
    let expires = now + lease_ms;
    c.execute_cached(
            "UPDATE jobs SET status = 'running', attempts = ?2, updated_ms = ?3 WHERE id = ?1 AND status = 'queued'",
            params![job.id, charged, now],
        )
        .map_err(backend)?;
    c.execute_cached(
            "INSERT INTO attempts (job_id, number, agent, lease_token, lease_expires_ms, state, started_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6)",
            params![job.id, number, agent, token, expires, now],
        )
        .map_err(backend)?;
    event(
        c,
        &job.id,
        Some(number),
        now,
        "claimed",
        &format!("attempt {number} claimed by {agent}"),
    )?;
    job.status = JobStatus::Running;
    job.attempts = charged;
    Ok(Some(Claim {
        job,
        attempt: number,
        lease_token: token,
        lease_expires_ms: expires,
    }))
}

/// End an attempt, fenced by its token (inside the writer's transaction).
fn finish_in(c: &Connection, token: &str, end: &AttemptEnd, now: i64) -> StoreResult<JobStatus> {
    let found: Option<(String, u32)> = c
        .query_row_cached(
            "SELECT job_id, number FROM attempts WHERE lease_token = ?1 AND state = 'running'",
            [&token],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    let Some((job, number)) = found else {
        return Err(StoreError::StaleLease);
    };
    c.execute_cached(
            "UPDATE attempts SET state = ?2, finished_ms = ?3, outcome = ?4, log = ?5 WHERE lease_token = ?1 AND state = 'running'",
            params![token, end.state.as_str(), now, end.outcome.to_string(), end.log],
        )
        .map_err(backend)?;
    let json = |f: &JobFailure| serde_json::to_string(f).map_err(backend);
    let (status, kind, message) = match &end.next {
        Next::Succeed(output) => {
            c.execute_cached(
                    "UPDATE jobs SET status = 'succeeded', output = ?2, error = NULL, finished_ms = ?3, updated_ms = ?3 WHERE id = ?1 AND status = 'running'",
                    params![job, output, now],
                )
                .map_err(backend)?;
            (
                JobStatus::Succeeded,
                "succeeded",
                format!("attempt {number} succeeded"),
            )
        }
        Next::Fail(failure) => {
            c.execute_cached(
                    "UPDATE jobs SET status = 'failed', error = ?2, finished_ms = ?3, updated_ms = ?3 WHERE id = ?1 AND status = 'running'",
                    params![job, json(failure)?, now],
                )
                .map_err(backend)?;
            (
                JobStatus::Failed,
                "failed",
                format!(
                    "attempt {number} failed: {}: {}",
                    failure.code, failure.message
                ),
            )
        }
        Next::Retry { failure, after_ms } => {
            c.execute_cached(
                    "UPDATE jobs SET status = 'queued', error = ?2, run_after_ms = ?3, updated_ms = ?4 WHERE id = ?1 AND status = 'running'",
                    params![job, json(failure)?, now + after_ms, now],
                )
                .map_err(backend)?;
            (
                JobStatus::Queued,
                "retry",
                format!(
                    "attempt {number} failed ({}: {}); retrying in {after_ms} ms",
                    failure.code, failure.message
                ),
            )
        }
        Next::Cancel => {
            c.execute_cached(
                    "UPDATE jobs SET status = 'cancelled', finished_ms = ?2, updated_ms = ?2 WHERE id = ?1 AND status = 'running'",
                    params![job, now],
                )
                .map_err(backend)?;
            (
                JobStatus::Cancelled,
                "cancelled",
                format!("attempt {number} was stopped by cancellation"),
            )
        }
        Next::Requeue => {
            c.execute_cached(
                    "UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_after_ms = ?2, updated_ms = ?2 WHERE id = ?1 AND status = 'running'",
                    params![job, now],
                )
                .map_err(backend)?;
            (
                JobStatus::Queued,
                "interrupted",
                format!(
                    "attempt {number} was interrupted by a draining node and queued again; it is not charged"
                ),
            )
        }
    };
    event(c, &job, Some(number), now, kind, &message)?;
    Ok(status)
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_blob(&self, hash: &str, bytes: &[u8]) -> StoreResult<bool> {
        let (hash, bytes) = (hash.to_string(), bytes.to_vec());
        // Most uploads repeat a component already stored: check without taking the writer.
        let h = hash.clone();
        let exists = self
            .read(move |c| {
                c.query_row_cached("SELECT 1 FROM blobs WHERE hash = ?1", [h], |_| Ok(()))
                    .optional()
                    .map_err(backend)
            })
            .await?;
        if exists.is_some() {
            return Ok(false);
        }
        self.write(move |c| {
            let n = c
                .execute_cached(
                    "INSERT OR IGNORE INTO blobs (hash, bytes, size, created_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![hash, bytes, bytes.len() as i64, now_ms()],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_blob(&self, hash: &str) -> StoreResult<Option<Vec<u8>>> {
        let hash = hash.to_string();
        self.read(move |c| {
            c.query_row_cached("SELECT bytes FROM blobs WHERE hash = ?1", [hash], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn insert_job(&self, job: NewJob) -> StoreResult<Inserted> {
        self.write(move |c| {
            if let Some(key) = &job.idempotency_key {
                let existing = c
                    .query_row_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key = ?1"), [key], job_from_row)
                    .optional()
                    .map_err(backend)?;
                if let Some(existing) = existing {
                    return Ok(Inserted { job: existing, created: false });
                }
            }
            // One writer: no delete of the version can come between this check and the commit.
            if let Some(pin) = &job.task {
                tasks::check_pin(c, pin)?;
            }
            let report_hash = blake3::hash(job.report.as_bytes()).to_hex().to_string();
            if let Some(r) = &job.requirements {
                c.execute_cached(
                    "INSERT OR IGNORE INTO requirement_classes (class, spec, created_ms) VALUES (?1, ?2, ?3)",
                    params![r.class, &*r.spec, job.now_ms],
                )
                .map_err(backend)?;
            }
            c.execute_cached(
                "INSERT OR IGNORE INTO reports (hash, report) VALUES (?1, ?2)",
                params![report_hash, &*job.report],
            )
            .map_err(backend)?;
            c.execute_cached(
                "INSERT INTO jobs (id, component, input, status, max_attempts, limits, optional, report, report_hash, kv_scope, task, idempotency_key, class, run_after_ms, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, '', ?7, ?8, ?9, ?10, ?12, ?11, ?11, ?11)",
                params![
                    job.id,
                    job.component,
                    job.input,
                    job.max_attempts,
                    serde_json::to_string(&job.limits).map_err(backend)?,
                    serde_json::to_string(&job.optional_imports).map_err(backend)?,
                    report_hash,
                    job.kv_scope,
                    job.task,
                    job.idempotency_key,
                    job.now_ms,
                    job.requirements.as_ref().map(|r| &r.class),
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StoreError::Conflict(format!("the job could not be stored: {e}"))
                }
                e => backend(e),
            })?;
            event(c, &job.id, None, job.now_ms, "queued", "accepted and queued")?;
            let stored = job_by_id(c, &job.id)?.ok_or_else(|| backend("the inserted job vanished"))?;
            Ok(Inserted { job: stored, created: true })
        })
        .await
    }

    async fn get_job(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            let Some(job) = job_by_id(c, &id)? else { return Ok(None) };
            let mut stmt = c
                .prepare_cached("SELECT number, agent, state, started_ms, finished_ms, lease_expires_ms, outcome, log FROM attempts WHERE job_id = ?1 ORDER BY number")
                .map_err(backend)?;
            let attempt_list = stmt
                .query_map([&id], |r| {
                    let state: String = r.get(2)?;
                    let outcome: Option<String> = r.get(6)?;
                    Ok(Attempt {
                        number: r.get(0)?,
                        agent: r.get(1)?,
                        state: AttemptState::parse(&state).unwrap_or(AttemptState::Lost),
                        started_ms: r.get(3)?,
                        finished_ms: r.get(4)?,
                        lease_expires_ms: r.get(5)?,
                        outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
                        log: r.get(7)?,
                    })
                })
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok(Some(JobRecord { job, attempt_list }))
        })
        .await
    }

    async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR seq < ?2) ORDER BY seq DESC LIMIT ?3"
                ))
                .map_err(backend)?;
            stmt.query_map(params![status.map(JobStatus::as_str), before, limit], job_from_row)
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)
        })
        .await
    }

    async fn events(&self, id: &str) -> StoreResult<Vec<Event>> {
        let id = id.to_string();
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT attempt, at_ms, kind, message FROM events WHERE job_id = ?1 ORDER BY id").map_err(backend)?;
            stmt.query_map([id], |r| Ok(Event { attempt: r.get(0)?, at_ms: r.get(1)?, kind: r.get(2)?, message: r.get(3)? }))
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)
        })
        .await
    }

    async fn cancel_job(&self, id: &str, now: i64) -> StoreResult<Job> {
        let id = id.to_string();
        self.write(move |c| {
            let job = job_by_id(c, &id)?.ok_or_else(|| StoreError::NotFound(format!("job {id}")))?;
            match job.status {
                JobStatus::Queued => {
                    c.execute_cached(
                        "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_ms = ?2, updated_ms = ?2 WHERE id = ?1",
                        params![id, now],
                    )
                    .map_err(backend)?;
                    event(c, &id, None, now, "cancelled", "cancelled before it ran")?;
                }
                JobStatus::Running => {
                    c.execute_cached("UPDATE jobs SET cancel_requested = 1, updated_ms = ?2 WHERE id = ?1", params![id, now])
                        .map_err(backend)?;
                    event(c, &id, None, now, "cancel-requested", "cancellation requested; the running attempt is being stopped")?;
                }
                _ => {}
            }
            job_by_id(c, &id)?.ok_or_else(|| backend("the job vanished"))
        })
        .await
    }

    async fn claim(
        &self,
        agent: &str,
        classes: &[String],
        lease_ms: i64,
        now: i64,
    ) -> StoreResult<Option<Claim>> {
        let (agent, classes) = (agent.to_string(), classes_json(classes));
        self.write(move |c| claim_in(c, &agent, &classes, lease_ms, now))
            .await
    }

    async fn heartbeat(&self, token: &str, lease_ms: i64, now: i64) -> StoreResult<bool> {
        let token = token.to_string();
        self.write(move |c| {
            let n = c
                .execute_cached(
                    "UPDATE attempts SET lease_expires_ms = ?2 WHERE lease_token = ?1 AND state = 'running'",
                    params![token, now + lease_ms],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::StaleLease);
            }
            c.query_row_cached(
                "SELECT j.cancel_requested FROM jobs j JOIN attempts a ON a.job_id = j.id WHERE a.lease_token = ?1",
                [token],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v != 0)
            .map_err(backend)
        })
        .await
    }

    async fn set_progress(&self, token: &str, percent: u8, message: &str) -> StoreResult<()> {
        let (token, message) = (token.to_string(), message.to_string());
        self.write(move |c| {
            let n = c
                .execute_cached(
                    "UPDATE jobs SET progress = ?2, progress_msg = ?3 WHERE id = (SELECT job_id FROM attempts WHERE lease_token = ?1 AND state = 'running')",
                    params![token, percent, message],
                )
                .map_err(backend)?;
            if n == 0 { Err(StoreError::StaleLease) } else { Ok(()) }
        })
        .await
    }

    async fn save_checkpoint(&self, token: &str, data: &[u8]) -> StoreResult<()> {
        let (token, data) = (token.to_string(), data.to_vec());
        self.write(move |c| {
            let n = c
                .execute_cached(
                    "UPDATE jobs SET checkpoint = ?2 WHERE id = (SELECT job_id FROM attempts WHERE lease_token = ?1 AND state = 'running')",
                    params![token, data],
                )
                .map_err(backend)?;
            if n == 0 { Err(StoreError::StaleLease) } else { Ok(()) }
        })
        .await
    }

    async fn load_checkpoint(&self, job_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let id = job_id.to_string();
        self.read(move |c| {
            c.query_row_cached("SELECT checkpoint FROM jobs WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(backend)
        })
        .await
    }

    async fn finish_attempt(
        &self,
        token: &str,
        end: AttemptEnd,
        now: i64,
    ) -> StoreResult<JobStatus> {
        let token = token.to_string();
        self.write(move |c| finish_in(c, &token, &end, now)).await
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
        let (token, agent, classes) = (token.to_string(), agent.to_string(), classes_json(classes));
        self.write(move |c| {
            let status = finish_in(c, &token, &end, now)?;
            Ok((status, claim_in(c, &agent, &classes, lease_ms, now)?))
        })
        .await
    }

    async fn requirement_classes(&self, after_seq: i64) -> StoreResult<Vec<RequirementClass>> {
        self.read(move |c| nodes::classes_after(c, after_seq)).await
    }

    async fn requirement_class(&self, class: &str) -> StoreResult<Option<String>> {
        let class = class.to_string();
        self.read(move |c| nodes::class_spec(c, &class)).await
    }

    async fn register_node(&self, node: NodeRegistration) -> StoreResult<()> {
        self.write(move |c| nodes::register(c, &node)).await
    }

    async fn node_heartbeat(
        &self,
        process: &str,
        draining: bool,
        inflight: u32,
        now: i64,
    ) -> StoreResult<bool> {
        let process = process.to_string();
        self.write(move |c| nodes::heartbeat(c, &process, draining, inflight, now))
            .await
    }

    async fn leave_node(&self, process: &str, now: i64) -> StoreResult<()> {
        let process = process.to_string();
        self.write(move |c| nodes::leave(c, &process, now)).await
    }

    async fn list_nodes(&self, gone_since_ms: i64) -> StoreResult<Vec<NodeRecord>> {
        self.read(move |c| nodes::list(c, gone_since_ms)).await
    }

    async fn reap_gone_nodes(&self, ttl_ms: i64, now: i64) -> StoreResult<Vec<String>> {
        self.write(move |c| nodes::reap_gone(c, ttl_ms, now)).await
    }

    async fn deploy_task(&self, version: NewTaskVersion) -> StoreResult<Moved> {
        self.write(move |c| tasks::deploy(c, &version)).await
    }

    async fn rollback_task(
        &self,
        task: &str,
        to: Option<u32>,
        actor: &str,
        request_id: &str,
        now: i64,
    ) -> StoreResult<Moved> {
        let (task, actor, rid) = (task.to_string(), actor.to_string(), request_id.to_string());
        self.write(move |c| tasks::rollback(c, &task, to, (&actor, &rid), now))
            .await
    }

    async fn delete_task_version(
        &self,
        task: &str,
        version: u32,
        actor: &str,
        request_id: &str,
        now: i64,
    ) -> StoreResult<DeleteOutcome> {
        let (task, actor, rid) = (task.to_string(), actor.to_string(), request_id.to_string());
        self.write(move |c| tasks::delete_version(c, &task, version, (&actor, &rid), now))
            .await
    }

    async fn resolve_task(&self, task: &str, version: Option<u32>) -> StoreResult<ResolvedTask> {
        let task = task.to_string();
        self.read(move |c| tasks::resolve(c, &task, version)).await
    }

    async fn task_generation(&self) -> StoreResult<i64> {
        self.read(tasks::generation).await
    }

    async fn report_resolution(
        &self,
        node: &str,
        task: &str,
        version: u32,
        generation: i64,
        now: i64,
    ) -> StoreResult<()> {
        let (node, task) = (node.to_string(), task.to_string());
        self.write(move |c| tasks::report_resolution(c, &node, &task, version, generation, now))
            .await
    }

    async fn list_tasks(&self) -> StoreResult<Vec<TaskSummary>> {
        self.read(tasks::list).await
    }

    async fn get_task(&self, task: &str) -> StoreResult<Option<Task>> {
        let task = task.to_string();
        self.read(move |c| tasks::get(c, &task)).await
    }

    async fn job_by_idempotency_key(&self, key: &str) -> StoreResult<Option<(Job, String)>> {
        let key = key.to_string();
        self.read(move |c| {
            let Some(job) = c
                .query_row_cached(
                    &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key = ?1"),
                    [&key],
                    job_from_row,
                )
                .optional()
                .map_err(backend)?
            else {
                return Ok(None);
            };
            let report: String = c
                .query_row_cached(
                    "SELECT COALESCE(r.report, NULLIF(j.report, ''), 'null') FROM jobs j LEFT JOIN reports r ON r.hash = j.report_hash WHERE j.id = ?1",
                    [&job.id],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            Ok(Some((job, report)))
        })
        .await
    }

    async fn recover_agent(&self, agent: &str, node: &str, now: i64) -> StoreResult<u64> {
        let (agent, node) = (agent.to_string(), node.to_string());
        self.write(move |c| {
            c.execute_cached(
                "INSERT INTO agents (id, node, started_ms, heartbeat_ms) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (id) DO UPDATE SET node = ?2, started_ms = ?3, heartbeat_ms = ?3",
                params![agent, node, now],
            )
            .map_err(backend)?;
            lose_attempts(
                c,
                "a.agent = ?1",
                &agent,
                now,
                "its agent restarted under the same identity",
            )
        })
        .await
    }

    async fn identity_holder(&self, id: &str) -> StoreResult<Option<IdentityHold>> {
        let id = id.to_string();
        self.read(move |c| {
            c.query_row_cached(
                "SELECT holder, lease_expires_ms FROM agents WHERE id = ?1",
                [id],
                |r| {
                    Ok(IdentityHold {
                        holder: r.get(0)?,
                        lease_expires_ms: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
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
        let (id, node, expected, holder) = (
            id.to_string(),
            node.to_string(),
            expected.map(str::to_string),
            holder.to_string(),
        );
        self.write(move |c| {
            c.execute_cached(
                "INSERT OR IGNORE INTO agents (id, node, started_ms, heartbeat_ms, holder, lease_expires_ms) VALUES (?1, ?2, ?3, ?3, NULL, 0)",
                params![id, node, now],
            )
            .map_err(backend)?;
            let n = c
                .execute_cached(
                    "UPDATE agents SET holder = ?3, lease_expires_ms = ?4, node = ?5, started_ms = ?6, heartbeat_ms = ?6 WHERE id = ?1 AND holder IS ?2",
                    params![id, expected, holder, now + lease_ms, node, now],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn renew_identities(&self, holder: &str, lease_ms: i64, now: i64) -> StoreResult<u64> {
        let holder = holder.to_string();
        self.write(move |c| {
            c.execute_cached(
                "UPDATE agents SET lease_expires_ms = ?2, heartbeat_ms = ?3 WHERE holder = ?1",
                params![holder, now + lease_ms, now],
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn release_identities(&self, holder: &str, now: i64) -> StoreResult<u64> {
        let holder = holder.to_string();
        self.write(move |c| {
            c.execute_cached(
                "UPDATE agents SET holder = NULL, lease_expires_ms = 0, heartbeat_ms = ?2 WHERE holder = ?1",
                params![holder, now],
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn reap_expired(&self, now: i64) -> StoreResult<u64> {
        self.write(move |c| {
            lose_attempts(c, "a.lease_expires_ms < ?1", &now, now, "its lease expired")
        })
        .await
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            let jobs = JobStatus::ALL
                .into_iter()
                .map(|s| {
                    (
                        s,
                        rows.iter()
                            .find(|(n, _)| n == s.as_str())
                            .map_or(0, |(_, c)| *c as u64),
                    )
                })
                .collect();
            Ok(StoreStats { jobs })
        })
        .await
    }

    async fn kv_get(&self, scope: &str, bucket: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let (s, b, k) = (scope.to_string(), bucket.to_string(), key.to_string());
        self.read(move |c| {
            c.query_row_cached(
                "SELECT value FROM kv WHERE scope = ?1 AND bucket = ?2 AND key = ?3",
                params![s, b, k],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn kv_set(&self, scope: &str, bucket: &str, key: &str, value: &[u8]) -> StoreResult<()> {
        let (s, b, k, v) = (
            scope.to_string(),
            bucket.to_string(),
            key.to_string(),
            value.to_vec(),
        );
        self.write(move |c| {
            c.execute_cached(
                "INSERT INTO kv (scope, bucket, key, value) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (scope, bucket, key) DO UPDATE SET value = ?4",
                params![s, b, k, v],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn kv_delete(&self, scope: &str, bucket: &str, key: &str) -> StoreResult<bool> {
        let (s, b, k) = (scope.to_string(), bucket.to_string(), key.to_string());
        self.write(move |c| {
            c.execute_cached(
                "DELETE FROM kv WHERE scope = ?1 AND bucket = ?2 AND key = ?3",
                params![s, b, k],
            )
            .map(|n| n == 1)
            .map_err(backend)
        })
        .await
    }

    async fn kv_list(&self, scope: &str, bucket: &str, prefix: &str) -> StoreResult<Vec<String>> {
        let (s, b, p) = (scope.to_string(), bucket.to_string(), prefix.to_string());
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT key FROM kv WHERE scope = ?1 AND bucket = ?2 AND substr(key, 1, length(?3)) = ?3 ORDER BY key")
                .map_err(backend)?;
            stmt.query_map(params![s, b, p], |r| r.get(0))
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<String>>>()
                .map_err(backend)
        })
        .await
    }

    async fn kv_increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> StoreResult<Result<i64, KvBackendError>> {
        let (s, b, k) = (scope.to_string(), bucket.to_string(), key.to_string());
        self.write(move |c| {
            let current: Option<Vec<u8>> = c
                .query_row_cached("SELECT value FROM kv WHERE scope = ?1 AND bucket = ?2 AND key = ?3", params![s, b, k], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            let next = match crate::host::services::add_to_counter(&k, current.as_deref(), delta) {
                Ok(n) => n,
                Err(e) => return Ok(Err(e)),
            };
            c.execute_cached(
                "INSERT INTO kv (scope, bucket, key, value) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (scope, bucket, key) DO UPDATE SET value = ?4",
                params![s, b, k, next.to_string().into_bytes()],
            )
            .map_err(backend)?;
            Ok(Ok(next))
        })
        .await
    }
}
