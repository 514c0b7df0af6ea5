//! Whose turn it is, through the real daemon: priorities order claims, delayed jobs wait for
//! their time, and jobs sharing a concurrency key never run side by side, even on two nodes
//! of one PostgreSQL. (Declared as a test of the runtime package so the real binary is built
//! for it.)

use driftless_tests::daemon::{Client, DaemonProcess, cluster};
use driftless_tests::poll::until;
use driftless_tests::postgres::PgServer;
use driftless_tests::{bytes, examples::*};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_driftless");

/// Submit `slow` (sleeping `ms`) with the spec fields `turn` as JSON, by component hash.
async fn submit(c: &Client, hash: &str, ms: u64, tag: &str, turn: Value) -> (u16, Value) {
    let mut spec = json!({"component": hash, "input": {"ms": ms, "tag": tag}});
    spec.as_object_mut()
        .unwrap()
        .extend(turn.as_object().unwrap().clone());
    c.send(c.request(Method::POST, "/v1/jobs").json(&spec))
        .await
}

async fn put_slow(c: &Client) -> String {
    let (status, put) = c
        .send(c.request(Method::PUT, "/v1/components").body(bytes(SLOW)))
        .await;
    assert!(status == 201 || status == 200, "{put}");
    put["component"].as_str().unwrap().to_string()
}

fn id(answer: &Value) -> String {
    answer["job"]["id"].as_str().unwrap().to_string()
}

/// When the job's (only) attempt started and ended.
fn span(job: &Value) -> (i64, i64) {
    let a = &job["attempt_list"][0];
    (
        a["started_ms"].as_i64().unwrap(),
        a["finished_ms"].as_i64().unwrap(),
    )
}

/// One agent: a drained node takes a backlog, then runs it highest priority first; a delayed
/// job waits for its time whatever its priority, a job of a busy key for its slot (the queue's
/// metrics count each kind); a bad spec is refused, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priorities_order_the_queue_and_delayed_jobs_wait_for_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(BIN, dir.path(), &["--agents", "1"]);
    let c = Client::new(&d.url);
    let hash = put_slow(&c).await;
    let (status, _) = c.send(c.request(Method::POST, "/v1/admin/drain")).await;
    assert_eq!(status, 200);

    let mut jobs = Vec::new();
    for (tag, turn) in [
        ("low-1", json!({})),
        ("high", json!({"priority": 5})),
        ("low-2", json!({"priority": 0})),
        ("below", json!({"priority": -3})),
        ("late-urgent", json!({"priority": 9, "delay_ms": 3000})),
        ("key-1", json!({"concurrency_key": "k"})),
        ("key-2", json!({"concurrency_key": "k"})),
    ] {
        let (status, answer) = submit(&c, &hash, 20, tag, turn).await;
        assert_eq!(status, 201, "{answer}");
        jobs.push((tag, id(&answer)));
    }
    let (_, late) = c.get(&format!("/v1/jobs/{}", jobs[4].1)).await;
    assert_eq!(late["priority"], 9);
    assert_eq!(
        late["run_after_ms"].as_i64().unwrap(),
        late["created_ms"].as_i64().unwrap() + 3000
    );
    let (_, events) = c.get(&format!("/v1/jobs/{}/events", jobs[4].1)).await;
    assert!(
        events["events"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("accepted and queued; runs no sooner than 20"),
        "{events}"
    );
    // Drained, nothing is claimed: five wait for an agent, one for its time, one for a slot.
    let (_, metrics) = c.get("/metrics").await;
    for line in [
        "driftless_queue{state=\"ready\"} 5",
        "driftless_queue{state=\"delayed\"} 1",
        "driftless_queue{state=\"parked\"} 1",
    ] {
        assert!(
            metrics.as_str().unwrap().contains(line),
            "{line}: {metrics}"
        );
    }
    let (status, _) = c.send(c.request(Method::POST, "/v1/admin/resume")).await;
    assert_eq!(status, 200);

    let mut ran = Vec::new();
    for (tag, id) in &jobs {
        let job = c.wait(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        ran.push((span(&job).0, *tag, job));
    }
    ran.sort_by_key(|(started, _, _)| *started);
    let order: Vec<&str> = ran.iter().map(|(_, tag, _)| *tag).collect();
    // key-2 waits for key-1's slot, then goes before the lower priority.
    assert_eq!(
        order,
        [
            "high",
            "low-1",
            "low-2",
            "key-1",
            "key-2",
            "below",
            "late-urgent"
        ]
    );
    let late = &ran[6].2;
    assert!(
        span(late).0 >= late["run_after_ms"].as_i64().unwrap(),
        "started before its time: {late}"
    );

    // A time with an offset is read as that instant.
    let in_a_second = time_plus_ms(1_000);
    let (status, answer) = submit(&c, &hash, 1, "at", json!({"not_before": in_a_second.0})).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["job"]["run_after_ms"], in_a_second.1);
    assert_eq!(c.wait(&id(&answer)).await["status"], "succeeded");

    for (turn, says) in [
        (
            json!({"delay_ms": 10, "not_before": "2026-12-24T18:00:00Z"}),
            "give one of them",
        ),
        (json!({"not_before": "tomorrow"}), "not an RFC 3339 time"),
        (json!({"concurrency_limit": 2}), "needs a concurrency_key"),
        (
            json!({"concurrency_key": "k", "concurrency_limit": 0}),
            "between 1 and 10000",
        ),
        (json!({"delay_ms": 40_000_000_000u64}), "at most"),
    ] {
        let (status, answer) = submit(&c, &hash, 1, "bad", turn.clone()).await;
        assert_eq!(status, 400, "{turn}: {answer}");
        assert_eq!(answer["error"]["code"], "bad-spec", "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(says),
            "{turn}: {answer}"
        );
    }
}

