//! Draining, exclusive agent identities and zero-downtime hand-over, against real processes.
//! (Declared as a test of the runtime package so the real binary is built for it.)

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::poll::{until, until_some};
use driftless_tests::{bytes, examples::*};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_driftless");
/// How long a node may take to show what a test waits for.
const WAIT: Duration = Duration::from_secs(10);

fn start(dir: &Path, extra: &[&str]) -> (DaemonProcess, Client) {
    let d = DaemonProcess::start(BIN, dir, extra);
    let c = Client::new(&d.url);
    (d, c)
}

async fn submit(c: &Client, wasm: &str, input: Value, max_attempts: u32) -> String {
    let (status, body) = c
        .submit(
            &bytes(wasm),
            &[
                ("input", input.to_string()),
                ("max_attempts", max_attempts.to_string()),
            ],
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["job"]["id"].as_str().unwrap().to_string()
}

async fn agents(c: &Client) -> Vec<String> {
    let (_, inflight) = c.get("/v1/admin/inflight").await;
    serde_json::from_value(inflight["agents"].clone()).unwrap()
}

#[tokio::test]
async fn drain_stops_claiming_fails_readiness_and_resume_undoes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, c) = start(dir.path(), &["--agents", "1"]);
    let running = submit(&c, SLOW, json!({"ms": 1000}), 3).await;
    until("the job to start", WAIT, async || {
        c.get("/v1/admin/inflight").await.1["count"] == 1
    })
    .await;
    let (_, inflight) = c.get("/v1/admin/inflight").await;
    assert_eq!(inflight["attempts"][0]["job"], running.as_str());
    assert_eq!(inflight["attempts"][0]["agent"], "node-1/0");
    assert!(inflight["attempts"][0]["running_ms"].as_i64().unwrap() >= 0);
    assert_eq!(inflight["agents"], json!(["node-1/0"]));

    let drained = c
        .request(Method::POST, "/v1/admin/drain")
        .send()
        .await
        .unwrap();
    assert_eq!(drained.headers()["connection"], "close");
    let drained: Value = drained.json().await.unwrap();
    assert_eq!(
        (drained["draining"].clone(), drained["count"].clone()),
        (json!(true), json!(1))
    );
    let (status, ready) = c.get("/readyz").await;
    assert_eq!(
        (status, ready["error"]["code"].clone()),
        (503, json!("draining"))
    );
    assert_eq!(c.get("/healthz").await.0, 200, "a draining node is alive");

    // The running attempt finishes; a job submitted meanwhile is accepted but not claimed:
    // after the last attempt ended, it is still queued and says it waits for the drained node.
    let waiting = submit(&c, HELLO, json!(1), 3).await;
    assert_eq!(c.wait(&running).await["status"], "succeeded");
    let job = until_some(
        "the queued job to wait for the draining node",
        WAIT,
        async || {
            let (_, job) = c.get(&format!("/v1/jobs/{waiting}")).await;
            let says = job["placement"]["waiting"].as_str().unwrap_or("");
            says.contains("node-1 (draining)").then_some(job)
        },
    )
    .await;
    assert_eq!(
        (job["status"].clone(), job["attempts"].clone()),
        (json!("queued"), json!(0)),
        "{job}"
    );

    let (_, resumed) = c.send(c.request(Method::POST, "/v1/admin/resume")).await;
    assert_eq!(resumed["draining"], false);
    assert_eq!(c.get("/readyz").await.0, 200);
    assert_eq!(c.wait(&waiting).await["status"], "succeeded");
}

#[tokio::test]
async fn sigterm_lets_short_attempts_finish_and_requeues_long_ones_uncharged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut d, c) = start(dir.path(), &["--agents", "2", "--grace-ms", "700"]);
    let short = submit(&c, SLOW, json!({"ms": 300, "tag": "short"}), 1).await;
    let long = submit(&c, SLOW, json!({"ms": 4000, "tag": "long"}), 1).await;
    until("both jobs to start", WAIT, async || {
        c.get("/v1/admin/inflight").await.1["count"] == 2
    })
    .await;
    d.signal("TERM");
    assert_eq!(
        d.wait_exit(Duration::from_secs(10)).await,
        Some(0),
        "{}",
        d.log()
    );
    assert!(
        d.log().contains("interrupted and queued again"),
        "{}",
        d.log()
    );

    let (_d2, c) = start(dir.path(), &["--agents", "2"]);
    let short = c.wait(&short).await;
    assert_eq!(short["status"], "succeeded");
    assert_eq!(
        short["attempt_list"].as_array().unwrap().len(),
        1,
        "{short}"
    );
    // The long job (one attempt allowed) was interrupted, not charged, and ran again.
    let long = c.wait(&long).await;
    assert_eq!(long["status"], "succeeded", "{long}");
    assert_eq!(
        long["attempts"], 1,
        "the interrupted attempt is not charged: {long}"
    );
    let states: Vec<&str> = long["attempt_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["interrupted", "succeeded"]);
    let (_, events) = c
        .get(&format!("/v1/jobs/{}/events", long["id"].as_str().unwrap()))
        .await;
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "interrupted"
                && e["message"].as_str().unwrap().contains("not charged")),
        "{events}"
    );
}

