//! The embedded store: SQLite in WAL mode with fsynced commits (`synchronous = FULL`).
//!
//! All writes go through one writer thread that takes whatever requests are waiting, runs each
//! in its own savepoint inside one transaction, commits once (one fsync for the batch), and
//! only then answers each request. A batch of lazy writes only ([`Backend::atomic_lazy`]:
//! claims, heartbeats) commits without the fsync (`synchronous = NORMAL`, WAL order keeps it
//! behind every earlier commit, and the next fsync covers it). A request is therefore acknowledged only when it is
//! durable, and a failing request rolls back alone. Reads use a small pool of connections.
//! With one writer, every write is atomic ([`Backend::write`] and [`Backend::atomic`] are the
//! same), and nothing can come between a check and its write.

use super::backend::{Backend, BoxFuture};
use super::health::{CannotWrite, WriteHealth};
use super::migrations;
use super::sql::ready;
use super::*;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::oneshot;

mod sql;

pub(crate) use sql::Lite;

/// Most requests committed together.
const MAX_BATCH: usize = 1024;
const READERS: usize = 4;
/// Below this much free space on the database's file system, the store reports that it cannot
/// write (a commit needs room for its log frames, and a checkpoint for the pages it copies).
const MIN_FREE_BYTES: u64 = 1 << 20;

type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;
/// A request for the writer: run in the batch's transaction, or, when the batch cannot run
/// (`Some(refusal)`), answered with the refusal without running.
type Run = Box<dyn FnOnce(&mut Lite, Option<&StoreError>) -> (Reply, Option<CannotWrite>) + Send>;

/// A request for the writer, and whether its acknowledgement must wait for the disk.
struct Work {
    run: Run,
    durable: bool,
}

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: mpsc::Sender<Work>,
    readers: Arc<Mutex<Vec<Lite>>>,
    path: PathBuf,
    health: Arc<WriteHealth>,
}

/// A failure of the store.
pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Map a SQLite error: a broken constraint is a conflict (the write was refused, nothing
/// changed), a full disk or a read-only database means the store cannot write, anything else
/// is a failure of the store.
fn refused(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as Code;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            Code::ConstraintViolation => StoreError::Conflict(e.to_string()),
            Code::DiskFull => StoreError::CannotWrite(CannotWrite::DiskFull(e.to_string())),
            Code::ReadOnly => StoreError::CannotWrite(CannotWrite::ReadOnly(e.to_string())),
            _ => backend(e),
        },
        _ => backend(e),
    }
}

/// Page cache of the writer's connection, in KiB (SQLite's negative `cache_size`).
const WRITER_CACHE_KIB: u32 = 16 << 10;
/// Page cache of each reader's connection, in KiB: reads are point lookups and short pages.
const READER_CACHE_KIB: u32 = 4 << 10;

fn open(path: &Path, cache_kib: u32) -> StoreResult<Lite> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::Backend(format!(
            "cannot open the database {} ({e}); check the data directory",
            path.display()
        ))
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(256);
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{cache_kib}; PRAGMA temp_store = MEMORY;
         PRAGMA journal_size_limit = {WAL_LIMIT_BYTES};"
    ))
    .map_err(backend)?;
    Ok(Lite(conn, Default::default()))
}

/// The write-ahead log is truncated to this size when it restarts after a checkpoint, so the
/// space a burst of writes (retention's deletions, an incremental vacuum) took goes back too.
const WAL_LIMIT_BYTES: u64 = 64 << 20;

