//! The daemon end to end: a real `driftless serve` process, real HTTP, real components, a real
//! SQLite store. (Declared as a test of the runtime package so the binary is built for it.)

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::poll::until;
use driftless_tests::{bytes, examples::*};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn start(extra: &[&str]) -> (tempfile::TempDir, DaemonProcess, Client) {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(env!("CARGO_BIN_EXE_driftless"), dir.path(), extra);
    let c = Client::new(&d.url);
    (dir, d, c)
}

fn input(v: Value) -> (&'static str, String) {
    ("input", v.to_string())
}

#[tokio::test]
async fn every_example_runs_to_its_expected_outcome_over_http() {
    let (_dir, _d, c) = start(&["--agents", "2"]);
    let cases: Vec<(&str, Value, Value)> = vec![
        (HELLO, json!({"a": 1}), json!({"a": 1})),
        (
            WORDCOUNT,
            json!({"text": "x y x"}),
            json!({"words": 3, "lines": 1, "top": [["x", 2], ["y", 1]]}),
        ),
        (
            KV_COUNTER,
            json!({"key": "k"}),
            json!({"key": "k", "count": 1}),
        ),
        (
            KV_V2,
            json!({"key": "k"}),
            json!({"key": "k", "bucket": "counters", "count": 1, "kv": "2.x"}),
        ),
        (
            SLOW,
            json!({"ms": 5, "tag": 7}),
            json!({"tag": 7, "slept_ms": 5, "attempt": 1}),
        ),
    ];
    let mut ids = Vec::new();
    for (path, inp, _) in &cases {
        let (status, body) = c.submit(&bytes(path), &[input(inp.clone())], None).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["job"]["status"], "queued");
        assert_eq!(body["report"]["verdict"], "accepted");
        ids.push(body["job"]["id"].as_str().unwrap().to_string());
    }
    for (id, (_, _, want)) in ids.iter().zip(&cases) {
        let job = c.wait(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["output"], *want);
        assert_eq!(job["attempt_list"].as_array().unwrap().len(), 1);
        assert!(
            job["agent"].as_str().unwrap().starts_with("node-1/"),
            "{job}"
        );
    }
    let (_, logs) = c.get(&format!("/v1/jobs/{}/logs", ids[0])).await;
    assert!(
        logs.as_str()
            .unwrap()
            .contains("[info] hello from driftless"),
        "{logs}"
    );

    // kv-adaptive on this (current) host takes the kv 1.1 path, and kv is per job (fresh).
    let (_, body) = c
        .submit(&bytes(KV_ADAPTIVE), &[input(json!({"key": "k"}))], None)
        .await;
    let job = c.wait(body["job"]["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            job["output"]["path"].clone(),
            job["output"]["count"].clone()
        ),
        (json!("kv-1.1"), json!(1))
    );
}

