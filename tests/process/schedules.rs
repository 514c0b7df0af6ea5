//! Cron schedules through the real daemon: a schedule firing every second on two nodes of one
//! PostgreSQL makes exactly one job per tick; a schedule pins nothing (a deploy between
//! ticks reaches the next job); the CLI puts, lists, shows and deletes schedules, and bad
//! patterns, zones and tasks are refused saying why. (Declared as a test of the runtime
//! package so the real binary is built for it.)

use driftless_tests::daemon::{Client, DaemonProcess, cluster};
use driftless_tests::poll::until_some;
use driftless_tests::postgres::PgServer;
use driftless_tests::{bytes, examples::*};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_driftless");

async fn deploy(c: &Client, name: &str, wasm: &str) -> Value {
    deploy_with(c, name, wasm, "").await
}

/// Deploy with a query (`?max_concurrency=N`).
async fn deploy_with(c: &Client, name: &str, wasm: &str, query: &str) -> Value {
    let (status, body) = c
        .send(
            c.request(Method::PUT, &format!("/v1/tasks/{name}{query}"))
                .header("content-type", "application/wasm")
                .body(bytes(wasm)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn put_schedule(c: &Client, name: &str, spec: Value) -> (u16, Value) {
    c.send(
        c.request(Method::PUT, &format!("/v1/schedules/{name}"))
            .json(&spec),
    )
    .await
}

/// Every job a schedule made, read through the job list and each job's view: tick → job.
async fn jobs_of(c: &Client, schedule: &str) -> BTreeMap<i64, Value> {
    let (status, list) = c.get("/v1/jobs?limit=500").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["next"], Value::Null, "more jobs than one page");
    let mut jobs = BTreeMap::new();
    for summary in list["jobs"].as_array().unwrap() {
        let (status, job) = c
            .get(&format!("/v1/jobs/{}", summary["id"].as_str().unwrap()))
            .await;
        assert_eq!(status, 200, "{job}");
        if job["schedule"]["name"] == schedule {
            let tick = job["schedule"]["tick_ms"].as_i64().unwrap();
            assert!(
                jobs.insert(tick, job.clone()).is_none(),
                "two jobs for tick {tick}"
            );
        }
    }
    jobs
}

/// Two nodes on one PostgreSQL: a schedule firing every second makes exactly one job per
/// tick over ten seconds (both nodes fire every tick; one stores its job), each recording
/// its schedule and tick, each succeeding.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_firing_every_second_on_two_nodes_makes_one_job_per_tick() {
    let pg = PgServer::start();
    let store = pg.url();
    let root = tempfile::tempdir().unwrap();
    let (_nodes, clients) = cluster(BIN, root.path(), &store, &["node-a", "node-b"], 2).await;
    deploy(&clients[0], "tick", HELLO).await;

    let began = std::time::Instant::now();
    let (status, put) = put_schedule(
        &clients[1],
        "every-second",
        json!({"task": "tick", "cron": "*/1 * * * * *", "input": {"n": 7}}),
    )
    .await;
    assert_eq!(status, 201, "{put}");
    let schedule = &put["schedule"];
    let (created, first) = (
        schedule["created_ms"].as_i64().unwrap(),
        schedule["next_tick_ms"].as_i64().unwrap(),
    );
    assert_eq!(first % 1000, 0, "ticks are whole seconds: {put}");
    assert!(first > created && first <= created + 1000, "{put}");
    assert_eq!(schedule["timezone"], "UTC");
    // The window: ten ticks, starting a whole second after the schedule's first tick.
    let t0 = first + 1000;
    let window = t0..t0 + 10_000;

    // Once the tick after the window has its job, every tick of the window has fired (ticks
    // fire in order); then the schedule is deleted.
    until_some(
        "the schedule to fire past the window",
        Duration::from_secs(40),
        async || {
            let (_, s) = clients[0].get("/v1/schedules/every-second").await;
            (s["last_tick_ms"].as_i64()? >= window.end).then_some(())
        },
    )
    .await;
    let (status, deleted) = clients[0]
        .send(clients[0].request(Method::DELETE, "/v1/schedules/every-second"))
        .await;
    assert_eq!(status, 200, "{deleted}");
    let fired_for = began.elapsed();

    let jobs = jobs_of(&clients[0], "every-second").await;
    let in_window: Vec<(&i64, &Value)> = jobs.range(window.clone()).collect();
    let ticks: Vec<i64> = in_window.iter().map(|(t, _)| **t).collect();
    assert_eq!(
        ticks,
        window.clone().step_by(1000).collect::<Vec<_>>(),
        "one job per tick of [{t0}, {}) (every job of the schedule: {:?})",
        window.end,
        jobs.keys().collect::<Vec<_>>()
    );
    for (tick, job) in &in_window {
        let id = job["id"].as_str().unwrap();
        let done = clients[1].wait(id).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["output"], json!({"n": 7}), "{done}");
        assert_eq!(done["task"], "tick@1");
        let (_, events) = clients[1].get(&format!("/v1/jobs/{id}/events")).await;
        let queued = events["events"][0]["message"].as_str().unwrap();
        assert!(
            queued.contains("made by schedule every-second for its tick at")
                && !queued.contains("skipped"),
            "tick {tick}: {queued}"
        );
    }
    // Each tick the schedule fired made one job: the nodes' firings add up to its jobs.
    let mut fired = 0;
    let mut by_node = Vec::new();
    for c in &clients {
        let (_, metrics) = c.get("/metrics").await;
        let line = metrics
            .as_str()
            .unwrap()
            .lines()
            .find(|l| l.starts_with("driftless_schedule_ticks_fired_total "))
            .map(str::to_string)
            .unwrap();
        let n = line.rsplit(' ').next().unwrap().parse::<usize>().unwrap();
        by_node.push(n);
        fired += n;
    }
    assert_eq!(fired, jobs.len(), "every firing stored one job");
    eprintln!(
        "{} jobs in the window, {} in all, {fired} firings stored (by node: {by_node:?}), over {fired_for:?}",
        in_window.len(),
        jobs.len()
    );
    // No tick fires after the delete.
    let (status, _) = clients[1].get("/v1/schedules/every-second").await;
    assert_eq!(status, 404);
}

