//! The embedded store: SQLite in WAL mode with fsynced commits (`synchronous = FULL`).
//!
//! All writes go through one writer thread that takes whatever requests are waiting, runs each
//! in its own savepoint inside one transaction, commits once (one fsync for the batch), and
//! only then answers each request. A request is therefore acknowledged only when it is
//! durable, and a failing request rolls back alone. Reads use a small pool of connections.

use super::*;

mod queue;
mod sql;

pub(crate) use sql::Lite;

use super::migrations;
use super::ops::{self, jobs::Lose};
use super::sql::ready;
use crate::host::KvBackendError;
use crate::lifecycle::attempts::LossCause;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::oneshot;

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

/// Map a SQLite error: a broken constraint is a conflict (the write was refused, nothing
/// changed), anything else a failure of the store.
pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn refused(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(e.to_string())
        }
        e => backend(e),
    }
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

fn migrate(conn: &Connection, path: &Path) -> StoreResult<()> {
    let applied: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    let database = path.display().to_string();
    for (version, sql) in migrations::pending(migrations::SQLITE, applied, &database)? {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {version}; COMMIT;"
        ))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            migrations::failed(version, &database, e)
        })?;
    }
    Ok(())
}

impl SqliteStore {
    /// Open (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let conn = open(path)?;
        migrate(&conn, path)?;
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

/// Run a shared operation on a connection of this store.
fn run<R>(c: &Connection, op: impl AsyncFnOnce(&mut Lite<'_>) -> StoreResult<R>) -> StoreResult<R> {
    ready(op(&mut Lite(c)))
}

#[async_trait]
impl BlobStore for SqliteStore {
    async fn put_blob(&self, hash: &str, bytes: &[u8]) -> StoreResult<bool> {
        // Most uploads repeat a component already stored: check without taking the writer.
        let h = hash.to_string();
        if self
            .read(move |c| run(c, async |s| ops::blobs::has(s, &h).await))
            .await?
        {
            return Ok(false);
        }
        let (hash, bytes) = (hash.to_string(), bytes.to_vec());
        self.write(move |c| {
            run(c, async |s| {
                ops::blobs::put(s, &hash, &bytes, now_ms()).await
            })
        })
        .await
    }

    async fn get_blob(&self, hash: &str) -> StoreResult<Option<Vec<u8>>> {
        let hash = hash.to_string();
        self.read(move |c| run(c, async |s| ops::blobs::get(s, &hash).await))
            .await
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn insert_job(&self, job: NewJob) -> StoreResult<Inserted> {
        self.write(move |c| run(c, async |s| queue::insert(s, &job).await))
            .await
    }

    async fn get_job(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        let id = id.to_string();
        self.read(move |c| run(c, async |s| ops::jobs::get(s, &id).await))
            .await
    }

    async fn job_by_idempotency_key(&self, key: &str) -> StoreResult<Option<(Job, String)>> {
        let key = key.to_string();
        self.read(move |c| run(c, async |s| ops::jobs::by_idempotency_key(s, &key).await))
            .await
    }

    async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        self.read(move |c| run(c, async |s| ops::jobs::list(s, status, before, limit).await))
            .await
    }

    async fn events(&self, id: &str) -> StoreResult<Vec<Event>> {
        let id = id.to_string();
        self.read(move |c| run(c, async |s| ops::jobs::events(s, &id).await))
            .await
    }

    async fn cancel_job(&self, id: &str, now: i64) -> StoreResult<Job> {
        let id = id.to_string();
        self.write(move |c| run(c, async |s| ops::jobs::cancel(s, &id, now).await))
            .await
    }

    async fn stats(&self) -> StoreResult<StoreStats> {
        self.read(|c| run(c, async |s| ops::jobs::stats(s).await))
            .await
    }
}

#[async_trait]
impl AttemptStore for SqliteStore {
    async fn claim(
        &self,
        agent: &str,
        classes: &[String],
        lease_ms: i64,
        now: i64,
    ) -> StoreResult<Option<Claim>> {
        let (agent, classes) = (agent.to_string(), classes.to_vec());
        self.write(move |c| {
            run(c, async |s| {
                queue::claim(s, &agent, &classes, lease_ms, now).await
            })
        })
        .await
    }

    async fn heartbeat(&self, token: &str, lease_ms: i64, now: i64) -> StoreResult<bool> {
        let token = token.to_string();
        self.write(move |c| {
            run(c, async |s| {
                ops::jobs::heartbeat(s, &token, lease_ms, now).await
            })
        })
        .await
    }

    async fn set_progress(&self, token: &str, percent: u8, message: &str) -> StoreResult<()> {
        let (token, message) = (token.to_string(), message.to_string());
        self.write(move |c| {
            run(c, async |s| {
                ops::jobs::set_progress(s, &token, percent, &message).await
            })
        })
        .await
    }

    async fn save_checkpoint(&self, token: &str, data: &[u8]) -> StoreResult<()> {
        let (token, data) = (token.to_string(), data.to_vec());
        self.write(move |c| {
            run(c, async |s| {
                ops::jobs::save_checkpoint(s, &token, &data).await
            })
        })
        .await
    }

    async fn load_checkpoint(&self, job_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let id = job_id.to_string();
        self.read(move |c| run(c, async |s| ops::jobs::load_checkpoint(s, &id).await))
            .await
    }

    async fn finish_attempt(
        &self,
        token: &str,
        end: AttemptEnd,
        now: i64,
    ) -> StoreResult<JobStatus> {
        let token = token.to_string();
        self.write(move |c| run(c, async |s| ops::jobs::finish(s, &token, &end, now).await))
            .await
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
        let (token, agent, classes) = (token.to_string(), agent.to_string(), classes.to_vec());
        self.write(move |c| {
            run(c, async |s| {
                let status = ops::jobs::finish(s, &token, &end, now).await?;
                Ok((
                    status,
                    queue::claim(s, &agent, &classes, lease_ms, now).await?,
                ))
            })
        })
        .await
    }

    async fn recover_agent(&self, agent: &str, node: &str, now: i64) -> StoreResult<u64> {
        let (agent, node) = (agent.to_string(), node.to_string());
        self.write(move |c| {
            run(c, async |s| {
                ops::jobs::recover_agent(s, &agent, &node, now).await
            })
        })
        .await
        .map(|(lost, _)| lost)
    }

    async fn reap_expired(&self, now: i64) -> StoreResult<u64> {
        self.write(move |c| {
            run(c, async |s| {
                ops::jobs::lose(s, Lose::Expired(now), LossCause::LeaseExpired, now).await
            })
        })
        .await
        .map(|(lost, _)| lost)
    }
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn deploy_task(&self, version: NewTaskVersion) -> StoreResult<Moved> {
        self.write(move |c| run(c, async |s| ops::tasks::deploy(s, &version).await))
            .await
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
        self.write(move |c| {
            run(c, async |s| {
                ops::tasks::rollback(s, &task, to, (&actor, &rid), now).await
            })
        })
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
        self.write(move |c| {
            run(c, async |s| {
                ops::tasks::delete_version(s, &task, version, (&actor, &rid), now).await
            })
        })
        .await
    }

    async fn resolve_task(&self, task: &str, version: Option<u32>) -> StoreResult<ResolvedTask> {
        let task = task.to_string();
        self.read(move |c| run(c, async |s| ops::tasks::resolve(s, &task, version).await))
            .await
    }

    async fn task_generation(&self) -> StoreResult<i64> {
        self.read(|c| run(c, async |s| ops::tasks::generation(s).await))
            .await
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
        self.write(move |c| {
            run(c, async |s| {
                ops::tasks::report_resolution(s, &node, &task, version, generation, now).await
            })
        })
        .await
    }

    async fn list_tasks(&self) -> StoreResult<Vec<TaskSummary>> {
        self.read(|c| run(c, async |s| ops::tasks::list(s).await))
            .await
    }

    async fn get_task(&self, task: &str) -> StoreResult<Option<Task>> {
        let task = task.to_string();
        self.read(move |c| run(c, async |s| ops::tasks::get(s, &task).await))
            .await
    }
}

#[async_trait]
impl NodeStore for SqliteStore {
    async fn requirement_classes(&self, after_seq: i64) -> StoreResult<Vec<RequirementClass>> {
        self.read(move |c| run(c, async |s| ops::nodes::classes_after(s, after_seq).await))
            .await
    }

    async fn requirement_class(&self, class: &str) -> StoreResult<Option<String>> {
        let class = class.to_string();
        self.read(move |c| run(c, async |s| ops::nodes::class_spec(s, &class).await))
            .await
    }

    async fn register_node(&self, node: NodeRegistration) -> StoreResult<()> {
        self.write(move |c| run(c, async |s| ops::nodes::register(s, &node).await))
            .await
    }

    async fn node_heartbeat(
        &self,
        process: &str,
        draining: bool,
        inflight: u32,
        now: i64,
    ) -> StoreResult<bool> {
        let process = process.to_string();
        self.write(move |c| {
            run(c, async |s| {
                ops::nodes::heartbeat(s, &process, draining, inflight, now).await
            })
        })
        .await
    }

    async fn leave_node(&self, process: &str, now: i64) -> StoreResult<()> {
        let process = process.to_string();
        self.write(move |c| run(c, async |s| ops::nodes::leave(s, &process, now).await))
            .await
    }

    async fn list_nodes(&self, gone_since_ms: i64) -> StoreResult<Vec<NodeRecord>> {
        self.read(move |c| run(c, async |s| ops::nodes::list(s, gone_since_ms).await))
            .await
    }

    async fn reap_gone_nodes(&self, ttl_ms: i64, now: i64) -> StoreResult<Vec<String>> {
        self.write(move |c| run(c, async |s| ops::nodes::reap_gone(s, ttl_ms, now).await))
            .await
    }

    async fn identity_holder(&self, id: &str) -> StoreResult<Option<IdentityHold>> {
        let id = id.to_string();
        self.read(move |c| run(c, async |s| ops::nodes::identity_holder(s, &id).await))
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
        let (id, node, holder) = (id.to_string(), node.to_string(), holder.to_string());
        let expected = expected.map(str::to_string);
        self.write(move |c| {
            run(c, async |s| {
                ops::nodes::take_identity(
                    s,
                    (&id, &node),
                    expected.as_deref(),
                    &holder,
                    lease_ms,
                    now,
                )
                .await
            })
        })
        .await
    }

    async fn renew_identities(&self, holder: &str, lease_ms: i64, now: i64) -> StoreResult<u64> {
        let holder = holder.to_string();
        self.write(move |c| {
            run(c, async |s| {
                ops::nodes::renew_identities(s, &holder, lease_ms, now).await
            })
        })
        .await
    }

    async fn release_identities(&self, holder: &str, now: i64) -> StoreResult<u64> {
        let holder = holder.to_string();
        self.write(move |c| {
            run(c, async |s| {
                ops::nodes::release_identities(s, &holder, now).await
            })
        })
        .await
    }
}

#[async_trait]
impl KvStore for SqliteStore {
    async fn kv_get(&self, scope: &str, bucket: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let (sc, b, k) = (scope.to_string(), bucket.to_string(), key.to_string());
        self.read(move |c| run(c, async |s| ops::kv::get(s, &sc, &b, &k).await))
            .await
    }

    async fn kv_set(&self, scope: &str, bucket: &str, key: &str, value: &[u8]) -> StoreResult<()> {
        let (sc, b, k, v) = (
            scope.to_string(),
            bucket.to_string(),
            key.to_string(),
            value.to_vec(),
        );
        self.write(move |c| run(c, async |s| ops::kv::set(s, &sc, &b, &k, &v).await))
            .await
    }

    async fn kv_delete(&self, scope: &str, bucket: &str, key: &str) -> StoreResult<bool> {
        let (sc, b, k) = (scope.to_string(), bucket.to_string(), key.to_string());
        self.write(move |c| run(c, async |s| ops::kv::delete(s, &sc, &b, &k).await))
            .await
    }

    async fn kv_list(&self, scope: &str, bucket: &str, prefix: &str) -> StoreResult<Vec<String>> {
        let (sc, b, p) = (scope.to_string(), bucket.to_string(), prefix.to_string());
        self.read(move |c| run(c, async |s| ops::kv::list(s, &sc, &b, &p).await))
            .await
    }

    async fn kv_increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> StoreResult<Result<i64, KvBackendError>> {
        let (sc, b, k) = (scope.to_string(), bucket.to_string(), key.to_string());
        // One writer: nobody can create the key between the read and the write.
        self.write(move |c| {
            run(c, async |s| {
                ops::kv::increment(s, (&sc, &b, &k), delta).await
            })
        })
        .await?
        .ok_or_else(|| StoreError::Backend("a kv key appeared under the single writer".into()))
    }
}
