//! Deployed tasks end to end: immutable versions, pinning at submit time, safe update while
//! jobs run, rollback, unregistering, and crashes in the middle of a deploy.
//! (Declared as a test of the runtime package so the real binary is built for it.)

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::poll::{until, until_some};
use driftless_tests::{bytes, examples::*};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_driftless");

fn start(extra: &[&str]) -> (tempfile::TempDir, DaemonProcess, Client) {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(BIN, dir.path(), extra);
    let c = Client::new(&d.url);
    (dir, d, c)
}

async fn deploy(c: &Client, name: &str, wasm: &str) -> (u16, Value) {
    c.send(
        c.request(Method::PUT, &format!("/v1/tasks/{name}"))
            .header("content-type", "application/wasm")
            .header("x-driftless-actor", "tests@ci")
            .body(bytes(wasm)),
    )
    .await
}

async fn submit(c: &Client, task: &str, input: Value) -> Value {
    let (status, body) = c
        .send(
            c.request(Method::POST, "/v1/jobs")
                .json(&json!({"task": task, "input": input})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["job"].clone()
}

async fn wait_running(c: &Client, id: &str) {
    until(
        &format!("{id} to start"),
        Duration::from_secs(10),
        async || c.get(&format!("/v1/jobs/{id}")).await.1["status"] == "running",
    )
    .await;
}

#[tokio::test]
async fn an_update_never_changes_the_code_of_jobs_already_submitted() {
    let (_dir, _d, c) = start(&["--agents", "1"]);
    let (status, v1) = deploy(&c, "demo", SLOW).await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(
        (v1["version"].clone(), v1["previous"].clone()),
        (json!(1), Value::Null)
    );

    // One agent: `a` runs, `b` waits in the queue; both are pinned to version 1.
    let a = submit(&c, "demo", json!({"ms": 1500, "tag": "a"})).await;
    wait_running(&c, a["id"].as_str().unwrap()).await;
    let b = submit(&c, "demo@current", json!({"ms": 10, "tag": "b"})).await;
    assert_eq!(
        (a["task"].clone(), b["task"].clone()),
        (json!("demo@1"), json!("demo@1"))
    );

    // Version 2 (another component) while they are running and queued.
    let (status, v2) = deploy(&c, "demo", HELLO).await;
    assert_eq!(status, 201, "{v2}");
    assert_eq!(
        (v2["version"].clone(), v2["previous"].clone()),
        (json!(2), json!(1))
    );
    let new = submit(&c, "demo", json!({"v": 2})).await;
    assert_eq!(new["task"], "demo@2");

    // The old jobs finish on version 1 (slow's output), the new one on version 2 (an echo).
    let a = c.wait(a["id"].as_str().unwrap()).await;
    let b = c.wait(b["id"].as_str().unwrap()).await;
    let new = c.wait(new["id"].as_str().unwrap()).await;
    assert_eq!(
        a["output"],
        json!({"tag": "a", "slept_ms": 1500, "attempt": 1}),
        "{a}"
    );
    assert_eq!(
        b["output"],
        json!({"tag": "b", "slept_ms": 10, "attempt": 1}),
        "{b}"
    );
    assert_eq!(new["output"], json!({"v": 2}), "{new}");

    // Deploying bytes that are already a version changes nothing.
    let (status, again) = deploy(&c, "demo", HELLO).await;
    assert_eq!(
        (status, again["version"].clone(), again["created"].clone()),
        (200, json!(2), json!(false))
    );
    let (status, old) = deploy(&c, "demo", SLOW).await;
    assert_eq!((status, old["version"].clone()), (200, json!(1)));
    assert_eq!(
        c.get("/v1/tasks/demo").await.1["current"],
        2,
        "a no-op deploy moves nothing"
    );

    // Roll back: new jobs run version 1 again.
    let (status, back) = c
        .send(
            c.request(Method::POST, "/v1/tasks/demo/rollback")
                .header("x-driftless-actor", "tests@ci"),
        )
        .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(
        (back["version"].clone(), back["previous"].clone()),
        (json!(1), json!(2))
    );
    let d = submit(&c, "demo", json!({"ms": 1, "tag": "d"})).await;
    assert_eq!(d["task"], "demo@1");
    let d = c.wait(d["id"].as_str().unwrap()).await;
    assert_eq!(d["output"]["tag"], "d", "{d}");
    // A pinned version can be named explicitly whatever is current.
    let e = submit(&c, "demo@2", json!({"e": true})).await;
    assert_eq!(
        c.wait(e["id"].as_str().unwrap()).await["output"],
        json!({"e": true})
    );

    let (_, task) = c.get("/v1/tasks/demo").await;
    assert_eq!(task["current"], 1);
    let versions = task["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["jobs"]["succeeded"], 3, "{task}");
    assert_eq!(versions[1]["jobs"]["succeeded"], 2, "{task}");
    assert!(
        versions[0]["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "driftless:job/context@1.0.0: satisfied"),
        "{task}"
    );
    let audit: Vec<(&str, Value, Value)> = task["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["old_version"].clone(),
                a["new_version"].clone(),
            )
        })
        .collect();
    assert_eq!(
        audit,
        vec![
            ("deploy", Value::Null, json!(1)),
            ("deploy", json!(1), json!(2)),
            ("rollback", json!(2), json!(1)),
        ]
    );
    assert!(
        task["audit"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["actor"] == "tests@ci" && a["request_id"].as_str().unwrap().len() > 8)
    );
    // What this node resolves `current` to, as it reported it to the store and as it holds it.
    assert_eq!(task["nodes"][0]["node"], "node-1");
    assert_eq!(task["nodes"][0]["version"], 1, "{task}");
    assert_eq!(task["this_node"]["resolves_current_to"], 1, "{task}");

    let (_, list) = c.get("/v1/tasks").await;
    assert_eq!(
        list["tasks"],
        json!([{"name": "demo", "current": 1, "versions": 2, "updated_ms": task["updated_ms"]}])
    );
}

#[tokio::test]
async fn a_pinned_version_cannot_be_unregistered_until_its_jobs_are_done() {
    let (_dir, _d, c) = start(&["--agents", "1"]);
    deploy(&c, "demo", SLOW).await;
    deploy(&c, "demo", HELLO).await;
    let running = submit(&c, "demo@1", json!({"ms": 1500, "tag": "r"})).await;
    let id = running["id"].as_str().unwrap();
    wait_running(&c, id).await;

    let (status, refused) = c
        .send(c.request(Method::DELETE, "/v1/tasks/demo/versions/1"))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (409, json!("version-in-use")),
        "{refused}"
    );
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("pinned by 1 queued or running job(s)") && message.contains(id),
        "{message}"
    );

    let (status, current) = c
        .send(c.request(Method::DELETE, "/v1/tasks/demo/versions/2"))
        .await;
    assert_eq!(status, 409, "{current}");
    assert!(
        current["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is the current version"),
        "{current}"
    );

    // Waiting for the jobs to drain, then unregistering.
    let (status, deleted) = c
        .send(c.request(Method::DELETE, "/v1/tasks/demo/versions/1?wait=30"))
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(c.wait(id).await["status"], "succeeded");

    let (status, gone) = c
        .send(
            c.request(Method::POST, "/v1/jobs")
                .json(&json!({"task": "demo@1"})),
        )
        .await;
    assert_eq!(status, 409, "{gone}");
    assert_eq!(gone["error"]["code"], "task-version-unregistered", "{gone}");
    assert!(
        gone["error"]["message"]
            .as_str()
            .unwrap()
            .contains("was unregistered"),
        "{gone}"
    );
    let (status, _) = c
        .send(
            c.request(Method::POST, "/v1/tasks/demo/rollback")
                .json(&json!({"to": 1})),
        )
        .await;
    assert_eq!(status, 409);

    // Version numbers are never reused: the same bytes come back as version 3.
    let (status, v3) = deploy(&c, "demo", SLOW).await;
    assert_eq!((status, v3["version"].clone()), (201, json!(3)), "{v3}");
    let (_, task) = c.get("/v1/tasks/demo").await;
    assert!(task["versions"][0]["deleted_ms"].is_i64(), "{task}");
}

