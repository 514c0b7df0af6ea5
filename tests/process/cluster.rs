//! Several nodes on one PostgreSQL (a throwaway server from Debian's binaries): claims across
//! the cluster, the node registry, and rolling upgrades of the host modules with no flag day.
//! (Declared as a test of the runtime package so the real binary is built for it.)

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::poll::until;
use driftless_tests::postgres::PgServer;
use driftless_tests::{bytes, examples::*};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BIN: &str = env!("CARGO_BIN_EXE_driftless");

/// The catalog before the upgrade: kv 1.x only.
const OLD: &[&str] = &[
    "--provide",
    "driftless:kv@1.0.0",
    "--provide",
    "driftless:kv@1.1.0",
];
/// After: kv 1.1 kept for old jobs, kv 2.0 added.
const NEW: &[&str] = &[
    "--provide",
    "driftless:kv@1.1.0",
    "--provide",
    "driftless:kv@2.0.0",
];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A node of the test cluster: its own data directory (its own machine, as far as the
/// compile cache goes), the shared PostgreSQL store.
struct TestNode {
    name: String,
    dir: PathBuf,
    process: DaemonProcess,
}

impl TestNode {
    fn start(root: &Path, store: &str, name: &str, catalog: &[&str]) -> TestNode {
        let dir = root.join(name);
        let mut args = vec![
            "--store",
            store,
            "--node",
            name,
            "--agents",
            "2",
            "--grace-ms",
            "3000",
            "--node-ttl-ms",
            "2000",
        ];
        args.extend_from_slice(catalog);
        TestNode {
            name: name.to_string(),
            process: DaemonProcess::start(BIN, &dir, &args),
            dir,
        }
    }

    fn client(&self) -> Client {
        Client::new(&self.process.url)
    }

    /// Replace the process with one on the new catalog (same name, same data directory).
    fn restart(&mut self, store: &str, catalog: &[&str]) {
        let root = self.dir.parent().unwrap().to_path_buf();
        let fresh = TestNode::start(&root, store, &self.name, catalog);
        self.process = fresh.process;
    }
}

/// The node name an attempt's agent identity (`node-a/1`) belongs to.
fn node_of(agent: &str) -> &str {
    agent.split('/').next().unwrap_or(agent)
}

/// The attempts of a finished job that succeeded.
fn succeeded(job: &Value) -> Vec<&Value> {
    job["attempt_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "succeeded")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_submitted_to_any_node_run_exactly_once_across_the_cluster() {
    let pg = PgServer::start();
    let store = pg.url();
    let root = tempfile::tempdir().unwrap();
    let nodes: Vec<TestNode> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| TestNode::start(root.path(), &store, n, &[]))
        .collect();
    let clients: Vec<Client> = nodes.iter().map(TestNode::client).collect();

    // The registry shows all three, live, each with its catalog and identities.
    until(
        "three live nodes in the registry",
        Duration::from_secs(10),
        async || {
            let (_, body) = clients[0].get("/v1/nodes").await;
            body["nodes"].as_array().is_some_and(|n| {
                n.iter()
                    .filter(|n| {
                        n["state"] == "live" && n["identities"].as_array().unwrap().len() == 2
                    })
                    .count()
                    == 3
            })
        },
    )
    .await;
    let (_, registry) = clients[1].get("/v1/nodes").await;
    let listed: Vec<&str> = registry["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["node-a", "node-b", "node-c"], "{registry}");
    for n in registry["nodes"].as_array().unwrap() {
        assert!(
            n["catalog"]
                .as_array()
                .unwrap()
                .contains(&json!("driftless:kv@2.0.0")),
            "{n}"
        );
        assert_eq!(n["version"], env!("CARGO_PKG_VERSION"));
        assert!(n["heartbeat_age_ms"].as_i64().unwrap() < 2000, "{n}");
        assert_eq!(n["this_process"], n["node"] == "node-b", "{n}");
    }

    // The CLI prints the same registry, one line per process, marking the one answering.
    let out = std::process::Command::new(BIN)
        .args(["nodes", "--url", &nodes[2].process.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(lines.len(), 3, "{table}");
    for (line, name) in lines.iter().zip(["node-a ", "node-b ", "node-c *"]) {
        assert!(line.starts_with(name), "{table}");
        assert!(
            line.contains(" live ") && line.contains("driftless:kv@2.0.0"),
            "{table}"
        );
    }

    // Upload once, then submit by hash to every node in turn: every node's agents race to
    // claim from the one queue.
    let (status, put) = clients[0]
        .send(
            clients[0]
                .request(Method::PUT, "/v1/components")
                .body(bytes(SLOW)),
        )
        .await;
    assert!(status == 201 || status == 200, "{put}");
    let hash = put["component"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for n in 0..120u32 {
        let c = &clients[n as usize % 3];
        let (status, body) = c
            .send(c.request(Method::POST, "/v1/jobs").json(&json!({
                "component": hash,
                "input": {"ms": 20, "tag": n},
            })))
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push((n, body["job"]["id"].as_str().unwrap().to_string()));
    }
    let mut ran_on: HashMap<String, usize> = HashMap::new();
    for (n, id) in &ids {
        let job = clients[(*n as usize + 1) % 3].wait(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["output"]["tag"], *n, "{job}");
        let attempts = job["attempt_list"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "claimed more than once: {job}");
        *ran_on
            .entry(node_of(attempts[0]["agent"].as_str().unwrap()).to_string())
            .or_default() += 1;
    }
    assert!(
        ran_on.len() >= 2,
        "every job ran on one node; the others never claimed: {ran_on:?}"
    );
}

/// What the load generator sent.
#[derive(Debug, Clone)]
struct Sent {
    kind: &'static str,
    id: String,
}

/// How far the load generator got: requests started, and jobs accepted.
#[derive(Default)]
struct Progress {
    started: AtomicUsize,
    accepted: AtomicUsize,
}

impl Progress {
    /// Wait until `more` jobs beyond those accepted so far were accepted.
    async fn accepted_more(&self, more: usize) {
        let target = self.accepted.load(Ordering::SeqCst) + more;
        until(
            &format!("the load to have {target} jobs accepted"),
            Duration::from_secs(20),
            async || self.accepted.load(Ordering::SeqCst) >= target,
        )
        .await;
    }

    /// Wait until a request that started after this call is under way: the requests started
    /// before it have ended (the load sends one at a time), so none is in flight to a node
    /// taken out of rotation just before.
    async fn moved_on(&self) {
        let target = self.started.load(Ordering::SeqCst) + 1;
        until(
            "the load to send its next request",
            Duration::from_secs(20),
            async || self.started.load(Ordering::SeqCst) >= target,
        )
        .await;
    }
}

/// A steady stream of kv 1.x jobs (and kv 2.x ones once `v2` is set) to whichever nodes are in
/// rotation, like a load balancer that follows `/readyz`.
fn load(
    rotation: Arc<Mutex<Vec<String>>>,
    v2: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
) -> tokio::task::JoinHandle<(Vec<Sent>, Vec<String>)> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let (adaptive, kv2) = (bytes(KV_ADAPTIVE), bytes(KV_V2));
        let (mut sent, mut failed) = (Vec::new(), Vec::new());
        let mut n = 0usize;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let url = {
                let r = rotation.lock().unwrap();
                r[n % r.len()].clone()
            };
            progress.started.fetch_add(1, Ordering::SeqCst);
            let (kind, wasm) = if v2.load(Ordering::SeqCst) && n.is_multiple_of(2) {
                ("kv2", kv2.clone())
            } else {
                ("kv1", adaptive.clone())
            };
            let resp = http
                .post(format!("{url}/v1/jobs"))
                .query(&[("input", json!({"key": format!("k{n}")}).to_string())])
                .header("content-type", "application/wasm")
                .body(wasm)
                .send()
                .await;
            match resp {
                Ok(r) if r.status() == 201 => {
                    let body: Value = r.json().await.unwrap();
                    sent.push(Sent {
                        kind,
                        id: body["job"]["id"].as_str().unwrap().to_string(),
                    });
                    progress.accepted.fetch_add(1, Ordering::SeqCst);
                }
                Ok(r) => {
                    let status = r.status();
                    failed.push(format!(
                        "{kind} #{n} to {url}: HTTP {status}: {}",
                        r.text().await.unwrap_or_default()
                    ))
                }
                Err(e) => failed.push(format!("{kind} #{n} to {url}: {e:?}")),
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        (sent, failed)
    })
}

/// Nodes start on kv 1.x; a steady stream of kv 1.x jobs, and of kv 2.x jobs once the first node
/// is upgraded, runs while every node is upgraded in turn (out of rotation, drain, restart with
/// kv 1.1 + 2.0). With `kill`, the second node dies by `kill -9` instead of draining.
async fn rolling_upgrade(kill: bool) {
    let pg = PgServer::start();
    let store = pg.url();
    let root = tempfile::tempdir().unwrap();
    let mut nodes: Vec<TestNode> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| TestNode::start(root.path(), &store, n, OLD))
        .collect();
    until("three live nodes", Duration::from_secs(10), async || {
        let (_, body) = nodes[0].client().get("/v1/nodes").await;
        body["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().filter(|n| n["state"] == "live").count() == 3)
    })
    .await;

    // No node has ever provided kv 2: a kv 2 job is refused with the report, nothing stored.
    let (status, refused) = nodes[0]
        .client()
        .submit(
            &bytes(KV_V2),
            &[("input", json!({"key": "early"}).to_string())],
            None,
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No other node of the cluster can run it either"),
        "{refused}"
    );
    assert!(
        refused["report"]["summary"]
            .as_str()
            .unwrap()
            .contains("driftless:kv/store@2.0.0"),
        "{refused}"
    );

    let rotation = Arc::new(Mutex::new(
        nodes
            .iter()
            .map(|n| n.process.url.clone())
            .collect::<Vec<_>>(),
    ));
    let (v2, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let progress = Arc::new(Progress::default());
    let load = load(rotation.clone(), v2.clone(), stop.clone(), progress.clone());
    let mut upgraded_at: HashMap<String, i64> = HashMap::new();
    let mut waiting_job = None;

    for i in 0..3 {
        progress.accepted_more(30).await;
        let name = nodes[i].name.clone();
        if i == 1 {
            // node-a, the only kv 2 node so far, is drained by an operator: a kv 2 job is still
            // accepted (a registered node can run it), waits and says why, and runs as soon
            // as node-b comes back upgraded.
            let a = nodes[0].client();
            let (status, _) = a.send(a.request(Method::POST, "/v1/admin/drain")).await;
            assert_eq!(status, 200);
            rotation
                .lock()
                .unwrap()
                .retain(|u| *u != nodes[0].process.url);
            let c = nodes[2].client();
            let (status, body) = c
                .submit(
                    &bytes(KV_V2),
                    &[("input", json!({"key": "waiting"}).to_string())],
                    None,
                )
                .await;
            assert_eq!(status, 201, "{body}");
            let id = body["job"]["id"].as_str().unwrap().to_string();
            until(
                "node-a to show as draining",
                Duration::from_secs(10),
                async || {
                    let (_, job) = c.get(&format!("/v1/jobs/{id}")).await;
                    job["placement"]["waiting"]
                        .as_str()
                        .is_some_and(|w| w.contains("node-a (draining)"))
                },
            )
            .await;
            let (_, job) = c.get(&format!("/v1/jobs/{id}")).await;
            assert_eq!(job["status"], "queued", "{job}");
            assert_eq!(job["placement"]["runnable_on"], json!([]), "{job}");
            let verdicts = job["placement"]["nodes"].as_array().unwrap();
            assert!(
                verdicts
                    .iter()
                    .any(|v| v["node"] == "node-c" && v["verdict"] == "rejected"),
                "{job}"
            );
            waiting_job = Some(id);
        }
        // Out of rotation first (a load balancer following /readyz), then stop the process.
        rotation
            .lock()
            .unwrap()
            .retain(|u| *u != nodes[i].process.url);
        progress.moved_on().await;
        if kill && i == 1 {
            nodes[i].process.kill9();
        } else {
            nodes[i].process.signal("TERM");
            assert_eq!(
                nodes[i].process.wait_exit(Duration::from_secs(20)).await,
                Some(0),
                "{}",
                nodes[i].process.log()
            );
        }
        // The old process is gone: every attempt started from now on is the new process's
        // (recorded before the restart, which may claim a queued job at once).
        upgraded_at.insert(name.clone(), now_ms());
        nodes[i].restart(&store, NEW);
        let url = nodes[i].process.url.clone();
        let c = nodes[i].client();
        until(
            "the upgraded node to be ready",
            Duration::from_secs(10),
            async || c.get("/readyz").await.0 == 200,
        )
        .await;
        rotation.lock().unwrap().push(url);
        v2.store(true, Ordering::SeqCst);
        if i == 1 {
            let id = waiting_job.clone().unwrap();
            let job = nodes[1].client().wait(&id).await;
            assert_eq!(job["status"], "succeeded", "{job}");
            assert_eq!(
                node_of(succeeded(&job)[0]["agent"].as_str().unwrap()),
                "node-b",
                "{job}"
            );
            let a = nodes[0].client();
            assert_eq!(
                a.send(a.request(Method::POST, "/v1/admin/resume")).await.0,
                200
            );
            rotation.lock().unwrap().push(nodes[0].process.url.clone());
        }
    }
    progress.accepted_more(30).await;
    stop.store(true, Ordering::SeqCst);
    let (sent, failed) = load.await.unwrap();
    assert!(failed.is_empty(), "failed requests: {failed:#?}");
    let kv2_sent = sent.iter().filter(|s| s.kind == "kv2").count();
    assert!(
        sent.len() > 60 && kv2_sent > 10,
        "only {} jobs ({kv2_sent} kv 2)",
        sent.len()
    );

    let c = nodes[2].client();
    for s in &sent {
        let job = c.wait(&s.id).await;
        assert_eq!(job["status"], "succeeded", "{} job: {job}", s.kind);
        let done = succeeded(&job);
        assert_eq!(done.len(), 1, "run to completion more than once: {job}");
        let node = node_of(done[0]["agent"].as_str().unwrap());
        let started = done[0]["started_ms"].as_i64().unwrap();
        match s.kind {
            // kv-adaptive reports the kv versions of the host it ran on.
            "kv1" => {
                let host_kv = job["output"]["host_kv"].as_array().unwrap();
                assert!(
                    host_kv
                        .iter()
                        .any(|v| v.as_str().unwrap().starts_with("1.")),
                    "a kv 1.x job ran on a node without kv 1.x: {job}"
                );
                assert_eq!(job["output"]["path"], "kv-1.1", "{job}");
            }
            _ => {
                let since = upgraded_at.get(node).copied().unwrap_or(i64::MAX);
                assert!(
                    started >= since,
                    "a kv 2.x job ran on {node} before it was upgraded: {job}"
                );
                assert_eq!(job["output"]["kv"], "2.x", "{job}");
            }
        }
    }

    // At the end every node is live on the new catalog; the old processes are gone.
    let (_, registry) = c.get("/v1/nodes").await;
    let live: Vec<&Value> = registry["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] == "live")
        .collect();
    assert_eq!(live.len(), 3, "{registry}");
    for n in live {
        assert!(
            n["catalog"]
                .as_array()
                .unwrap()
                .contains(&json!("driftless:kv@2.0.0")),
            "{n}"
        );
    }
    assert!(
        registry["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["state"] == "gone")
            .count()
            >= 3,
        "{registry}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_upgrade_of_the_host_modules_fails_nothing() {
    rolling_upgrade(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_upgrade_with_a_node_killed_mid_upgrade_fails_nothing() {
    rolling_upgrade(true).await;
}

/// A task deploy goes through the same admission as a job: a component only another node can
/// run is deployed (with that node's report) and its jobs run there; one no node can run is
/// refused with the same 422 and report as a job submission.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deploy_honours_the_cluster_like_a_submission() {
    let pg = PgServer::start();
    let store = pg.url();
    let root = tempfile::tempdir().unwrap();
    let kv1 = TestNode::start(root.path(), &store, "node-a", OLD);
    let kv2 = TestNode::start(
        root.path(),
        &store,
        "node-b",
        &["--provide", "driftless:kv@2.0.0"],
    );
    let client = kv1.client();
    until(
        "both nodes in the registry",
        Duration::from_secs(10),
        async || {
            let (_, body) = client.get("/v1/nodes").await;
            body["nodes"]
                .as_array()
                .is_some_and(|n| n.iter().filter(|n| n["state"] == "live").count() == 2)
        },
    )
    .await;

    // Only node-b provides kv 2.0: the deploy through node-a carries node-b's report.
    let deploy = |name: &str, wasm: Vec<u8>| {
        client
            .request(Method::PUT, &format!("/v1/tasks/{name}"))
            .body(wasm)
    };
    let (status, body) = client.send(deploy("counter2", bytes(KV_V2))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["report"]["verdict"], "accepted", "{body}");
    assert!(
        body["report"]["catalog"]
            .as_array()
            .unwrap()
            .contains(&json!("driftless:kv@2.0.0")),
        "{body}"
    );
    let (status, job) = client
        .send(
            client
                .request(Method::POST, "/v1/jobs?wait=30")
                .json(&json!({"task": "counter2", "input": {"key": "k"}})),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job = client.wait(job["job"]["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        node_of(succeeded(&job)[0]["agent"].as_str().unwrap()),
        kv2.name
    );

    // No node provides what this one calls: refused like a job, nothing deployed.
    let unknown = driftless_tests::drift::wasi_unknown_function();
    let (status, refused) = client.send(deploy("unknown", unknown.clone())).await;
    assert_eq!(status, 422, "{refused}");
    let (_, submitted) = client.submit(&unknown, &[], None).await;
    assert_eq!(refused["error"], submitted["error"]);
    assert_eq!(refused["report"], submitted["report"]);
    assert_eq!(refused["error"]["code"], "rejected");
    let (status, _) = client.get("/v1/tasks/unknown").await;
    assert_eq!(status, 404);
}
