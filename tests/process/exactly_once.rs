//! Exactly-once kv effects through the real daemon: a task job reads a kv counter, writes it
//! one up, then holds its attempt open. Killing the daemon (`kill -9`) or cancelling jobs in
//! that window must never count a write twice or count a write of an attempt that did not
//! succeed: the succeeded attempts' outputs are exactly 1..=N, and the next job counts N + 1.

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::postgres::PgServer;
use driftless_tests::{bytes, examples::KV_COUNTER};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_driftless");

fn start(dir: &Path, store: Option<&str>, agents: &str) -> DaemonProcess {
    let mut args = vec![
        "--node",
        "node-1",
        "--agents",
        agents,
        "--lease-ms",
        "60000",
    ];
    if let Some(url) = store {
        args.extend(["--store", url]);
    }
    DaemonProcess::start(BIN, dir, &args)
}

async fn deploy_counter(c: &Client) {
    let (status, body) = c
        .send(
            c.request(Method::PUT, "/v1/tasks/counter")
                .header("content-type", "application/wasm")
                .body(bytes(KV_COUNTER)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn submit(c: &Client, hold_ms: u64) -> String {
    let spec = json!({"task": "counter", "input": {"key": "n", "hold_ms": hold_ms}});
    let (status, body) = c
        .send(c.request(Method::POST, "/v1/jobs").json(&spec))
        .await;
    assert_eq!(status, 201, "{body}");
    body["job"]["id"].as_str().unwrap().to_string()
}

/// The counts the succeeded jobs saw, sorted.
async fn counts(c: &Client, ids: &[String]) -> Vec<i64> {
    let mut seen = Vec::new();
    for id in ids {
        let job = c.wait(id).await;
        if job["status"] == "succeeded" {
            seen.push(job["output"]["count"].as_i64().unwrap());
        }
    }
    seen.sort();
    seen
}

/// A pseudo-random pause (xorshift, seeded from the clock; the seed is in the failure text).
struct Pauses(u64);

impl Pauses {
    fn new() -> Pauses {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Pauses(u64::from(nanos) | 1)
    }
    fn next(&mut self, max_ms: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(100 + self.0 % max_ms)
    }
}

async fn kill_9_never_counts_twice(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = start(dir.path(), store, "2");
    let c = Client::new(&daemon.url);
    deploy_counter(&c).await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(submit(&c, 400).await);
    }
    let mut pauses = Pauses::new();
    let seed = pauses.0;
    for _ in 0..5 {
        tokio::time::sleep(pauses.next(700)).await;
        daemon.kill9();
        daemon = start(dir.path(), store, "2");
    }
    let c = Client::new(&daemon.url);
    let seen = counts(&c, &ids).await;
    assert_eq!(seen, (1..=12).collect::<Vec<_>>(), "pauses seeded {seed}");
    let last = submit(&c, 0).await;
    assert_eq!(c.wait(&last).await["output"]["count"], 13);
    let lost: usize = attempts_lost(&c, &ids).await;
    assert!(
        lost > 0,
        "some attempt was killed between its write and its end (seed {seed})"
    );
}

/// How many attempts of these jobs were lost (killed with the daemon).
async fn attempts_lost(c: &Client, ids: &[String]) -> usize {
    let mut lost = 0;
    for id in ids {
        let (_, job) = c.get(&format!("/v1/jobs/{id}")).await;
        lost += job["attempt_list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == "lost")
            .count();
    }
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_never_counts_a_kv_write_twice_on_sqlite() {
    kill_9_never_counts_twice(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_never_counts_a_kv_write_twice_on_postgres() {
    let pg = PgServer::start();
    kill_9_never_counts_twice(Some(&pg.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_read_modify_writes_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path(), None, "4");
    let c = Client::new(&daemon.url);
    deploy_counter(&c).await;
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(submit(&c, 0).await);
    }
    assert_eq!(counts(&c, &ids).await, (1..=50).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_attempts_kv_write_never_counts() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start(dir.path(), None, "2");
    let c = Client::new(&daemon.url);
    deploy_counter(&c).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(submit(&c, 600).await);
    }
    // Cancel every other job while it holds its attempt open after its write.
    for id in ids.iter().step_by(2) {
        driftless_tests::poll::until(
            &format!("{id} to start"),
            Duration::from_secs(20),
            async || c.get(&format!("/v1/jobs/{id}")).await.1["status"] == "running",
        )
        .await;
        let (status, body) = c
            .send(c.request(Method::POST, &format!("/v1/jobs/{id}/cancel")))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let seen = counts(&c, &ids).await;
    let cancelled: Vec<Value> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(c.wait(id).await["status"].clone());
        }
        v
    };
    assert_eq!(
        cancelled.iter().filter(|s| *s == "cancelled").count(),
        3,
        "{cancelled:?}"
    );
    assert_eq!(seen, [1, 2, 3], "only the succeeded jobs' writes count");
    let last = submit(&c, 0).await;
    assert_eq!(c.wait(&last).await["output"]["count"], 4);
}

/// A node frozen (`kill -STOP`) while its attempts hold their kv writes: another node takes the
/// jobs over when the frozen node's registration and leases lapse, and when the frozen node
/// resumes, its attempts' writes are refused (fenced out): the counter still counts each job once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_nodes_kv_writes_never_count_after_its_jobs_moved_on() {
    let pg = PgServer::start();
    let url = pg.url();
    let root = tempfile::tempdir().unwrap();
    let node = |name| DaemonProcess::quick_takeover_node(BIN, (root.path(), name), &url, name, &[]);
    let frozen = node("node-a");
    let a = Client::new(&frozen.url);
    deploy_counter(&a).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(submit(&a, 1500).await);
    }
    driftless_tests::poll::until(
        "node-a to run two jobs",
        Duration::from_secs(20),
        async || {
            let (_, body) = a.get("/v1/admin/inflight").await;
            body["attempts"].as_array().is_some_and(|v| v.len() == 2)
        },
    )
    .await;
    frozen.signal("STOP");
    let other = node("node-b");
    let b = Client::new(&other.url);
    let seen = counts(&b, &ids).await;
    frozen.signal("CONT");
    // The resumed node tries to finish its attempts; wait until it has nothing running.
    driftless_tests::poll::until(
        "node-a to end its stale attempts",
        Duration::from_secs(30),
        async || {
            let (_, body) = a.get("/v1/admin/inflight").await;
            body["attempts"].as_array().is_some_and(Vec::is_empty)
        },
    )
    .await;
    assert_eq!(seen, (1..=6).collect::<Vec<_>>());
    let last = submit(&b, 0).await;
    assert_eq!(
        b.wait(&last).await["output"]["count"],
        7,
        "a fenced-out write counted"
    );
    assert!(
        attempts_lost(&b, &ids).await >= 2,
        "node-a's attempts were taken over"
    );
}