#[tokio::test]
async fn identities_are_exclusive_and_a_restart_recovers_its_attempts_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--agents", "1", "--node", "n", "--lease-ms", "60000"];
    let (a, ca) = start(dir.path(), &args);
    until("a to take an identity", WAIT, async || {
        agents(&ca).await.len() == 1
    })
    .await;
    let (b, cb) = start(dir.path(), &args);
    until("b to take an identity", WAIT, async || {
        agents(&cb).await.len() == 1
    })
    .await;
    assert_eq!(agents(&ca).await, ["n/0"]);
    assert_eq!(
        agents(&cb).await,
        ["n/1"],
        "the second process takes another identity"
    );
    assert!(
        b.log().contains("held by live processes were skipped"),
        "{}",
        b.log()
    );

    // The pool (two per agent) is used up: a third process waits, and says so.
    let (third, c3) = start(dir.path(), &args);
    until(
        "the third process to say it waits for an identity",
        WAIT,
        async || {
            third
                .log()
                .contains("every identity of this node is held by a live process")
        },
    )
    .await;
    assert!(agents(&c3).await.is_empty());
    // When `a` stops, it releases n/0 and the third process takes it.
    a.signal("TERM");
    until("the third process to take n/0", WAIT, async || {
        agents(&c3).await == ["n/0"]
    })
    .await;
    drop(third);
    drop(b);

    // A process killed with a job running: its restart recovers the attempt at once, not
    // after the 60 s lease.
    let (mut d, c) = start(dir.path(), &args);
    let job = submit(&c, SLOW, json!({"ms": 60000}), 3).await;
    until("the job to start", WAIT, async || {
        c.get(&format!("/v1/jobs/{job}")).await.1["status"] == "running"
    })
    .await;
    let agent = c.get(&format!("/v1/jobs/{job}")).await.1["agent"].clone();
    d.kill9();
    let restarted = std::time::Instant::now();
    let (_d, c) = start(dir.path(), &args);
    until("the lost attempt to be recovered", WAIT, async || {
        c.get(&format!("/v1/jobs/{job}")).await.1["attempt_list"][0]["state"] == "lost"
    })
    .await;
    assert!(
        restarted.elapsed() < Duration::from_secs(10),
        "recovered by identity, not lease"
    );
    let (_, record) = c.get(&format!("/v1/jobs/{job}")).await;
    assert_eq!(
        agents(&c).await,
        [agent.as_str().unwrap()],
        "it took its identity back"
    );
    let (_, events) = c.get(&format!("/v1/jobs/{job}/events")).await;
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"]
                .as_str()
                .unwrap()
                .contains("restarted under the same identity")),
        "{events} {record}"
    );
    c.send(c.request(Method::POST, &format!("/v1/jobs/{job}/cancel")))
        .await;
}

/// Keep submitting over HTTP while the node is replaced three times by a new process on the
/// same port and data directory: no request fails, no job is lost, none finishes twice.
#[tokio::test]
async fn hand_over_under_steady_load_fails_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = DaemonProcess::start(BIN, dir.path(), &["--agents", "2", "--grace-ms", "3000"]);
    let port = first.port().to_string();
    let url = first.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, accepted) = (stop.clone(), accepted.clone());
        let url = url.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let t0 = std::time::Instant::now();
            let wasm = bytes(SLOW);
            let (mut ok, mut failed, mut n) = (Vec::new(), Vec::new(), 0u32);
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let sent = http
                    .post(format!("{url}/v1/jobs"))
                    .query(&[("input", json!({"ms": 50, "tag": n}).to_string())])
                    .header("content-type", "application/wasm")
                    .body(wasm.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => {
                        let body: Value = r.json().await.unwrap();
                        ok.push((n, body["job"]["id"].as_str().unwrap().to_string()));
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failed.push(format!("#{n}: HTTP {}", r.status())),
                    Err(e) => failed.push(format!("#{n} at {:?}: {e:?}", t0.elapsed())),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, failed)
        })
    };
    // Each phase lasts until the load had 30 more jobs accepted.
    let accepted_more = async |more: usize| {
        let target = accepted.load(Ordering::SeqCst) + more;
        until(&format!("{target} jobs accepted"), WAIT, async || {
            accepted.load(Ordering::SeqCst) >= target
        })
        .await
    };
    let mut current = first;
    for _ in 0..3 {
        accepted_more(30).await;
        let next = DaemonProcess::start(
            BIN,
            dir.path(),
            &[
                "--agents",
                "2",
                "--grace-ms",
                "3000",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ],
        );
        // The hand-over procedure (README): wait until the port answers from the new process
        // and it is ready, then stop the old one.
        let pid = next.pid().to_string();
        let probe = Client::new(&next.url);
        until("the new process to answer on the port", WAIT, async || {
            probe.get("/v1/admin/inflight").await.1["holder"]
                .as_str()
                .is_some_and(|h| h.split(':').nth(1) == Some(pid.as_str()))
                && probe.get("/readyz").await.0 == 200
        })
        .await;
        current.signal("TERM");
        assert_eq!(
            current.wait_exit(Duration::from_secs(15)).await,
            Some(0),
            "{}",
            current.log()
        );
        current = next;
    }
    accepted_more(30).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = load.await.unwrap();
    assert!(
        failed.is_empty(),
        "failed requests during the hand-overs: {failed:?}"
    );
    assert!(ok.len() > 100, "only {} submissions", ok.len());

    let c = Client::new(&current.url);
    let mut finished: HashMap<String, usize> = HashMap::new();
    for (n, id) in &ok {
        let job = c.wait(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["output"]["tag"], *n);
        let done = job["attempt_list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == "succeeded")
            .count();
        finished.insert(id.clone(), done);
    }
    let twice: Vec<_> = finished.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "jobs not finished exactly once: {twice:?}"
    );
}