/// A schedule pins nothing: each tick resolves the task's current version, so a deploy
/// between two ticks reaches the next job, with that version's concurrency limit.
#[tokio::test]
async fn a_deploy_between_ticks_reaches_the_next_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(BIN, dir.path(), &["--agents", "2"]);
    let c = Client::new(&d.url);
    deploy_with(&c, "pin", SLOW, "?max_concurrency=2").await;
    let (status, put) = put_schedule(
        &c,
        "pinless",
        json!({"task": "pin", "cron": "* * * * * *", "input": {"ms": 1, "tag": "t"}}),
    )
    .await;
    assert_eq!(status, 201, "{put}");
    let newest = async |version: &str| {
        let (_, s) = c.get("/v1/schedules/pinless?limit=100").await;
        s["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["task"] == version)
            .cloned()
    };
    let v1 = until_some("a job of version 1", Duration::from_secs(20), async || {
        newest("pin@1").await
    })
    .await;
    deploy(&c, "pin", HELLO).await;
    let v2 = until_some("a job of version 2", Duration::from_secs(20), async || {
        newest("pin@2").await
    })
    .await;
    let (status, _) = c
        .send(c.request(Method::DELETE, "/v1/schedules/pinless"))
        .await;
    assert_eq!(status, 200);
    assert!(v2["tick_ms"].as_i64() > v1["tick_ms"].as_i64());
    let ran_v1 = c.wait(v1["id"].as_str().unwrap()).await;
    assert_eq!(ran_v1["output"]["slept_ms"], 1, "{ran_v1}");
    assert_eq!(
        (&ran_v1["concurrency_key"], &ran_v1["concurrency_limit"]),
        (&json!("task:pin"), &json!(2)),
        "version 1's limit: {ran_v1}"
    );
    let ran_v2 = c.wait(v2["id"].as_str().unwrap()).await;
    assert_eq!(ran_v2["output"], json!({"ms": 1, "tag": "t"}), "{ran_v2}");
    assert_eq!(
        ran_v2["concurrency_key"],
        Value::Null,
        "version 2 has no limit"
    );
    // Every tick after the first of version 2 resolved version 2.
    let jobs = jobs_of(&c, "pinless").await;
    let versions: Vec<&str> = jobs.values().map(|j| j["task"].as_str().unwrap()).collect();
    let first_v2 = versions.iter().position(|v| *v == "pin@2").unwrap();
    assert!(
        versions[first_v2..].iter().all(|v| *v == "pin@2"),
        "{versions:?}"
    );
}