#[tokio::test]
async fn failures_retry_then_fail_with_the_reason() {
    let (_dir, _d, c) = start(&["--agents", "2"]);
    let (status, body) = c
        .submit(
            &bytes(SPIN_FOREVER),
            &[("timeout_ms", "200".into()), ("max_attempts", "2".into())],
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let job = c.wait(body["job"]["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "timeout");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no attempts left"),
        "{job}"
    );
    assert_eq!(job["attempts"], 2);
    // Not retryable: a memory bomb fails at once.
    let (_, body) = c
        .submit(
            &bytes(MEMORY_BOMB),
            &[("memory_mib", "16".into()), ("max_attempts", "3".into())],
            None,
        )
        .await;
    let job = c.wait(body["job"]["id"].as_str().unwrap()).await;
    assert_eq!(
        (job["error"]["code"].clone(), job["attempts"].clone()),
        (json!("memory-limit"), json!(1))
    );
}

#[tokio::test]
async fn rejected_and_malformed_submissions_store_nothing() {
    let (_dir, _d, c) = start(&[
        "--provide",
        "driftless:kv@1.0.0",
        "--max-upload-bytes",
        "400000",
    ]);
    let (status, body) = c.submit(&bytes(KV_V2), &[], None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "rejected");
    assert_eq!(body["report"]["verdict"], "rejected");
    assert!(
        body["report"]["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["rule"] == "major-mismatch")
    );

    let (status, body) = c.submit(b"not wasm", &[], None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid-component"))
    );
    let (status, body) = c.submit(&bytes(CLI_COMMAND), &[], None).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("WASI command"),
        "{body}"
    );

    let (status, body) = c.submit(&vec![0u8; 500_000], &[], None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (413, json!("too-large")),
        "{body}"
    );

    let (status, body) = c
        .submit(&bytes(HELLO), &[("input", "{not json".into())], None)
        .await;
    assert_eq!(status, 400, "{body}");
    let form = reqwest::multipart::Form::new()
        .part("component", reqwest::multipart::Part::bytes(bytes(HELLO)))
        .text("spec", r#"{"input": 1, "colour": "red"}"#);
    let (status, body) = c
        .send(c.request(Method::POST, "/v1/jobs").multipart(form))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("bad-spec")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
    let (status, body) = c
        .submit(&bytes(HELLO), &[("max_attempts", "0".into())], None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("bad-spec"))
    );

    let (_, list) = c.get("/v1/jobs").await;
    assert_eq!(list["jobs"], json!([]), "a refused submission stored a job");
    let (_, metrics) = c.get("/metrics").await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("driftless_jobs_rejected_total 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn idempotent_resubmission_and_upload_once_submit_many() {
    let (_dir, _d, c) = start(&["--agents", "1"]);
    let (s1, first) = c
        .submit(&bytes(HELLO), &[input(json!(1))], Some("order-42"))
        .await;
    let (s2, again) = c
        .submit(&bytes(HELLO), &[input(json!(1))], Some("order-42"))
        .await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first["job"]["id"], again["job"]["id"]);
    assert_eq!(again["created"], false);
    assert_eq!(
        again["report"], first["report"],
        "the report stored at admission"
    );
    // A retry of the same request answers with the first job, and can wait for it.
    let (s3, retried) = c
        .submit(
            &bytes(HELLO),
            &[input(json!(1)), ("wait", "10".into())],
            Some("order-42"),
        )
        .await;
    assert_eq!(s3, 200, "{retried}");
    assert_eq!(retried["job"]["id"], first["job"]["id"]);
    assert_eq!(retried["job"]["status"], "succeeded", "{retried}");
    assert_eq!(retried["job"]["output"], json!(1));
    // The key names one request: another component or another input is refused, naming the
    // first job, and nothing is stored.
    let first_id = first["job"]["id"].as_str().unwrap();
    for (wasm, value) in [(CLI_COMMAND, json!(1)), (HELLO, json!(2))] {
        let (status, refused) = c
            .submit(&bytes(wasm), &[input(value)], Some("order-42"))
            .await;
        assert_eq!(
            (status, refused["error"]["code"].clone()),
            (422, json!("idempotency-key-reused")),
            "{refused}"
        );
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains(first_id), "{message}");
    }
    let (_, all) = c.get("/v1/jobs").await;
    assert_eq!(all["jobs"].as_array().unwrap().len(), 1, "{all}");

    let (status, up) = c
        .send(
            c.request(Method::PUT, "/v1/components")
                .body(bytes(WORDCOUNT)),
        )
        .await;
    assert_eq!(status, 201, "{up}");
    let hash = up["component"].as_str().unwrap();
    let (status, _) = c
        .send(
            c.request(Method::PUT, "/v1/components")
                .body(bytes(WORDCOUNT)),
        )
        .await;
    assert_eq!(status, 200, "the same bytes are stored once");
    for text in ["a", "a b"] {
        let (status, body) = c
            .send(
                c.request(Method::POST, "/v1/jobs")
                    .json(&json!({"component": hash, "input": {"text": text}})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let job = c.wait(body["job"]["id"].as_str().unwrap()).await;
        assert_eq!(job["output"]["words"], text.split(' ').count());
    }
    let (status, body) = c
        .send(
            c.request(Method::POST, "/v1/jobs")
                .json(&json!({"component": "ab12"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("unknown-component"))
    );
    let (_, listed) = c.get("/v1/jobs?status=succeeded&limit=2").await;
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 2);
    let next = listed["next"]
        .as_i64()
        .expect("a next cursor on a full page");
    let (_, rest) = c
        .get(&format!("/v1/jobs?status=succeeded&limit=2&before={next}"))
        .await;
    assert_eq!(rest["jobs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn cancellation_reaches_a_running_attempt_and_a_queued_job() {
    let (_dir, _d, c) = start(&["--agents", "1"]);
    let (_, running) = c
        .submit(
            &bytes(SPIN_FOREVER),
            &[("timeout_ms", "60000".into())],
            None,
        )
        .await;
    let (_, queued) = c.submit(&bytes(HELLO), &[], None).await;
    let running = running["job"]["id"].as_str().unwrap().to_string();
    let queued = queued["job"]["id"].as_str().unwrap().to_string();
    until(
        "the first job to start",
        Duration::from_secs(10),
        async || c.get(&format!("/v1/jobs/{running}")).await.1["status"] == "running",
    )
    .await;
    let (status, _) = c
        .send(c.request(Method::POST, &format!("/v1/jobs/{queued}/cancel")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        c.get(&format!("/v1/jobs/{queued}")).await.1["status"],
        "cancelled"
    );
    c.send(c.request(Method::POST, &format!("/v1/jobs/{running}/cancel")))
        .await;
    let job = c.wait(&running).await;
    assert_eq!(job["status"], "cancelled", "{job}");
    assert_eq!(job["attempt_list"][0]["state"], "cancelled");
}

#[tokio::test]
async fn system_endpoints_answer() {
    let (_dir, _d, c) = start(&["--provide", "driftless:kv@1.0.0"]);
    assert_eq!(c.get("/healthz").await.0, 200);
    assert_eq!(c.get("/readyz").await.0, 200);
    let (_, modules) = c.get("/v1/modules").await;
    let ids: Vec<String> = modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}@{}",
                m["name"].as_str().unwrap(),
                m["version"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        ids.contains(&"driftless:kv@1.0.0".to_string())
            && !ids.iter().any(|i| i == "driftless:kv@2.0.0"),
        "{ids:?}"
    );
    let (status, check) = c
        .send(
            c.request(Method::POST, "/v1/check")
                .body(bytes(KV_ADAPTIVE)),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            check["accepted"].clone(),
            check["report"]["verdict"].clone()
        ),
        (json!(true), json!("degraded"))
    );
    let (status, body) = c.get("/v2/nothing").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("no-such-route"))
    );
    let (status, body) = c.send(c.request(Method::DELETE, "/v1/jobs")).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (405, json!("method-not-allowed"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("POST or GET"),
        "{body}"
    );
    let (status, body) = c.get("/v1/jobs?limit=many").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("bad-request")),
        "{body}"
    );
    let (status, served) = c.get("/openapi.json").await;
    assert_eq!(status, 200);
    let checked_in: Value =
        serde_json::from_str(include_str!("../../runtime/openapi.json")).unwrap();
    assert_eq!(
        served, checked_in,
        "GET /openapi.json serves the checked-in document"
    );
    let (_, metrics) = c.get("/metrics").await;
    for family in [
        "driftless_queue_depth",
        "driftless_attempt_duration_seconds_bucket",
        "driftless_compile_cache_total",
    ] {
        assert!(
            metrics.as_str().unwrap().contains(family),
            "{family} missing"
        );
    }
}

#[tokio::test]
async fn submit_can_wait_for_the_result_in_one_request() {
    let (_dir, _d, c) = start(&[]);
    let (status, body) = c
        .submit(
            &bytes(HELLO),
            &[input(json!({"x": 1})), ("wait", "10".into())],
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["job"]["status"], "succeeded", "{body}");
    assert_eq!(body["job"]["output"], json!({"x": 1}));
    assert_eq!(body["job"]["attempt_list"][0]["state"], "succeeded");
    assert_eq!(body["report"]["verdict"], "accepted");

    // A wait that runs out answers with the job as it is.
    let (status, body) = c
        .submit(
            &bytes(SLOW),
            &[input(json!({"ms": 5000})), ("wait", "1".into())],
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        ["queued", "running"].contains(&body["job"]["status"].as_str().unwrap()),
        "{body}"
    );
}
