//! The embedded store: SQLite in WAL mode with fsynced commits (`synchronous = FULL`).
//!
//! All writes go through one writer thread that takes whatever requests are waiting, runs each
//! in its own savepoint inside one transaction, commits once (one fsync for the batch), and
//! only then answers each request. A request is therefore acknowledged only when it is
//! durable, and a failing request rolls back alone. Reads use a small pool of connections.
//! With one writer, every write is atomic ([`Backend::write`] and [`Backend::atomic`] are the
//! same), and nothing can come between a check and its write.

use super::backend::{Backend, BoxFuture};
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

type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;
type Work = Box<dyn FnOnce(&mut Lite) -> Reply + Send>;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: mpsc::Sender<Work>,
    readers: Arc<Mutex<Vec<Lite>>>,
    path: PathBuf,
}

/// A failure of the store.
pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Map a SQLite error: a broken constraint is a conflict (the write was refused, nothing
/// changed), anything else a failure of the store.
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

fn open(path: &Path) -> StoreResult<Lite> {
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
    Ok(Lite(conn))
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
        let writer = open(path)?;
        migrate(&writer.0, path)?;
        let (tx, rx) = mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name("driftless-store-writer".into())
            .spawn(move || writer_loop(writer, rx))
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
}

/// Run `f` in its own savepoint of the writer's transaction; the reply goes out once the
/// batch is committed.
fn savepoint<R: Send + 'static>(
    lite: &mut Lite,
    f: impl FnOnce(&mut Lite) -> StoreResult<R>,
    tx: oneshot::Sender<StoreResult<R>>,
) -> Reply {
    let result = match lite.0.execute_batch("SAVEPOINT request") {
        Err(e) => Err(backend(e)),
        Ok(()) => {
            let r = f(lite);
            let end = if r.is_ok() {
                "RELEASE request"
            } else {
                "ROLLBACK TO request; RELEASE request"
            };
            match lite.0.execute_batch(end) {
                Ok(()) => r,
                Err(e) => Err(backend(e)),
            }
        }
    };
    Box::new(move |committed: StoreResult<()>| {
        let _ = tx.send(committed.and(result));
    })
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
                None => open(&path)?,
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
        let (tx, rx) = oneshot::channel();
        let work: Work = Box::new(move |lite| savepoint(lite, |l| ready(op(l)), tx));
        self.writer
            .send(work)
            .map_err(|_| StoreError::Backend("the store's writer thread stopped".into()))?;
        rx.await.map_err(|_| {
            StoreError::Backend(
                "the store's writer could not run the request (see the daemon log)".into(),
            )
        })?
    }

    async fn atomic<R: Send + 'static>(
        &self,
        op: impl for<'s> FnOnce(&'s mut Lite) -> BoxFuture<'s, StoreResult<R>> + Send + 'static,
    ) -> StoreResult<R> {
        self.write(op).await
    }
}

fn writer_loop(mut lite: Lite, rx: mpsc::Receiver<Work>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        if let Err(e) = lite.0.execute_batch("BEGIN IMMEDIATE") {
            // Never run a request outside a transaction: dropping them answers each caller
            // with an error.
            tracing::error!(error = %e, requests = batch.len(), "the store could not start a transaction");
            continue;
        }
        let replies: Vec<Reply> = batch.into_iter().map(|w| w(&mut lite)).collect();
        let committed = lite.0.execute_batch("COMMIT").map_err(backend);
        if committed.is_err() {
            let _ = lite.0.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(committed.clone());
        }
    }
}
