//! Exclusive identities and one clock, through real daemons on a throwaway PostgreSQL:
//!
//! - a node frozen (`kill -STOP`) past its node TTL and its lease, replaced by a process with
//!   the same node name that takes its identities, then resumed (`kill -CONT`): the resumed
//!   process says it lost its identities, claims nothing with them (it takes free ones), and
//!   every job ends with exactly one succeeded attempt, its attempts never overlapping;
//! - a node whose clock runs minutes ahead: its reaper and its registry judge leases and
//!   heartbeats by the database's clock, so it steals no live attempt, and a job submitted
//!   through it runs at once.
//!
//! (Declared as a test of the runtime package so the real binary is built for it.)

use driftless::store::postgres::PostgresStore;
use driftless::store::{AttemptState, Clock, JobStore, NodeStore};
use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::poll::until;
use driftless_tests::postgres::PgServer;
use driftless_tests::{bytes, examples::SLOW};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_driftless");

/// A node of the test cluster named `node`, in its own data directory under `root`.
fn node(root: &Path, dir: &str, store: &str, node: &str, env: &[(&str, &str)]) -> DaemonProcess {
    DaemonProcess::quick_takeover_node(BIN, (root, dir), store, node, env)
}

/// Submit a `slow` job that sleeps `ms`; its id.
async fn submit_slow(c: &Client, ms: u64, tag: usize) -> String {
    let input = json!({"ms": ms, "tag": tag}).to_string();
    let (status, body) = c.submit(&bytes(SLOW), &[("input", input)], None).await;
    assert_eq!(status, 201, "{body}");
    body["job"]["id"].as_str().unwrap().to_string()
}

