//! Fresh stores for the shared store suite: a SQLite file in a temporary directory, or a new
//! database on one throwaway PostgreSQL server per test process.
//!
//! The server lives in a `static` (it is never dropped), so it is stopped by a watchdog: a
//! small shell in its own process group that waits for end-of-file on a pipe only this process
//! holds, then stops the server immediately and removes its directory. The pipe closes however
//! the process ends (even `kill -9`); on a normal exit an `atexit` hook closes it and waits
//! for the watchdog, so no server outlives the test binary.

use crate::postgres::PgServer;
use driftless::store::Store;
use driftless::store::postgres::PostgresStore;
use driftless::store::sqlite::SqliteStore;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The store backends the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store.
    Sqlite,
    /// The shared store.
    Postgres,
}

/// A fresh, empty database for one test; [`open`](TestDb::open) gives handles on it.
pub struct TestDb {
    backend: Backend,
    /// The SQLite directory (removed on drop).
    _dir: Option<tempfile::TempDir>,
    /// The SQLite file, or the PostgreSQL URL.
    location: String,
}

impl TestDb {
    /// A new empty database on `backend`.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let location = dir.path().join("test.db").display().to_string();
                TestDb {
                    backend,
                    _dir: Some(dir),
                    location,
                }
            }
            Backend::Postgres => TestDb {
                backend,
                _dir: None,
                location: fresh_database().await,
            },
        }
    }

    /// Which backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The PostgreSQL URL of this database (`None` on SQLite).
    pub fn url(&self) -> Option<&str> {
        (self.backend == Backend::Postgres).then_some(&self.location)
    }

    /// A new store handle on this database (as a restarted daemon would open it).
    pub async fn open(&self) -> Arc<dyn Store> {
        match self.backend {
            Backend::Sqlite => Arc::new(
                SqliteStore::open(&PathBuf::from(&self.location)).expect("open the SQLite store"),
            ),
            Backend::Postgres => Arc::new(
                PostgresStore::connect(&self.location)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {}: {e}", self.location)),
            ),
        }
    }
}

struct Shared {
    server: PgServer,
    /// The watchdog's stdin: closing it stops the server.
    watchdog: Mutex<Option<Child>>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let server = PgServer::start();
        let watchdog = watchdog(&server);
        unsafe extern "C" {
            fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
        }
        // SAFETY: registers a plain function with the C runtime; it runs once, at exit.
        unsafe { atexit(stop_at_exit) };
        Shared {
            server,
            watchdog: Mutex::new(Some(watchdog)),
        }
    })
}

/// At a normal exit: close the watchdog's pipe and wait until it stopped the server.
extern "C" fn stop_at_exit() {
    if let Some(shared) = SHARED.get()
        && let Ok(mut guard) = shared.watchdog.lock()
        && let Some(mut child) = guard.take()
    {
        drop(child.stdin.take());
        let _ = child.wait();
    }
}

/// Start the watchdog for `server`: it stops the server once its stdin reaches end-of-file.
fn watchdog(server: &PgServer) -> Child {
    let data = data_directory(server);
    let root = data
        .parent()
        .expect("the data directory has a parent")
        .to_path_buf();
    Command::new("sh")
        .arg("-c")
        .arg(
            r#"read -r _ ; pid=$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null)
               if [ -n "$pid" ]; then
                   kill -QUIT "$pid" 2>/dev/null
                   i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
               fi
               rm -rf "$ROOT""#,
        )
        .env("DATA", &data)
        .env("ROOT", &root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C to the test run must not stop it before it stops
        // the server.
        .process_group(0)
        .spawn()
        .expect("start the PostgreSQL watchdog")
}

/// The server's data directory, as the server reports it.
fn data_directory(server: &PgServer) -> PathBuf {
    let url = server.url();
    let dir = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect to the test server");
            tokio::spawn(connection);
            client
                .query_one("SHOW data_directory", &[])
                .await
                .expect("SHOW data_directory")
                .get::<_, String>(0)
        })
    })
    .join()
    .expect("read the data directory");
    PathBuf::from(dir)
}

/// The shared test server (started on first use).
pub fn server() -> &'static PgServer {
    &shared().server
}

/// A URL for a database made for this caller alone, on the shared server.
pub async fn fresh_database() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = server();
    let name = format!("t_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to the test server: {e}\n{}", server.log()));
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    format!("postgres://postgres@127.0.0.1:{}/{name}", server.port)
}