/// Turn on incremental vacuum (`auto_vacuum = INCREMENTAL`), so retention can give the pages
/// it frees back to the file system ([`RetentionStore::reclaim_space`]). The setting only
/// takes effect through a `VACUUM`, which rewrites the whole file: once, on a database made
/// before it (said in the log, as it may take a while). Outside any transaction, before the
/// writer thread and the readers start. A `VACUUM` that fails (it needs free space about the
/// size of the database) is logged and the store opens without it: freed pages are then
/// reused, not given back.
fn incremental_vacuum(conn: &Connection, path: &Path) -> StoreResult<()> {
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .map_err(backend)?;
    if mode == 2 {
        return Ok(());
    }
    let tables: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(backend)?;
    let began = std::time::Instant::now();
    if tables > 0 {
        tracing::info!(database = %path.display(), "turning on incremental vacuum: a one-time VACUUM rewrites the database (this takes a while for a large one)");
    }
    match conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;") {
        Ok(()) if tables > 0 => tracing::info!(
            database = %path.display(),
            took_ms = began.elapsed().as_millis() as u64,
            "incremental vacuum is on: space freed by retention goes back to the file system"
        ),
        Ok(()) => {}
        Err(e) => tracing::warn!(
            database = %path.display(),
            error = %e,
            "could not turn on incremental vacuum (VACUUM needs free space about the size of the database); freed space is reused but the file does not shrink. It is tried again at the next start"
        ),
    }
    Ok(())
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
        let writer = open(path, WRITER_CACHE_KIB)?;
        incremental_vacuum(&writer.0, path)?;
        migrate(&writer.0, path)?;
        let (tx, rx) = mpsc::channel::<Work>();
        let health = Arc::new(WriteHealth::default());
        let seen = health.clone();
        std::thread::Builder::new()
            .name("driftless-store-writer".into())
            .spawn(move || writer_loop(writer, rx, &seen))
            .map_err(backend)?;
        let readers = (0..READERS)
            .map(|_| open(path, READER_CACHE_KIB))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(SqliteStore {
            writer: tx,
            readers: Arc::new(Mutex::new(readers)),
            path: path.to_path_buf(),
            health,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `op` in the writer's next batch; answered once the batch commits (and, when
    /// `durable`, once the commit is on disk).
    async fn send<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Lite) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
        durable: bool,
    ) -> StoreResult<R> {
        let (tx, rx) = oneshot::channel();
        let run: Run =
            Box::new(move |lite, refusal| savepoint(lite, refusal, |l| ready(op(l)), tx));
        self.writer
            .send(Work { run, durable })
            .map_err(|_| StoreError::Backend("the store's writer thread stopped".into()))?;
        rx.await.map_err(|_| {
            StoreError::Backend(
                "the store's writer could not run the request (see the daemon log)".into(),
            )
        })?
    }
}

/// Run a transaction-control statement (prepared once per connection).
fn control(lite: &Lite, sql: &str) -> rusqlite::Result<()> {
    lite.0.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Run `f` in its own savepoint of the writer's transaction (unless the batch cannot run:
/// then the refusal is the answer); the reply goes out once the batch is committed. Also
/// returns why the request could not write, if that is how it failed.
fn savepoint<R: Send + 'static>(
    lite: &mut Lite,
    refusal: Option<&StoreError>,
    f: impl FnOnce(&mut Lite) -> StoreResult<R>,
    tx: oneshot::Sender<StoreResult<R>>,
) -> (Reply, Option<CannotWrite>) {
    let result = match refusal {
        Some(refusal) => Err(refusal.clone()),
        None => match control(lite, "SAVEPOINT request") {
            Err(e) => Err(refused(e)),
            Ok(()) => {
                let r = f(lite);
                let end = if r.is_ok() {
                    control(lite, "RELEASE request")
                } else {
                    control(lite, "ROLLBACK TO request")
                        .and_then(|()| control(lite, "RELEASE request"))
                };
                match end {
                    Ok(()) => r,
                    // The request's own error says more (SQLite may have rolled the whole
                    // transaction back with it, and the savepoint with it).
                    Err(e) => r.and(Err(refused(e))),
                }
            }
        },
    };
    let cannot = match &result {
        Err(StoreError::CannotWrite(why)) => Some(why.clone()),
        _ => None,
    };
    let reply: Reply = Box::new(move |committed: StoreResult<()>| {
        let _ = tx.send(committed.and(result));
    });
    (reply, cannot)
}

impl Backend for SqliteStore {
    type Sql = Lite;

    async fn read<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Lite) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // Bind first: a guard in the `match` scrutinee would live through the arms.
            let pooled = readers.lock().expect("reader pool").pop();
            let mut conn = match pooled {
                Some(c) => c,
                None => open(&path, READER_CACHE_KIB)?,
            };
            let r = ready(op(&mut conn));
            let mut pool = readers.lock().expect("reader pool");
            if pool.len() < READERS {
                pool.push(conn);
            }
            r
        })
        .await
        .map_err(backend)?
    }

    async fn write<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Lite) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        self.send(op, true).await
    }

    async fn atomic<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Lite) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        self.send(op, true).await
    }

    async fn atomic_lazy<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Lite) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        self.send(op, false).await
    }

    async fn writable(&self) -> StoreResult<()> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let probed = tokio::task::spawn_blocking(move || room(&dir))
            .await
            .map_err(backend)?;
        probed.and_then(|()| self.health.check())
    }
}

