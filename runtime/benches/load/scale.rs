//! The load bench's scale figures: throughput against agents on one PostgreSQL node, the
//! daemon's memory with a deep queue, and claim latency against the depth of the queue.
//!
//! Every figure is measured on a fresh `driftless serve` (and, on PostgreSQL, a fresh
//! throwaway server) in the bench's run; nothing here is a constant.

use super::report::thousands;
use super::*;
use driftless_tests::examples::KV_V2;

/// The hello job's input, as JSON.
fn input() -> Value {
    serde_json::from_str(INPUT).unwrap()
}

/// The one node a scale figure runs on: its daemon, its data directory's root and, on
/// PostgreSQL, its server.
struct Stand {
    root: tempfile::TempDir,
    pg: Option<PgServer>,
    http: reqwest::Client,
}

impl Stand {
    fn new(setup: Setup, concurrency: usize) -> Stand {
        assert!(
            matches!(setup, Setup::Sqlite | Setup::Postgres(1)),
            "the scale figures are measured on one node"
        );
        let mut headers = reqwest::header::HeaderMap::new();
        // The CLI's header: an open-mode daemon wants it on state-changing requests (drain).
        headers.insert("x-driftless-client", "1".parse().unwrap());
        Stand {
            root: tempfile::tempdir().expect("temp dir"),
            pg: matches!(setup, Setup::Postgres(_)).then(PgServer::start),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .pool_max_idle_per_host(concurrency * 2)
                .build()
                .unwrap(),
        }
    }

    /// `driftless serve` as node-1 on this stand's store, with `extra` arguments.
    fn start(&self, agents: Option<&str>, extra: &[&str]) -> DaemonProcess {
        let store = self.pg.as_ref().map(PgServer::url);
        let mut args = vec!["--node", "node-1"];
        if let Some(a) = agents {
            args.extend(["--agents", a]);
        }
        if let Some(url) = &store {
            args.extend(["--store", url.as_str()]);
        }
        args.extend(extra);
        DaemonProcess::start(
            env!("CARGO_BIN_EXE_driftless"),
            &self.root.path().join("node-1"),
            &args,
        )
    }

    /// The SQLite file of node-1 (the SQLite setup).
    fn sqlite_file(&self) -> PathBuf {
        self.root.path().join("node-1/driftless.db")
    }

    /// `PUT /v1/components`: the component's hash.
    async fn upload(&self, url: &str, path: &str) -> String {
        let uploaded: Value = self
            .http
            .put(format!("{url}/v1/components"))
            .header("content-type", "application/wasm")
            .body(std::fs::read(path).expect("a built guest example"))
            .send()
            .await
            .expect("upload")
            .error_for_status()
            .expect("upload accepted")
            .json()
            .await
            .unwrap();
        uploaded["component"].as_str().unwrap().to_string()
    }

    /// `POST /v1/admin/drain` or `/v1/admin/resume`.
    async fn admin(&self, url: &str, what: &str) {
        self.http
            .post(format!("{url}/v1/admin/{what}"))
            .send()
            .await
            .expect("admin request")
            .error_for_status()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    }

    /// Submit one job (`POST /v1/jobs`, not waiting): its id.
    async fn submit(&self, url: &str, component: &str, input: &Value) -> String {
        let answer: Value = self
            .http
            .post(format!("{url}/v1/jobs"))
            .json(&json!({"component": component, "input": input}))
            .send()
            .await
            .expect("submit")
            .error_for_status()
            .expect("submit accepted")
            .json()
            .await
            .expect("submit answer");
        answer["job"]["id"].as_str().expect("job id").to_string()
    }

