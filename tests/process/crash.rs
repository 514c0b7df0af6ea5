//! Crash safety: `kill -9` the daemon while jobs are queued and one is running, restart it on
//! the same data directory, and every acknowledged job finishes exactly once in the record.

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::poll::until;
use driftless_tests::{bytes, examples::*};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn kill_9_with_queued_and_running_jobs_loses_nothing_and_finishes_each_once() {
    let dir = tempfile::tempdir().unwrap();
    // One agent, a long lease: recovery must come from the restarted agent's identity, not
    // from lease expiry.
    let args = ["--agents", "1", "--lease-ms", "60000", "--reap-ms", "60000"];
    let mut first = DaemonProcess::start(env!("CARGO_BIN_EXE_driftless"), dir.path(), &args);
    let c = Client::new(&first.url);
    let (status, slow) = c
        .submit(
            &bytes(SLOW),
            &[("input", json!({"ms": 1500, "tag": "slow"}).to_string())],
            None,
        )
        .await;
    assert_eq!(status, 201);
    let slow = slow["job"]["id"].as_str().unwrap().to_string();
    let mut queued = Vec::new();
    for i in 0..10 {
        let (status, body) = c
            .submit(
                &bytes(HELLO),
                &[("input", json!({"i": i}).to_string())],
                None,
            )
            .await;
        assert_eq!(status, 201);
        queued.push(body["job"]["id"].as_str().unwrap().to_string());
    }
    until(
        "the slow job to start",
        Duration::from_secs(10),
        async || c.get(&format!("/v1/jobs/{slow}")).await.1["status"] == "running",
    )
    .await;
    first.kill9();

    let second = DaemonProcess::start(env!("CARGO_BIN_EXE_driftless"), dir.path(), &args);
    let c = Client::new(&second.url);
    let recovered_at = Instant::now();
    let job = c.wait(&slow).await;
    assert!(
        recovered_at.elapsed() < Duration::from_secs(30),
        "recovery waited for the lease"
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        job["output"],
        json!({"tag": "slow", "slept_ms": 1500, "attempt": 2})
    );
    let states: Vec<&str> = job["attempt_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["lost", "succeeded"],
        "one lost attempt (the killed one), one result"
    );
    let (_, events) = c.get(&format!("/v1/jobs/{slow}/events")).await;
    assert!(
        events
            .to_string()
            .contains("restarted under the same identity"),
        "{events}"
    );

    for (i, id) in queued.iter().enumerate() {
        let job = c.wait(id).await;
        assert_eq!(job["status"], "succeeded");
        assert_eq!(job["output"], json!({"i": i}));
        let succeeded = job["attempt_list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == "succeeded")
            .count();
        assert_eq!(succeeded, 1, "job {id} finished more than once: {job}");
    }
    let (_, all) = c.get("/v1/jobs?limit=100").await;
    assert_eq!(
        all["jobs"].as_array().unwrap().len(),
        11,
        "every acknowledged job is in the record, once"
    );
}