/// The identities a daemon's agents hold, and the process it is.
async fn identities(c: &Client) -> (Vec<String>, String) {
    let (status, body) = c.get("/v1/admin/inflight").await;
    assert_eq!(status, 200, "{body}");
    let ids = body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    (ids, body["holder"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_node_resumed_after_its_replacement_took_its_identities_claims_nothing_with_them()
{
    let pg = PgServer::start();
    let url = pg.url();
    let root = tempfile::tempdir().unwrap();
    let store = PostgresStore::connect(&url).await.unwrap();
    let old = node(root.path(), "old", &url, "node-1", &[]);
    let c_old = Client::new(&old.url);
    until(
        "the old agents to take their identities",
        Duration::from_secs(10),
        async || identities(&c_old).await.0 == ["node-1/0", "node-1/1"],
    )
    .await;
    let old_process = identities(&c_old).await.1;

    // Steady load: jobs that hold their attempt for a while, both agents busy when frozen.
    let mut ids = Vec::new();
    for i in 0..24 {
        ids.push(submit_slow(&c_old, 400, i).await);
    }
    until(
        "both old agents to run",
        Duration::from_secs(20),
        async || {
            let (_, body) = c_old.get("/v1/admin/inflight").await;
            body["count"] == 2
        },
    )
    .await;
    old.signal("STOP");
    let frozen_at = store.now();

    // Its holds lapse (no renewal while frozen); the replacement takes the same identities.
    until(
        "the frozen process's holds to lapse",
        Duration::from_secs(20),
        async || {
            let mut lapsed = true;
            for id in ["node-1/0", "node-1/1"] {
                let hold = store.identity_holder(id).await.unwrap().unwrap();
                lapsed &= hold.lease_expires_ms < store.now();
            }
            lapsed
        },
    )
    .await;
    let new = node(root.path(), "new", &url, "node-1", &[]);
    let c_new = Client::new(&new.url);
    until(
        "the replacement to take the same identities",
        Duration::from_secs(10),
        async || identities(&c_new).await.0 == ["node-1/0", "node-1/1"],
    )
    .await;
    let new_process = identities(&c_new).await.1;
    for i in 24..36 {
        ids.push(submit_slow(&c_new, 400, i).await);
    }
    until(
        "the replacement to run jobs",
        Duration::from_secs(20),
        async || {
            let (_, body) = c_new.get("/v1/admin/inflight").await;
            body["count"].as_u64().is_some_and(|n| n > 0)
        },
    )
    .await;

    old.signal("CONT");
    until(
        "the resumed process to say it lost both identities",
        Duration::from_secs(20),
        async || {
            let log = old.log();
            ["node-1/0", "node-1/1"].iter().all(|id| {
                log.contains(&format!(
                    "lost identity {id} to {new_process}; no longer claiming with it"
                ))
            })
        },
    )
    .await;
    until(
        "the resumed process to take free identities instead",
        Duration::from_secs(20),
        async || identities(&c_old).await.0 == ["node-1/2", "node-1/3"],
    )
    .await;
    for i in 36..44 {
        ids.push(submit_slow(&c_old, 100, i).await);
    }

    for id in &ids {
        let job = c_new.wait(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let record = store.get_job(id).await.unwrap().unwrap();
        let attempts = &record.attempt_list;
        let succeeded = attempts
            .iter()
            .filter(|a| a.state == AttemptState::Succeeded)
            .count();
        assert_eq!(succeeded, 1, "{id}: {attempts:?}");
        // One attempt at a time: each ended before the next began.
        for pair in attempts.windows(2) {
            let ended = pair[0].finished_ms.expect("an earlier attempt ended");
            assert!(ended <= pair[1].started_ms, "{id} overlaps: {attempts:?}");
        }
        // The resumed process claimed nothing with the identities it lost.
        for a in attempts {
            let lost_identity = ["node-1/0", "node-1/1"].contains(&a.agent.as_str());
            if a.holder.as_deref() == Some(old_process.as_str()) && lost_identity {
                assert!(
                    a.started_ms < frozen_at,
                    "{id}: the old process claimed with {} after it was frozen: {a:?}",
                    a.agent
                );
            }
        }
    }
    let lost_by_old = store_attempts_by(&store, &ids, &old_process).await;
    assert!(
        lost_by_old.contains(&AttemptState::Lost),
        "the frozen process's attempts were fenced out and run again: {lost_by_old:?}"
    );
}

/// The states of the attempts `process` claimed among `ids`.
async fn store_attempts_by(
    store: &PostgresStore,
    ids: &[String],
    process: &str,
) -> Vec<AttemptState> {
    let mut states = Vec::new();
    for id in ids {
        let record = store.get_job(id).await.unwrap().unwrap();
        states.extend(
            record
                .attempt_list
                .iter()
                .filter(|a| a.holder.as_deref() == Some(process))
                .map(|a| a.state),
        );
    }
    states
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_clock_runs_minutes_ahead_steals_no_live_attempt() {
    let pg = PgServer::start();
    let url = pg.url();
    let root = tempfile::tempdir().unwrap();
    let a = node(root.path(), "a", &url, "node-a", &[]);
    let c_a = Client::new(&a.url);
    let long = submit_slow(&c_a, 5_000, 0).await;
    until(
        "the long job to run on node-a",
        Duration::from_secs(20),
        async || c_a.get(&format!("/v1/jobs/{long}")).await.1["status"] == "running",
    )
    .await;

    // Five minutes ahead: by its own clock, every lease node-a holds expired long ago.
    let b = node(
        root.path(),
        "b",
        &url,
        "node-b",
        &[("DRIFTLESS_CLOCK_OFFSET_MS", "300000")],
    );
    let c_b = Client::new(&b.url);
    until(
        "node-b to see both nodes live",
        Duration::from_secs(10),
        async || {
            let (_, body) = c_b.get("/v1/nodes").await;
            body["nodes"]
                .as_array()
                .is_some_and(|n| n.iter().filter(|n| n["state"] == "live").count() == 2)
        },
    )
    .await;
    let (_, job) = c_b.get(&format!("/v1/jobs/{long}")).await;
    assert_eq!(
        job["status"], "running",
        "the job must still run while node-b's reaper and registry are at work (else the test proves nothing): {job}"
    );
    // A job submitted through the skewed node runs at once (its run-after is the store's
    // time, not five minutes ahead).
    let quick = submit_slow(&c_b, 0, 1).await;
    let quick = c_b.wait(&quick).await;
    assert_eq!(quick["status"], "succeeded", "{quick}");

    let job = c_a.wait(&long).await;
    let attempts: Vec<(&str, &str)> = job["attempt_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["agent"].as_str().unwrap(), a["state"].as_str().unwrap()))
        .collect();
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        matches!(attempts.as_slice(), [(agent, "succeeded")] if agent.starts_with("node-a/")),
        "one attempt, on node-a, never stolen: {job}"
    );
    let (_, nodes) = c_a.get("/v1/nodes").await;
    let live: Vec<&Value> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] == "live")
        .collect();
    assert_eq!(live.len(), 2, "node-b marked no node gone: {nodes}");
}