    /// One value of the daemon's `/metrics` (`line` is the metric with its labels).
    async fn metric(&self, url: &str, line: &str) -> f64 {
        let text = self
            .http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("/metrics has no `{line}`"))
    }

    /// A job as the API shows it (`GET /v1/jobs/{id}`) with its events, less what differs
    /// between a job and its copy: the id, the placement (judged by the node that answers) and,
    /// for copies given another due time, `run_after_ms`.
    async fn view(&self, url: &str, id: &str, due_too: bool) -> Value {
        let get = async |path: String| -> Value {
            self.http
                .get(format!("{url}{path}"))
                .send()
                .await
                .expect("get")
                .error_for_status()
                .expect("a stored job")
                .json()
                .await
                .expect("JSON")
        };
        let mut job = get(format!("/v1/jobs/{id}")).await;
        let fields = job.as_object_mut().expect("a job object");
        fields.remove("id");
        fields.remove("placement");
        if due_too {
            fields.remove("run_after_ms");
        }
        fields.insert(
            "events".into(),
            get(format!("/v1/jobs/{id}/events")).await["events"].clone(),
        );
        job
    }

    /// Jobs waiting for an agent, by the store (`driftless_queue_depth`).
    async fn queue_depth(&self, url: &str) -> f64 {
        self.metric(url, "driftless_queue_depth").await
    }

    /// Warm the node up: 200 hello jobs, one at a time.
    async fn warm_up(&self, url: &str, hello: &str) -> Arc<Bench> {
        let bench = Arc::new(Bench {
            http: self.http.clone(),
            component: hello.to_string(),
        });
        for _ in 0..200 {
            bench.job(url).await;
        }
        bench
    }
}

/// SIGTERM, and wait for the daemon to exit (it drains first).
async fn stop(mut daemon: DaemonProcess) {
    daemon.signal("TERM");
    if daemon.wait_exit(Duration::from_secs(120)).await.is_none() {
        panic!("the daemon did not stop within 120 s of SIGTERM");
    }
}

/// Resident memory of a process, in KiB: now (`VmRSS`) and its peak (`VmHWM`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rss {
    pub now_kib: u64,
    pub peak_kib: u64,
}

impl Rss {
    fn of(pid: u32) -> Rss {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Rss {
            now_kib: field("VmRSS:"),
            peak_kib: field("VmHWM:"),
        }
    }

    pub(crate) fn mb(kib: u64) -> f64 {
        kib as f64 / 1024.0
    }
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} MiB (peak {:.1} MiB)",
            Rss::mb(self.now_kib),
            Rss::mb(self.peak_kib)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Throughput against agents.