/// Whether the file system holding the database (in `dir`) takes writes: not mounted
/// read-only, with at least [`MIN_FREE_BYTES`] free (or, in tests, the disk-full fault hook).
fn room(dir: &Path) -> StoreResult<()> {
    let full = |why: String| Err(StoreError::CannotWrite(CannotWrite::DiskFull(why)));
    if crate::fault::disk_full() {
        return full("DRIFTLESS_FAULT_DISK_FULL: a test says the disk is full".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return Ok(());
        };
        let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: a NUL-terminated path and a buffer of the right type, filled on success.
        if unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) } != 0 {
            return Ok(()); // no answer: the writes themselves will say
        }
        // SAFETY: statvfs returned 0, so it filled the buffer.
        let stats = unsafe { stats.assume_init() };
        if stats.f_flag & libc::ST_RDONLY != 0 {
            return Err(StoreError::CannotWrite(CannotWrite::ReadOnly(format!(
                "the file system holding {} is mounted read-only",
                dir.display()
            ))));
        }
        // The field types differ between platforms (u64 on Linux, u32 on macOS).
        #[allow(clippy::unnecessary_cast)]
        let free = stats.f_bavail as u64 * stats.f_frsize as u64;
        if free < MIN_FREE_BYTES {
            return full(format!(
                "{free} bytes free on the file system holding {}",
                dir.display()
            ));
        }
    }
    Ok(())
}

