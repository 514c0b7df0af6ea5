//! A job naming a task is pinned to the version its node resolves `current` to. When that
//! version was unregistered meanwhile (moved away from and removed through another node, before
//! this node's cache caught up), the store refuses the pin and the node resolves again: the job
//! runs the current version and no queued job pins a removed one.
//!
//! Two in-process daemons on one SQLite data directory; node B never refreshes its resolution
//! cache on its own (a refresh interval of an hour), so its stale resolution is certain.

use driftless::daemon::{Daemon, DaemonConfig, StoreChoice};
use driftless::node::NodeConfig;
use driftless_tests::daemon::Client;
use driftless_tests::examples::{HELLO, SLOW};
use driftless_tests::{Host, bytes};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

async fn start(dir: &Path, node: &str) -> (Daemon, Client) {
    let daemon = Daemon::start(DaemonConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: StoreChoice::Sqlite,
        data_dir: dir.to_path_buf(),
        catalog: Host::Current.catalog(),
        node: NodeConfig {
            node: node.into(),
            agents: 1,
            refresh_tasks: Duration::from_secs(3600),
            ..NodeConfig::default()
        },
        server: Default::default(),
    })
    .await
    .expect("the daemon starts");
    let client = Client::new(&format!("http://{}", daemon.addr));
    (daemon, client)
}

async fn deploy(c: &Client, wasm: &str) -> Value {
    let (status, body) = c
        .send(
            c.request(Method::PUT, "/v1/tasks/demo")
                .header("content-type", "application/wasm")
                .body(bytes(wasm)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn submit(c: &Client, task: &str, input: Value) -> (u16, Value) {
    c.send(
        c.request(Method::POST, "/v1/jobs")
            .json(&json!({"task": task, "input": input})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_resolving_a_version_removed_meanwhile_runs_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, ca) = start(dir.path(), "node-a").await;
    let (b, cb) = start(dir.path(), "node-b").await;
    assert_eq!(deploy(&ca, HELLO).await["version"], 1);
    let (status, first) = submit(&cb, "demo", json!(1)).await;
    assert_eq!(
        (status, first["job"]["task"].clone()),
        (201, json!("demo@1"))
    );
    let first = first["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(cb.wait(&first).await["status"], "succeeded");

    // Through node A: version 2 becomes current and version 1 is removed (nothing pins it).
    assert_eq!(deploy(&ca, SLOW).await["version"], 2);
    let (status, deleted) = ca
        .send(ca.request(Method::DELETE, "/v1/tasks/demo/versions/1"))
        .await;
    assert_eq!(status, 200, "{deleted}");
    let (_, seen) = cb.get("/v1/tasks/demo").await;
    assert_eq!(
        seen["this_node"]["resolves_current_to"], 1,
        "node B still resolves the removed version: {seen}"
    );

    // Node B's submit is refused the removed version by the store, resolves again, and pins 2.
    let (status, job) = submit(&cb, "demo", json!({"ms": 1, "tag": "b"})).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["job"]["task"], "demo@2", "{job}");
    let id = job["job"]["id"].as_str().unwrap();
    assert_eq!(cb.wait(id).await["status"], "succeeded");
    let (_, task) = cb.get("/v1/tasks/demo").await;
    assert_eq!(task["this_node"]["resolves_current_to"], 2, "{task}");
    let v1 = &task["versions"][0];
    assert!(v1["deleted_ms"].is_i64(), "{task}");
    assert_eq!(
        (v1["jobs"]["queued"].clone(), v1["jobs"]["running"].clone()),
        (json!(0), json!(0)),
        "no job pins the removed version: {task}"
    );
    b.shutdown(Duration::from_secs(5)).await.unwrap();
    a.shutdown(Duration::from_secs(5)).await.unwrap();
}