#[tokio::test]
async fn a_rejected_deploy_changes_nothing_and_bad_references_say_why() {
    let (_dir, _d, c) = start(&["--provide", "driftless:kv@1.0.0"]);
    assert_eq!(deploy(&c, "counter", KV_COUNTER).await.0, 201);
    let (status, rejected) = deploy(&c, "counter", KV_V2).await;
    assert_eq!(
        (status, rejected["error"]["code"].clone()),
        (422, json!("rejected")),
        "{rejected}"
    );
    assert_eq!(rejected["report"]["verdict"], "rejected");
    let (_, task) = c.get("/v1/tasks/counter").await;
    assert_eq!(task["current"], 1);
    assert_eq!(task["versions"].as_array().unwrap().len(), 1);
    assert_eq!(task["audit"].as_array().unwrap().len(), 1);

    // Task jobs share the task's kv data (raw component jobs each get their own).
    for want in [1, 2] {
        let job = submit(&c, "counter", json!({"key": "k"})).await;
        let job = c.wait(job["id"].as_str().unwrap()).await;
        assert_eq!(job["output"]["count"], want, "{job}");
    }

    let (status, bad) = deploy(&c, "Not A Name", HELLO).await;
    assert_eq!(
        (status, bad["error"]["code"].clone()),
        (400, json!("bad-task-name")),
        "{bad}"
    );
    let (status, unknown) = c
        .send(
            c.request(Method::POST, "/v1/jobs")
                .json(&json!({"task": "nope"})),
        )
        .await;
    assert_eq!(
        (status, unknown["error"]["code"].clone()),
        (404, json!("unknown-task")),
        "{unknown}"
    );
    let (status, both) = c
        .send(
            c.request(Method::POST, "/v1/jobs")
                .json(&json!({"task": "counter", "component": "abc"})),
        )
        .await;
    assert_eq!(
        (status, both["error"]["code"].clone()),
        (400, json!("bad-spec")),
        "{both}"
    );
    assert_eq!(c.get("/v1/tasks/nope").await.0, 404);
    let (status, bad) = c
        .send(c.request(Method::DELETE, "/v1/tasks/counter/versions/latest"))
        .await;
    assert_eq!(
        (status, bad["error"]["code"].clone()),
        (400, json!("bad-request")),
        "{bad}"
    );
}