/// Now plus `ms`, as RFC 3339 text with a +01:00 offset, and as ms since the epoch.
fn time_plus_ms(ms: i64) -> (String, i64) {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + ms;
    let (secs, millis) = (at.div_euclid(1000), at.rem_euclid(1000));
    // Civil time in UTC+1 from days since the epoch (Howard Hinnant's algorithm).
    let local = secs + 3600;
    let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}+01:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    (text, at)
}

/// Two nodes on one PostgreSQL, two agents each: jobs sharing a concurrency key (limit 1)
/// submitted to both never run side by side, while jobs without a key run next to them. Then
/// a running attempt's live log, read through either node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_sharing_a_key_never_overlap_on_two_nodes() {
    let pg = PgServer::start();
    let store = pg.url();
    let root = tempfile::tempdir().unwrap();
    let (_nodes, clients) = cluster(BIN, root.path(), &store, &["node-a", "node-b"], 2).await;
    let hash = put_slow(&clients[0]).await;

    let mut keyed = Vec::new();
    let mut free = Vec::new();
    for i in 0..8 {
        let c = &clients[i % 2];
        let (status, answer) =
            submit(c, &hash, 150, "acme", json!({"concurrency_key": "acme"})).await;
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["job"]["concurrency_limit"], 1);
        keyed.push(id(&answer));
        let (status, answer) = submit(c, &hash, 150, "free", json!({})).await;
        assert_eq!(status, 201, "{answer}");
        free.push(id(&answer));
    }
    // Without the key, four agents would run four of them at once.
    let mut spans = Vec::new();
    for id in &keyed {
        let job = clients[1].wait(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["attempts"], 1, "{job}");
        spans.push(span(&job));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "two jobs of key acme ran at once: {pair:?} (all: {spans:?})"
        );
    }
    let mut overlapped = false;
    for id in &free {
        let job = clients[0].wait(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let (start, end) = span(&job);
        overlapped |= spans.iter().any(|(s, e)| start < *e && *s < end);
    }
    assert!(
        overlapped,
        "jobs without a key run beside the key's: the key holds back only its own jobs"
    );

    // A running attempt's log is live on the node that runs it; the other node says where it
    // runs.
    let (status, answer) = submit(&clients[0], &hash, 60_000, "live", json!({})).await;
    assert_eq!(status, 201, "{answer}");
    let live = id(&answer);
    let mut logs = Vec::new();
    until(
        "the live log on one node",
        Duration::from_secs(20),
        async || {
            logs.clear();
            for c in &clients {
                let (_, text) = c.get(&format!("/v1/jobs/{live}/logs")).await;
                logs.push(text.as_str().unwrap_or("").to_string());
            }
            logs.iter().any(|l| l.contains("napping 60000 ms"))
        },
    )
    .await;
    assert!(
        logs.iter()
            .any(|l| l.contains("this attempt runs on another node (node-")),
        "{logs:?}"
    );
    let (status, _) = clients[1]
        .send(clients[1].request(Method::POST, &format!("/v1/jobs/{live}/cancel")))
        .await;
    assert_eq!(status, 200);
}

/// A task version deployed with `max_concurrency` holds its jobs to it (three agents, limit 1:
/// one at a time); a job of the task with a key of its own follows that key instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_max_concurrency_holds_its_jobs_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(BIN, dir.path(), &["--agents", "3"]);
    let c = Client::new(&d.url);
    let (status, deployed) = c
        .send(
            c.request(Method::PUT, "/v1/tasks/nap?max_concurrency=1")
                .header("content-type", "application/wasm")
                .body(bytes(SLOW)),
        )
        .await;
    assert_eq!(status, 201, "{deployed}");
    let (_, task) = c.get("/v1/tasks/nap").await;
    assert_eq!(task["versions"][0]["max_concurrency"], 1, "{task}");

    let mut held = Vec::new();
    for n in 0..3 {
        let spec = json!({"task": "nap", "input": {"ms": 200, "tag": n}});
        let (status, answer) = c
            .send(c.request(Method::POST, "/v1/jobs").json(&spec))
            .await;
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["job"]["concurrency_key"], "task:nap", "{answer}");
        held.push(id(&answer));
    }
    let spec = json!({"task": "nap", "input": {"ms": 200}, "concurrency_key": "own"});
    let (status, answer) = c
        .send(c.request(Method::POST, "/v1/jobs").json(&spec))
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["job"]["concurrency_key"], "own");
    let own = c.wait(&id(&answer)).await;

    let mut spans = Vec::new();
    for id in &held {
        let job = c.wait(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        spans.push(span(&job));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "two ran at once: {spans:?}");
    }
    let (start, end) = span(&own);
    assert!(
        spans.iter().any(|(s, e)| start < *e && *s < end),
        "the job with its own key ran beside the task's: {spans:?} vs {:?}",
        (start, end)
    );

    let (status, refused) = c
        .send(
            c.request(Method::PUT, "/v1/tasks/nap?max_concurrency=0")
                .header("content-type", "application/wasm")
                .body(bytes(SLOW)),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("leave it out for no limit"),
        "{refused}"
    );
}