fn writer_loop(mut lite: Lite, rx: mpsc::Receiver<Work>, health: &WriteHealth) {
    // `synchronous = FULL` (fsync at commit) as `open` set it.
    let mut syncing = true;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        // The fsync is skipped only when nothing in the batch needs it (outside a transaction:
        // SQLite refuses to change it inside one).
        let durable = batch.iter().any(|w| w.durable);
        let mut unsynced = None;
        if durable != syncing {
            let pragma = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            match lite.0.execute_batch(pragma) {
                Ok(()) => syncing = durable,
                // Still syncing: slower, and as safe.
                Err(e) if !durable => {
                    tracing::warn!(error = %e, "the store could not set {pragma}")
                }
                Err(e) => {
                    tracing::error!(error = %e, "the store could not set {pragma}");
                    unsynced = Some(refused(e));
                }
            }
        }
        // Never run a request outside a transaction: when none can start, every request of
        // the batch is answered with the reason.
        let mut refusal = if crate::fault::disk_full() {
            Some(StoreError::CannotWrite(CannotWrite::DiskFull(
                "DRIFTLESS_FAULT_DISK_FULL: a test says the disk is full".into(),
            )))
        } else if unsynced.is_some() {
            unsynced
        } else {
            control(&lite, "BEGIN IMMEDIATE").err().map(|e| {
                tracing::error!(error = %e, requests = batch.len(), "the store could not start a transaction");
                refused(e)
            })
        };
        let mut cannot = None;
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        for work in batch {
            let (reply, why) = (work.run)(&mut lite, refusal.as_ref());
            if refusal.is_none() && lite.0.is_autocommit() {
                // SQLite rolled the whole transaction back after an error (a full disk, an
                // I/O error): the requests before were undone with it, so none of the batch
                // commits, and the rest are refused.
                refusal = Some(why.clone().map(StoreError::CannotWrite).unwrap_or_else(|| {
                    backend("SQLite rolled the batch's transaction back after an error")
                }));
            }
            cannot = cannot.or(why);
            replies.push(reply);
        }
        let committed = match &refusal {
            Some(refusal) => Err(refusal.clone()),
            None => {
                let committed = control(&lite, "COMMIT").map_err(refused);
                if committed.is_err() {
                    let _ = lite.0.execute_batch("ROLLBACK");
                }
                committed
            }
        };
        match (&committed, cannot) {
            (Err(StoreError::CannotWrite(why)), _) => health.failed(why.clone()),
            (_, Some(why)) => health.failed(why),
            (Ok(()), None) => health.succeeded(),
            (Err(_), None) => {}
        }
        for reply in replies {
            reply(committed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_made_before_incremental_vacuum_is_rewritten_once_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mode = |c: &Connection| -> i64 {
            c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap()
        };
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE kept (x); INSERT INTO kept VALUES (42);",
            )
            .unwrap();
            assert_eq!(mode(&c), 0, "made without auto-vacuum");
        }
        let store = SqliteStore::open(&path).unwrap();
        let lite = open(store.path(), READER_CACHE_KIB).unwrap();
        assert_eq!(mode(&lite.0), 2, "incremental from now on");
        let kept: i64 = lite
            .0
            .query_row("SELECT x FROM kept", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 42);
        // A fresh database is incremental from the start, and reopening changes nothing.
        let fresh = dir.path().join("fresh.db");
        drop(SqliteStore::open(&fresh).unwrap());
        let again = SqliteStore::open(&fresh).unwrap();
        assert_eq!(mode(&open(again.path(), READER_CACHE_KIB).unwrap().0), 2);
    }

    /// SQLite's plan for `sql` (parameters bound as `params`), one step per line.
    fn plan(lite: &Lite, sql: &'static str, params: impl rusqlite::Params) -> String {
        let sql = format!("EXPLAIN QUERY PLAN {}", sql::translated(sql));
        let mut plan = lite.0.prepare(&sql).unwrap();
        let steps: Vec<String> = plan
            .query_map(params, |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        steps.join("\n")
    }

    #[test]
    fn retention_takes_its_batches_by_index_never_scanning_a_table() {
        use crate::store::ops::retention::{SQLITE_DELETE_BLOBS, SQLITE_PICK_JOBS};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("driftless.db")).unwrap();
        let lite = open(store.path(), READER_CACHE_KIB).unwrap();
        let jobs = plan(&lite, SQLITE_PICK_JOBS, rusqlite::params![0, 500]);
        assert!(
            jobs.contains("SEARCH j USING INDEX jobs_finished"),
            "finished jobs by the index of their end:\n{jobs}"
        );
        let blobs = plan(&lite, SQLITE_DELETE_BLOBS, rusqlite::params![0, 20]);
        for index in ["blobs_used", "jobs_component", "task_versions_blob"] {
            assert!(blobs.contains(index), "{index}:\n{blobs}");
        }
        for plan in [jobs, blobs] {
            assert!(!plan.contains("SCAN"), "no table is scanned:\n{plan}");
        }
    }

    #[test]
    fn retention_deletes_from_every_table_that_holds_a_jobs_rows() {
        use crate::store::ops::retention::JOB_ROWS;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("driftless.db")).unwrap();
        let lite = open(store.path(), READER_CACHE_KIB).unwrap();
        let mut holders: Vec<String> = lite
            .0
            .prepare("SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table' AND c.name = 'job_id' ORDER BY m.name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        holders.push("jobs".into());
        for table in &holders {
            assert!(
                JOB_ROWS.iter().any(|(t, _, _)| t == table),
                "retention does not delete a finished job's rows in `{table}`: add it to JOB_ROWS (store/ops/retention.rs)"
            );
        }
        assert_eq!(JOB_ROWS.last().unwrap().0, "jobs", "the jobs go last");
        for (table, _, sqlite) in JOB_ROWS {
            let steps = plan(&lite, sqlite, rusqlite::params!["[]"]);
            assert!(
                steps.contains(&format!("SEARCH {table} USING")),
                "{table} by index:\n{steps}"
            );
        }
    }

    #[test]
    fn a_claim_probes_the_head_of_each_class_instead_of_walking_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("driftless.db")).unwrap();
        let lite = open(store.path(), READER_CACHE_KIB).unwrap();
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            sql::translated(crate::store::ops::jobs::SQLITE_HEAD)
        );
        let mut plan = lite.0.prepare(&sql).unwrap();
        let steps: Vec<String> = plan
            .query_map(rusqlite::params!["[\"a\",\"\"]"], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = steps.join("\n");
        assert!(
            plan.contains("SEARCH h USING INDEX queue_heads"),
            "each class's head is one index probe:\n{plan}"
        );
        assert!(
            !plan.contains("SCAN q"),
            "the queue is never scanned:\n{plan}"
        );
    }
}