fn driftless(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("DRIFTLESS_URL", url)
        .output()
        .expect("run driftless")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `driftless schedules put/list/get/delete` against a daemon on SQLite, and the refusals
/// of bad patterns, zones, names and tasks, each saying what is wrong.
#[tokio::test]
async fn the_cli_puts_lists_shows_and_deletes_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(BIN, dir.path(), &["--agents", "1"]);
    let c = Client::new(&d.url);
    deploy(&c, "report", HELLO).await;
    let url = d.url.clone();
    let cli = move |args: Vec<&'static str>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || driftless(&url, &args))
                .await
                .unwrap()
        }
    };

    let put = cli(vec![
        "schedules",
        "put",
        "new-year",
        "--task",
        "report",
        "--cron",
        "0 0 1 1 *",
        "--timezone",
        "Europe/Berlin",
        "--input",
        r#"{"full": true}"#,
    ])
    .await;
    assert_eq!(put.status.code(), Some(0), "{}", text(&put));
    assert!(
        text(&put).starts_with(
            "new-year: created `0 0 1 1 *` (Europe/Berlin) submitting to report; next tick "
        ),
        "{}",
        text(&put)
    );
    let replaced = cli(vec![
        "schedules",
        "put",
        "new-year",
        "--task",
        "report",
        "--cron",
        "0 0 1 1 *",
        "--json",
    ])
    .await;
    assert_eq!(replaced.status.code(), Some(0), "{}", text(&replaced));
    let answer: Value = serde_json::from_slice(&replaced.stdout).unwrap();
    assert_eq!(answer["created"], false);
    assert_eq!(answer["schedule"]["timezone"], "UTC");
    assert_eq!(answer["schedule"]["input"], Value::Null);

    let list = cli(vec!["schedules", "list"]).await;
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    let lines: Vec<String> = text(&list).lines().map(str::to_string).collect();
    assert!(lines[0].starts_with("NAME"), "{lines:?}");
    assert!(
        lines[1].starts_with("new-year")
            && lines[1].contains("report")
            && lines[1].contains("0 0 1 1 *"),
        "{lines:?}"
    );
    let get = cli(vec!["schedules", "get", "new-year"]).await;
    assert_eq!(get.status.code(), Some(0), "{}", text(&get));
    assert!(text(&get).contains("next tick: "), "{}", text(&get));
    assert!(text(&get).contains("last tick: none yet"), "{}", text(&get));
    let get = cli(vec!["schedules", "get", "new-year", "--json"]).await;
    let shown: Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(shown["jobs"], json!([]));
    assert_eq!(shown["next_tick_ms"], answer["schedule"]["next_tick_ms"]);

    for (args, code, says) in [
        (
            vec!["--cron", "61 * * * *"],
            "bad-schedule",
            "is not a valid cron pattern",
        ),
        (vec!["--cron", "* * *"], "bad-schedule", "`*/5 * * * *`"),
        (
            vec!["--cron", "* * * * *", "--timezone", "Mars/Base"],
            "bad-schedule",
            "`Europe/Berlin`",
        ),
    ] {
        let mut all = vec!["schedules", "put", "bad", "--task", "report"];
        all.extend(args.iter().copied());
        let out = cli(all).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(says) && text(&out).contains(code),
            "{args:?}: {}",
            text(&out)
        );
    }
    let (status, body) = put_schedule(&c, "x", json!({"task": "nope", "cron": "* * * * *"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown-task")),
        "{body}"
    );
    let (status, body) =
        put_schedule(&c, "x", json!({"task": "report@1", "cron": "* * * * *"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pins nothing"),
        "{body}"
    );
    let (status, body) = put_schedule(
        &c,
        "x",
        json!({"task": "report", "cron": "* * * * *", "every": 1}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad-schedule")),
        "{body}"
    );
    let (status, body) = put_schedule(
        &c,
        "Not A Name",
        json!({"task": "report", "cron": "* * * * *"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, list) = c.get("/v1/schedules").await;
    assert_eq!(status, 200);
    assert_eq!(
        list["schedules"].as_array().unwrap().len(),
        1,
        "refusals stored nothing: {list}"
    );

    let delete = cli(vec!["schedules", "delete", "new-year"]).await;
    assert_eq!(delete.status.code(), Some(0), "{}", text(&delete));
    assert!(
        text(&delete).starts_with("new-year: deleted"),
        "{}",
        text(&delete)
    );
    let again = cli(vec!["schedules", "delete", "new-year"]).await;
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("unknown-schedule"),
        "{}",
        text(&again)
    );
    let empty = cli(vec!["schedules", "list"]).await;
    assert!(text(&empty).starts_with("no schedules"), "{}", text(&empty));
}