/// Jobs/s of one PostgreSQL node with each of `agents` agents: a fresh database of one server
/// per count, the node warmed up, then `jobs` jobs from the bench's clients.
pub(crate) async fn agents_sweep(
    settings: &Settings,
    agents: &[usize],
    jobs: usize,
) -> Vec<(usize, f64, f64)> {
    let stand = Stand::new(Setup::Postgres(1), settings.concurrency);
    let pg = stand.pg.as_ref().unwrap();
    let (admin, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the bench's PostgreSQL");
    tokio::spawn(connection);
    let mut figures = Vec::new();
    for &n in agents {
        let database = format!("agents_{n}");
        admin
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .expect("create a database");
        let url = format!("postgres://postgres@127.0.0.1:{}/{database}", pg.port);
        let daemon = DaemonProcess::start(
            env!("CARGO_BIN_EXE_driftless"),
            &stand.root.path().join(&database),
            &[
                "--node",
                "node-1",
                "--agents",
                &n.to_string(),
                "--store",
                &url,
            ],
        );
        let hello = stand.upload(&daemon.url, HELLO).await;
        eprintln!("agents: PostgreSQL, 1 node, {n} agents: warming up, then {jobs} jobs...");
        let bench = stand.warm_up(&daemon.url, &hello).await;
        let (elapsed, loaded) = throughput(
            &bench,
            std::slice::from_ref(&daemon.url),
            jobs,
            settings.concurrency,
        )
        .await;
        figures.push((
            n,
            jobs as f64 / elapsed.as_secs_f64(),
            percentile(&loaded, 50.0),
        ));
        drop(daemon);
    }
    figures
}

// ---------------------------------------------------------------------------------------------
// Memory with a deep queue.

/// What the memory figure measured on one setup.
pub(crate) struct Memory {
    pub setup: Setup,
    pub jobs: usize,
    /// After the warm-up, before the fill.
    pub idle: Rss,
    /// How long submitting the jobs took (the node drained: nothing ran meanwhile).
    pub fill: Duration,
    /// With every job queued.
    pub queued: Rss,
    /// From the resume to the last job's success.
    pub run: Duration,
    /// With every job completed.
    pub done: Rss,
}

/// The daemon's RSS with `jobs` hello jobs queued, and after they all completed. The node is
/// drained (`POST /v1/admin/drain`: it claims nothing, submissions go on) while the bench's
/// clients submit the jobs by component hash over HTTP; then resumed
/// (`POST /v1/admin/resume`) and left to run them.
pub(crate) async fn memory(setup: Setup, settings: &Settings, jobs: usize) -> Memory {
    let stand = Stand::new(setup, settings.concurrency);
    let daemon = stand.start(settings.agents.as_deref(), &[]);
    let url = daemon.url.clone();
    let hello = stand.upload(&url, HELLO).await;
    eprintln!("memory: {}: warming up...", setup.label());
    stand.warm_up(&url, &hello).await;
    let succeeded = "driftless_jobs{status=\"succeeded\"}";
    let before = stand.metric(&url, succeeded).await;
    let idle = Rss::of(daemon.pid());
    stand.admin(&url, "drain").await;
    eprintln!(
        "memory: {}: draining; submitting {jobs} jobs from {} clients...",
        setup.label(),
        settings.concurrency
    );
    let next = Arc::new(AtomicUsize::new(0));
    let stand = Arc::new(stand);
    let start = Instant::now();
    let clients: Vec<_> = (0..settings.concurrency)
        .map(|_| {
            let (stand, next, url, hello) =
                (stand.clone(), next.clone(), url.clone(), hello.clone());
            tokio::spawn(async move {
                let input = input();
                while next.fetch_add(1, Ordering::Relaxed) < jobs {
                    stand.submit(&url, &hello, &input).await;
                }
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client");
    }
    let fill = start.elapsed();
    let depth = stand.queue_depth(&url).await;
    assert_eq!(
        depth as usize, jobs,
        "the drained node should hold every submitted job in its queue"
    );
    let queued = Rss::of(daemon.pid());
    eprintln!(
        "memory: {}: {jobs} queued in {:.1} s ({queued}); resuming...",
        setup.label(),
        fill.as_secs_f64()
    );
    stand.admin(&url, "resume").await;
    let start = Instant::now();
    let target = before + jobs as f64;
    let mut last_report = Instant::now();
    loop {
        let done = stand.metric(&url, succeeded).await;
        if done >= target {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "memory: {}: {:.0} of {jobs} completed...",
                setup.label(),
                done - before
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let run = start.elapsed();
    let done = Rss::of(daemon.pid());
    drop(daemon);
    Memory {
        setup,
        jobs,
        idle,
        fill,
        queued,
        run,
        done,
    }
}

// ---------------------------------------------------------------------------------------------
// Claim latency against queue depth.

/// What is queued when the claim window runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backlog {
    /// Nothing but the window's own jobs.
    Empty,
    /// Hello jobs this node can run, not due for a day (`run_after_ms` a day ahead): in the
    /// queue, behind the window's jobs in claim order.
    NotDue(usize),
    /// kv-v2 jobs, due and ahead of the window's jobs, that no live node can run: the node
    /// serves kv 1.1 only, and the node that admitted them is gone.
    Unrunnable(usize),
}

impl Backlog {
    pub(crate) fn label(self) -> String {
        match self {
            Backlog::Empty => "empty queue".into(),
            Backlog::NotDue(n) => {
                format!("{} runnable jobs queued, due in a day", thousands(n as f64))
            }
            Backlog::Unrunnable(n) => format!(
                "{} jobs no live node can run at the head of the queue",
                thousands(n as f64)
            ),
        }
    }

    fn copies(self) -> usize {
        match self {
            Backlog::Empty => 0,
            Backlog::NotDue(n) | Backlog::Unrunnable(n) => n,
        }
    }
}

/// What one claim window measured.
pub(crate) struct Depth {
    pub setup: Setup,
    pub backlog: Backlog,
    /// The store's queue depth when the window started (the window's jobs not counted).
    pub depth: f64,
    /// How long cloning the backlog took.
    pub fill: Duration,
    /// Claims in the window, and their mean wall-clock µs.
    pub claims: f64,
    pub claim_us: f64,
    /// Submit → complete of the window's jobs, p50 and p99 (ms).
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The daemon's CPU µs per job over the window (idle agents' polls included).
    pub cpu_us: f64,
}

/// Claim latency with `backlog` queued: the mean of the `claim` stage (an agent's claim when
/// it had no attempt in hand) over `window` hello jobs submitted one at a time.
///
/// A first daemon (every kv version) stores one job of the backlog's kind while drained and
/// stops; the bench then clones that job's rows in the stopped daemon's store with SQL
/// ([`clone_sqlite`], [`clone_postgres`]); a second daemon on the same store, serving kv 1.1
/// only (for every backlog, so only the queue differs), runs the window.
pub(crate) async fn claim_depth(
    setup: Setup,
    settings: &Settings,
    backlog: Backlog,
    window: usize,
) -> Depth {
    let label = format!("claims: {}, {}", setup.label(), backlog.label());
    let stand = Stand::new(setup, settings.concurrency);
    let first = stand.start(settings.agents.as_deref(), &[]);
    let hello = stand.upload(&first.url, HELLO).await;
    let template = match backlog {
        Backlog::Empty => None,
        Backlog::NotDue(_) => {
            stand.admin(&first.url, "drain").await;
            Some(stand.submit(&first.url, &hello, &input()).await)
        }
        Backlog::Unrunnable(_) => {
            let kv2 = stand.upload(&first.url, KV_V2).await;
            stand.admin(&first.url, "drain").await;
            Some(
                stand
                    .submit(&first.url, &kv2, &json!({"key": "backlog"}))
                    .await,
            )
        }
    };
    let due_changed = matches!(backlog, Backlog::NotDue(_));
    let original = match &template {
        Some(id) => Some(stand.view(&first.url, id, due_changed).await),
        None => None,
    };
    stop(first).await;
    let mut fill = Duration::ZERO;
    let mut sample = None;
    if let Some(template) = &template {
        // An unrunnable template stays queued, one of the backlog; a runnable one is due and
        // runs at the second daemon's start.
        let copies = match backlog {
            Backlog::Unrunnable(n) => n.saturating_sub(1),
            _ => backlog.copies(),
        };
        let run_after = match backlog {
            Backlog::NotDue(_) => Some(driftless_now_ms() + 24 * 3600 * 1000),
            _ => None,
        };
        eprintln!("{label}: cloning the queued job {template} {copies} times with SQL...");
        let start = Instant::now();
        sample = match &stand.pg {
            None => clone_sqlite(&stand.sqlite_file(), template, copies, run_after)
                .unwrap_or_else(|e| panic!("cloning in SQLite failed: {e}")),
            Some(pg) => clone_postgres(&pg.url(), template, copies, run_after)
                .await
                .unwrap_or_else(|e| panic!("cloning in PostgreSQL failed: {e}")),
        };
        fill = start.elapsed();
        eprintln!("{label}: cloned in {:.1} s", fill.as_secs_f64());
    }
    let daemon = stand.start(
        settings.agents.as_deref(),
        &["--provide", "driftless:kv@1.1.0"],
    );
    let url = daemon.url.clone();
    if let (Some(original), Some(copy)) = (&original, &sample) {
        let copied = stand.view(&url, copy, due_changed).await;
        assert_eq!(
            &copied, original,
            "{label}: a cloned job ({copy}) does not look like the job it was cloned from"
        );
    }
    eprintln!("{label}: warming up...");
    let bench = stand.warm_up(&url, &hello).await;
    let depth = stand.queue_depth(&url).await;
    assert!(
        depth as usize >= backlog.copies(),
        "{label}: the queue holds {depth} jobs, fewer than the backlog: the clone missed a table the queue needs"
    );
    eprintln!("{label}: queue depth {depth}; {window} jobs, one at a time...");
    let daemons = std::slice::from_ref(&daemon);
    let before = Reading::take(&bench.http, daemons).await;
    let mut latencies = Vec::with_capacity(window);
    let mut last_report = Instant::now();
    for i in 0..window {
        latencies.push(bench.job(&url).await);
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("{label}: {} of {window} jobs...", i + 1);
            last_report = Instant::now();
        }
    }
    let after = Reading::take(&bench.http, daemons).await;
    latencies.sort();
    let (stages, cpu_us) = before.per_job(&after, window);
    let (_, claim_us, claims_per_job) = stages
        .iter()
        .find(|(stage, _, _)| stage == "claim")
        .cloned()
        .expect("the claim stage");
    drop(daemon);
    Depth {
        setup,
        backlog,
        depth,
        fill,
        claims: claims_per_job * window as f64,
        claim_us,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        cpu_us,
    }
}

/// Milliseconds since the epoch (the stores' clock on this machine).
fn driftless_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Fresh job ids, as the API makes them (`job_` and a UUIDv7).
fn job_ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|_| format!("job_{}", uuid::Uuid::now_v7().simple()))
        .collect()
}

/// Rows copied per statement.
const CLONE_BATCH: usize = 20_000;

/// How a copy of one column of the template's rows is made: the SQL expression over the
/// template row `t`, the new id `c.value` and (in tables other than `jobs`) the new job row
/// `j`; `None` leaves the column to the database (a row id or identity).
fn clone_expr(table: &str, column: &str, generated: bool) -> Option<String> {
    if generated {
        return None;
    }
    Some(match (table, column) {
        ("jobs", "id") => "c.value".into(),
        // Unique per job; the template has none (a plain submission), nor do its copies.
        ("jobs", "idempotency_key") => "NULL".into(),
        ("jobs", "run_after_ms") => "COALESCE($3, t.run_after_ms)".into(),
        (_, "job_id") => "c.value".into(),
        // Columns other tables copy from their job row (the queue's order and due time).
        (_, "seq" | "run_after_ms") => format!("j.\"{column}\""),
        // A copy due later than its template waits as a delayed job does.
        ("queue", "state") => {
            "CASE WHEN j.run_after_ms > t.run_after_ms THEN 'delayed' ELSE t.state END".into()
        }
        _ => format!("t.\"{column}\""),
    })
}

/// The `INSERT … SELECT` that copies `table`'s rows of the template (`$2`) once per new id in
/// `ids` (a FROM item with columns `value` and `key`, in order).
fn clone_statement(table: &str, columns: &[(String, bool)], ids: &str) -> String {
    let (names, exprs): (Vec<String>, Vec<String>) = columns
        .iter()
        .filter_map(|(c, generated)| {
            clone_expr(table, c, *generated).map(|e| (format!("\"{c}\""), e))
        })
        .unzip();
    let (names, exprs) = (names.join(", "), exprs.join(", "));
    if table == "jobs" {
        format!(
            "INSERT INTO jobs ({names}) SELECT {exprs} FROM {ids}, jobs t WHERE t.id = $2 ORDER BY c.key"
        )
    } else {
        format!(
            "INSERT INTO \"{table}\" ({names}) SELECT {exprs} FROM {ids} JOIN jobs j ON j.id = c.value, \"{table}\" t WHERE t.job_id = $2 ORDER BY c.key"
        )
    }
}

/// Copy the queued job `template` `copies` times in the SQLite file `db` (its daemon
/// stopped): its `jobs` row and its rows in every table with a `job_id` column (the queue, its
/// events), each copy with a fresh id, in one transaction. Which tables and columns are read
/// from the schema, so the copies follow it. Returns the last copy's id.
pub(crate) fn clone_sqlite(
    db: &Path,
    template: &str,
    copies: usize,
    run_after: Option<i64>,
) -> rusqlite::Result<Option<String>> {
    let mut conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let columns = |table: &str| -> rusqlite::Result<Vec<(String, bool)>> {
        let rows: Vec<(String, String, i64)> = conn
            .prepare("SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let pks = rows.iter().filter(|(_, _, pk)| *pk > 0).count();
        // An INTEGER PRIMARY KEY alone is the row id: SQLite numbers it.
        Ok(rows
            .into_iter()
            .map(|(name, ty, pk)| {
                let rowid = pk == 1 && pks == 1 && ty.eq_ignore_ascii_case("INTEGER");
                (name, rowid)
            })
            .collect())
    };
    let mut plan = vec![("jobs".to_string(), columns("jobs")?)];
    for table in tables.iter().filter(|t| *t != "jobs") {
        let cols = columns(table)?;
        if cols.iter().any(|(c, _)| c == "job_id") {
            let n: i64 = conn.query_row(
                &format!("SELECT COUNT(*) FROM \"{table}\" WHERE job_id = ?1"),
                [template],
                |r| r.get(0),
            )?;
            if n > 0 {
                plan.push((table.clone(), cols));
            }
        }
    }
    let ids = "json_each(?1) c";
    let statements: Vec<String> = plan
        .iter()
        .map(|(table, cols)| clone_statement(table, cols, ids).replace('$', "?"))
        .collect();
    let tx = conn.transaction()?;
    let (mut left, mut last) = (copies, None);
    while left > 0 {
        let n = left.min(CLONE_BATCH);
        let ids = job_ids(n);
        let batch = serde_json::to_string(&ids).unwrap();
        for (sql, (table, _)) in statements.iter().zip(&plan) {
            if table == "jobs" {
                tx.execute(sql, rusqlite::params![batch, template, run_after])?;
            } else {
                tx.execute(sql, rusqlite::params![batch, template])?;
            }
        }
        left -= n;
        last = ids.last().cloned();
    }
    tx.commit()?;
    Ok(last)
}

/// [`clone_sqlite`] on PostgreSQL (the daemon stopped), then `ANALYZE`, as autovacuum would
/// after so large an insert.
pub(crate) async fn clone_postgres(
    url: &str,
    template: &str,
    copies: usize,
    run_after: Option<i64>,
) -> Result<Option<String>, tokio_postgres::Error> {
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let columns_sql = "SELECT column_name::text, (is_identity = 'YES' OR is_generated = 'ALWAYS' OR COALESCE(column_default, '') LIKE 'nextval(%') AS generated
         FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";
    let columns = async |client: &tokio_postgres::Client, table: &str| {
        client.query(columns_sql, &[&table]).await.map(|rows| {
            rows.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, bool>(1)))
                .collect::<Vec<_>>()
        })
    };
    let mut plan = vec![("jobs".to_string(), columns(&client, "jobs").await?)];
    let tables = client
        .query(
            "SELECT table_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'job_id' AND table_name <> 'jobs' ORDER BY table_name",
            &[],
        )
        .await?;
    for row in tables {
        let table: String = row.get(0);
        let n: i64 = client
            .query_one(
                &format!("SELECT COUNT(*) FROM \"{table}\" WHERE job_id = $1"),
                &[&template],
            )
            .await?
            .get(0);
        if n > 0 {
            let cols = columns(&client, &table).await?;
            plan.push((table, cols));
        }
    }
    let ids = "unnest($1::text[]) WITH ORDINALITY AS c(value, key)";
    let statements: Vec<String> = plan
        .iter()
        .map(|(table, cols)| {
            // `$3` is typed by its use in COALESCE; only the jobs statement has it.
            clone_statement(table, cols, ids)
        })
        .collect();
    let tx = client.transaction().await?;
    let (mut left, mut last) = (copies, None);
    while left > 0 {
        let n = left.min(CLONE_BATCH);
        let batch = job_ids(n);
        last = batch.last().cloned();
        for (sql, (table, _)) in statements.iter().zip(&plan) {
            if table == "jobs" {
                tx.execute(sql.as_str(), &[&batch, &template, &run_after])
                    .await?;
            } else {
                tx.execute(sql.as_str(), &[&batch, &template]).await?;
            }
        }
        left -= n;
    }
    tx.commit().await?;
    client.batch_execute("ANALYZE").await?;
    Ok(last)
}