/// A process that dies between the steps of a deploy (after storing the component, or inside
/// the transaction that records the version) leaves the task as it was: `current` valid and
/// every version's component stored.
#[tokio::test]
async fn a_crash_in_the_middle_of_a_deploy_leaves_the_task_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    {
        let d = DaemonProcess::start(BIN, dir.path(), &[]);
        assert_eq!(deploy(&Client::new(&d.url), "demo", HELLO).await.0, 201);
    }
    for fault in ["deploy-after-blob", "deploy-inside-transaction"] {
        let d = DaemonProcess::start_with_env(BIN, dir.path(), &[], &[("DRIFTLESS_FAULT", fault)]);
        let c = Client::new(&d.url);
        let sent = c
            .request(Method::PUT, "/v1/tasks/demo")
            .header("content-type", "application/wasm")
            .body(bytes(SLOW))
            .send()
            .await;
        assert!(
            sent.is_err(),
            "{fault}: the process should have died mid-deploy"
        );
        drop(d);

        let d = DaemonProcess::start(BIN, dir.path(), &[]);
        let c = Client::new(&d.url);
        let (_, task) = c.get("/v1/tasks/demo").await;
        assert_eq!(task["current"], 1, "{fault}: {task}");
        assert_eq!(
            task["versions"].as_array().unwrap().len(),
            1,
            "{fault}: {task}"
        );
        let job = submit(&c, "demo", json!({"after": fault})).await;
        let job = c.wait(job["id"].as_str().unwrap()).await;
        assert_eq!(
            job["output"],
            json!({"after": fault}),
            "{fault}: v1 still runs"
        );
    }
    // The next real deploy gets the next number, and its component is there.
    let d = DaemonProcess::start(BIN, dir.path(), &[]);
    let c = Client::new(&d.url);
    let (status, v2) = deploy(&c, "demo", SLOW).await;
    assert_eq!((status, v2["version"].clone()), (201, json!(2)), "{v2}");
    let job = submit(&c, "demo", json!({"ms": 1, "tag": 2})).await;
    assert_eq!(
        c.wait(job["id"].as_str().unwrap()).await["output"]["tag"],
        2
    );
}

/// Two nodes on one store (two processes on one data directory): a deploy through one makes
/// the other drop its cached resolution within one refresh (the store's task generation), and
/// `GET /v1/tasks/{name}` shows what every node resolves `current` to.
#[tokio::test]
async fn a_deploy_through_one_node_reaches_the_others_cache() {
    let dir = tempfile::tempdir().unwrap();
    let a = DaemonProcess::start(BIN, dir.path(), &["--node", "node-a"]);
    let b = DaemonProcess::start(BIN, dir.path(), &["--node", "node-b"]);
    let (ca, cb) = (Client::new(&a.url), Client::new(&b.url));
    deploy(&ca, "demo", HELLO).await;
    assert_eq!(submit(&cb, "demo", json!(1)).await["task"], "demo@1");
    assert_eq!(
        cb.get("/v1/tasks/demo").await.1["this_node"]["resolves_current_to"],
        1
    );

    deploy(&ca, "demo", SLOW).await;
    let seen = until_some(
        "both nodes to resolve version 2",
        Duration::from_secs(10),
        async || {
            let (_, task) = cb.get("/v1/tasks/demo").await;
            let nodes = &task["nodes"];
            (task["this_node"]["resolves_current_to"] == 2
                && nodes.as_array().unwrap().iter().all(|n| n["version"] == 2))
            .then(|| nodes.clone())
        },
    )
    .await;
    let nodes: Vec<(&str, &Value)> = seen
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap(), &n["version"]))
        .collect();
    assert_eq!(nodes, vec![("node-a", &json!(2)), ("node-b", &json!(2))]);
    let job = submit(&cb, "demo", json!({"ms": 1, "tag": "b"})).await;
    assert_eq!(job["task"], "demo@2");
}
