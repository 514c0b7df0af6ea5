//! The operator console: `GET /` and its files on a fresh daemon, the API it adds
//! (`/v1/whoami`, `/v1/activity`), and each page in a real browser (Debian's headless
//! Chromium through ChromeDriver, installed when missing): submitting from the form, a
//! rejected job's report, a rollback from the task page, drain and resume, and the drift
//! matrix of a two-node PostgreSQL cluster. Screenshots go to `target/console-screenshots/`.
//! (Declared as a test of the runtime package so the real binary is built for it.)

use driftless_tests::browser::Browser;
use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::poll::until;
use driftless_tests::postgres::PgServer;
use driftless_tests::{bytes, examples::*};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_driftless");
const ADMIN: &str = "console-admin-token-0123456789";

fn start(dir: &Path, extra: &[&str]) -> DaemonProcess {
    DaemonProcess::start(BIN, dir, extra)
}

fn with_admin(dir: &Path, extra: &[&str]) -> DaemonProcess {
    DaemonProcess::start_with_env(BIN, dir, extra, &[("DRIFTLESS_ADMIN_TOKEN", ADMIN)])
}

async fn deploy(c: &Client, name: &str, wasm: &str) -> Value {
    let (status, body) = c
        .send(
            c.request(Method::PUT, &format!("/v1/tasks/{name}"))
                .header("content-type", "application/wasm")
                .body(bytes(wasm)),
        )
        .await;
    assert!(status == 201 || status == 200, "{status} {body}");
    body
}

/// `GET /` and every console file answer without a token, with their content types; data
/// still needs one; `/v1/whoami` tells each token's scopes and `/v1/activity` counts jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_need_no_token_and_the_data_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = with_admin(dir.path(), &[]);
    let http = reqwest::Client::new();
    let page = http.get(format!("{}/", d.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-type"],
        "text/html; charset=utf-8",
        "the page's type"
    );
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>driftless console</title>") && html.contains("/console/app.js"));
    for asset in driftless::console::ASSETS {
        let r = http
            .get(format!("{}/console/{}", d.url, asset.name))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", asset.name);
        assert_eq!(
            r.headers()["content-type"],
            asset.content_type,
            "{}",
            asset.name
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(&r.bytes().await.unwrap()[..], asset.bytes, "{}", asset.name);
    }
    for (name, kind) in [
        ("app.js", "text/javascript"),
        ("uPlot.iife.min.js", "text/javascript"),
        ("console.css", "text/css"),
        ("uPlot.min.css", "text/css"),
    ] {
        let r = http
            .get(format!("{}/console/{name}", d.url))
            .send()
            .await
            .unwrap();
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{name}"
        );
    }
    let missing = http
        .get(format!("{}/console/nope.js", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The data needs a token; whoami says what each token may do.
    let anonymous = Client::new(&d.url);
    assert_eq!(anonymous.get("/v1/jobs").await.0, 401);
    assert_eq!(anonymous.get("/v1/whoami").await.0, 401);
    let admin = Client::with_token(&d.url, ADMIN);
    let (status, me) = admin.get("/v1/whoami").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["token"], "admin");
    assert_eq!(me["scopes"], json!(["admin"]));
    assert_eq!(me["open"], false);
    let reader = Client::with_token(&d.url, &admin.make_token("viewer", &["read"]).await);
    let (status, me) = reader.get("/v1/whoami").await;
    assert_eq!(
        (status, &me["token"], &me["scopes"]),
        (200, &json!("viewer"), &json!(["read"]))
    );
    let submitter = Client::with_token(&d.url, &admin.make_token("ci", &["submit"]).await);
    assert_eq!(
        submitter.get("/v1/whoami").await.1["scopes"],
        json!(["submit"])
    );
    assert_eq!(
        submitter.get("/v1/activity").await.0,
        403,
        "activity needs read"
    );

    // Activity: a job that succeeded shows in the last bucket; nothing waits.
    let (status, job) = admin
        .submit(
            &bytes(HELLO),
            &[("input", "\"x\"".into()), ("wait", "30".into())],
            None,
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let (status, activity) = reader.get("/v1/activity?window_s=600&step_s=10").await;
    assert_eq!(status, 200, "{activity}");
    let buckets = activity["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 60);
    assert_eq!(activity["step_ms"], 10_000);
    let total = |k: &str| buckets.iter().map(|b| b[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((total("succeeded"), total("failed")), (1, 0), "{activity}");
    let last = buckets.last().unwrap();
    assert_eq!(
        (last["queued"].as_u64(), last["running"].as_u64()),
        (Some(0), Some(0))
    );

    // Open mode: whoami says so and lists every scope.
    let dir = tempfile::tempdir().unwrap();
    let open = start(dir.path(), &[]);
    let (status, me) = Client::new(&open.url).get("/v1/whoami").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["open"], true);
    assert_eq!(me["token"], Value::Null);
    assert_eq!(me["scopes"], json!(["read", "submit", "deploy", "admin"]));
}

/// Submit a component from the form: the check shows its verdict first, the JSON input is
/// sent, the page lands on the job, which reaches `succeeded` with its output, attempts and
/// events. Then the jobs list and the overview with its charts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_submitted_from_the_form_reaches_succeeded() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), &["--agents", "2"]);
    let api = Client::new(&d.url);
    // Some history for the charts: jobs that succeed, and one that fails on bad input.
    for i in 0..12 {
        let input = json!({"text": format!("job {i} of the warm-up")}).to_string();
        api.submit(&bytes(WORDCOUNT), &[("input", input)], None)
            .await;
    }
    let (_, bad) = api
        .submit(
            &bytes(WORDCOUNT),
            &[("input", "[1]".into()), ("max_attempts", "1".into())],
            None,
        )
        .await;
    let b = Browser::start().await;
    b.goto(&format!("{}/#/submit", d.url)).await;
    b.type_into("#component", WORDCOUNT).await;
    b.wait_text("#check", "ACCEPTED").await;
    b.clear("#input").await;
    b.type_into("#input", r#"{"text": "the console submits this"}"#)
        .await;
    b.clear("#priority").await;
    b.type_into("#priority", "4").await;
    b.type_into("#concurrency-key", "form").await;
    b.screenshot("submit").await;
    b.click("#submit").await;
    b.wait_text("#job-status", "succeeded").await;
    b.wait_text("#job-priority", "4").await;
    b.wait_text("#job-key", "form (at most 1 of its jobs at once)")
        .await;
    assert!(b.url().await.contains("#/jobs/job_"), "{}", b.url().await);
    let output = b.wait_text("main", "\"words\": 4").await;
    assert!(
        output.contains("the console submits this"),
        "the input is shown"
    );
    b.wait_text("#attempts", "succeeded").await;
    b.wait_text("#events", "claimed").await;
    b.screenshot("job").await;

    // The failed job shows its error in words.
    api.wait(bad["job"]["id"].as_str().unwrap()).await;
    b.goto(&format!(
        "{}/#/jobs/{}",
        d.url,
        bad["job"]["id"].as_str().unwrap()
    ))
    .await;
    b.wait_text("#job-status", "failed").await;
    b.wait_text("main", "bad-input").await;

    b.goto(&format!("{}/#/jobs", d.url)).await;
    b.wait_text("#jobs-table", "succeeded").await;
    b.screenshot("jobs").await;
    b.goto(&format!("{}/#/jobs?status=failed", d.url)).await;
    let failed = b.wait_text("#jobs-table", "failed").await;
    assert!(
        !failed.contains("succeeded"),
        "the status filter applies: {failed}"
    );

    b.goto(&format!("{}/#/", d.url)).await;
    b.wait_text("#overview-nodes", "live").await;
    b.wait_text("main", "13 jobs succeeded in the window").await;
    b.wait_text("main", "1 failed").await;
    assert!(
        b.exists("#c-throughput-jobs-succeeded-per-bucket canvas")
            .await,
        "uPlot drew the chart"
    );
    b.screenshot("overview").await;

    // A running job: its attempt shows on the timeline as running, its log so far is shown,
    // and Cancel (after confirming) stops it.
    let (status, slow) = api
        .submit(
            &bytes(SLOW),
            &[
                ("input", json!({"ms": 60_000}).to_string()),
                ("priority", "7".into()),
                ("concurrency_key", "acme".into()),
            ],
            None,
        )
        .await;
    assert_eq!(status, 201, "{slow}");
    let slow = slow["job"]["id"].as_str().unwrap().to_string();
    b.goto(&format!("{}/#/jobs/{slow}", d.url)).await;
    b.wait_text("#job-status", "running").await;
    b.wait_text("#attempts", "so far").await;
    // Its log streams while it runs: what it printed before it went to sleep is on the page.
    b.wait_text("#log", "napping 60000 ms").await;
    b.wait_text("#job-priority", "7").await;
    b.wait_text("#job-key", "acme (at most 1 of its jobs at once)")
        .await;
    b.screenshot("job-running").await;
    b.click("#cancel").await;
    b.wait_text("#confirm", "Cancel this job?").await;
    b.click("#confirm-ok").await;
    b.wait_text("#job-status", "cancelled").await;
    assert_eq!(api.wait(&slow).await["status"], "cancelled");
}

/// A job the host cannot serve: the check's report as a table (each import, its verdict,
/// which side is ahead), and the refusal of the submission in words, with the same report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_job_shows_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), &["--provide", "driftless:kv@1.0.0"]);
    let b = Browser::start().await;
    b.goto(&format!("{}/#/submit", d.url)).await;
    b.type_into("#component", KV_V2).await;
    let report = b.wait_text("#check-report", "REJECTED").await;
    assert!(report.contains("driftless:kv/store@2.0.0"), "{report}");
    assert!(report.contains("the job (upgrade the runtime)"), "{report}");
    assert!(report.contains("rejected"), "{report}");
    b.eval(
        "document.querySelector('#check').scrollIntoView();",
        json!([]),
    )
    .await;
    b.screenshot("check-rejected").await;
    b.click("#submit").await;
    let refusal = b.wait_text("#submit-result", "Nothing was stored").await;
    assert!(refusal.contains("driftless:kv/store@2.0.0"), "{refusal}");
    b.eval(
        "document.querySelector('#submit-result').scrollIntoView();",
        json!([]),
    )
    .await;
    b.screenshot("rejected").await;
    let (_, list) = Client::new(&d.url).get("/v1/jobs").await;
    assert_eq!(list["jobs"], json!([]), "nothing was stored");
}

/// Sign in (a wrong token is refused in words), a read-only token sees no write buttons, an
/// admin rolls a task back from the page after confirming, and undeploys the other version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_versions_of_a_task_roll_back_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = with_admin(dir.path(), &[]);
    let admin = Client::with_token(&d.url, ADMIN);
    assert_eq!(deploy(&admin, "greet", HELLO).await["version"], 1);
    assert_eq!(deploy(&admin, "greet", WORDCOUNT).await["version"], 2);
    let viewer = admin.make_token("viewer", &["read"]).await;

    let b = Browser::start().await;
    b.goto(&format!("{}/#/tasks/greet", d.url)).await;
    b.type_into("#token", "dl_not-a-real-token").await;
    b.click("form.login button[type=submit]").await;
    b.wait_text("#login-error", "not accepted").await;
    b.clear("#token").await;
    b.type_into("#token", &viewer).await;
    b.click("form.login button[type=submit]").await;
    b.wait_text("#task-current", "Current version: 2").await;
    b.wait_text("#who", "signed in as viewer").await;
    assert!(
        !b.exists("button.rollback").await,
        "a read-only token sees no rollback button"
    );
    assert!(!b.exists("button.undeploy").await, "nor an undeploy button");
    b.screenshot("task-read-only").await;

    b.click("#signout").await;
    b.type_into("#token", ADMIN).await;
    b.click("form.login button[type=submit]").await;
    b.click("button.rollback[data-version='1']").await;
    b.wait_text("#confirm", "Make version 1 current?").await;
    b.screenshot("task-confirm").await;
    b.click("#confirm-ok").await;
    b.wait_text("#task-current", "Current version: 1").await;
    b.wait_text("#audit", "rollback").await;
    b.screenshot("task").await;
    let (_, task) = admin.get("/v1/tasks/greet").await;
    assert_eq!(task["current"], 1);
    assert_eq!(
        task["audit"].as_array().unwrap().last().unwrap()["actor"],
        "admin"
    );

    // Undeploy v2 (no longer current, no job pins it); cancelling the dialog changes nothing.
    b.click("button.undeploy[data-version='2']").await;
    b.wait_text("#confirm", "Undeploy version 2?").await;
    b.click("#confirm-cancel").await;
    assert_eq!(
        admin.get("/v1/tasks/greet").await.1["versions"][1]["deleted_ms"],
        Value::Null
    );
    b.click("button.undeploy[data-version='2']").await;
    b.click("#confirm-ok").await;
    b.wait_text("#versions", "unregistered").await;
    let (_, task) = admin.get("/v1/tasks/greet").await;
    assert!(task["versions"][1]["deleted_ms"].is_i64(), "{task}");
}

/// Drain this node from the nodes page (after confirming), see it draining and `/readyz`
/// failing, resume it; then stop the daemon and read what the page says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_and_resume_a_node_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), &[]);
    let api = Client::new(&d.url);
    let b = Browser::start().await;
    b.goto(&format!("{}/#/nodes", d.url)).await;
    b.wait_text("#self-state", "live").await;
    b.click("#drain").await;
    b.click("#confirm-ok").await;
    b.wait_text("#self-state", "draining").await;
    assert_eq!(api.get("/readyz").await.0, 503);
    b.wait_text("#node-list", "draining").await;
    b.screenshot("nodes-draining").await;
    b.click("#resume").await;
    b.wait_text("#self-state", "live").await;
    assert_eq!(api.get("/readyz").await.0, 200);

    // The daemon stops: the page says so in words, and what to do.
    drop(d);
    let banner = b
        .wait_text("#banner", "The daemon cannot be reached.")
        .await;
    assert!(banner.contains("tries again on its own"), "{banner}");
    b.screenshot("unreachable").await;
}

/// Two nodes on one PostgreSQL with different catalogs: the drift matrix shows both columns
/// (kv 2.0 only on node-b, kv 1.0 only on node-a); node-b drains when asked from node-a's
/// page, and a kv 2.x job submitted meanwhile waits, and its page says for which node; node-b
/// resumes when asked through node-a's API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_page_of_a_two_node_cluster_shows_both_catalogs() {
    let pg = PgServer::start();
    let store = pg.url();
    let root = tempfile::tempdir().unwrap();
    let node = |name: &str, provide: &[&'static str]| {
        let mut args = vec![
            "--store",
            store.as_str(),
            "--node",
            name,
            "--node-ttl-ms",
            "3000",
        ];
        for p in provide {
            args.extend(["--provide", *p]);
        }
        DaemonProcess::start(BIN, &root.path().join(name), &args)
    };
    let a = node("node-a", &["driftless:kv@1.0.0", "driftless:kv@1.1.0"]);
    let b_node = node("node-b", &["driftless:kv@1.1.0", "driftless:kv@2.0.0"]);
    let (ca, cb) = (Client::new(&a.url), Client::new(&b_node.url));
    until("both nodes live", Duration::from_secs(15), async || {
        let (_, body) = ca.get("/v1/nodes").await;
        body["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().filter(|n| n["state"] == "live").count() == 2)
    })
    .await;

    let b = Browser::start().await;
    b.goto(&format!("{}/#/nodes", a.url)).await;
    let head = b.wait_text("#drift thead", "node-b").await;
    assert!(head.contains("node-a"), "{head}");
    let row = |module: &str| {
        format!(
            "return [...document.querySelectorAll('#drift tbody tr')].filter(r => r.querySelector('th').innerText === '{module}').map(r => [...r.querySelectorAll('td')].map(td => td.innerText));"
        )
    };
    let columns: Vec<String> = serde_json::from_value(
        b.eval("return [...document.querySelectorAll('#drift thead th[data-node]')].map(th => th.dataset.node);", json!([]))
            .await,
    )
    .unwrap();
    let col = |name: &str| columns.iter().position(|c| c == name).unwrap();
    let kv2 = b.eval(&row("driftless:kv@2.0.0"), json!([])).await;
    assert_eq!(kv2[0][col("node-a")], "✗ not provided", "{kv2}");
    assert_eq!(kv2[0][col("node-b")], "✓ provided", "{kv2}");
    let kv10 = b.eval(&row("driftless:kv@1.0.0"), json!([])).await;
    assert_eq!(kv10[0][col("node-a")], "✓ provided", "{kv10}");
    assert_eq!(kv10[0][col("node-b")], "✗ not provided", "{kv10}");
    b.screenshot("cluster-nodes").await;

    // node-b drains, asked from node-a's page (through the registry): a kv 2.x job submitted
    // to node-a waits for it, and says so.
    b.click("button[data-drain='node-b']").await;
    b.wait_text("#confirm", "Drain node-b?").await;
    b.click("#confirm-ok").await;
    b.find("button[data-resume='node-b']").await;
    let (_, ready) = cb.get("/readyz").await;
    assert_eq!(ready["error"]["code"], "draining", "{ready}");
    until(
        "node-b draining in the registry",
        Duration::from_secs(10),
        async || {
            let (_, body) = ca.get("/v1/nodes").await;
            body["nodes"].as_array().is_some_and(|n| {
                n.iter()
                    .any(|n| n["node"] == "node-b" && n["state"] == "draining")
            })
        },
    )
    .await;
    let input = [("input", json!({"key": "waiting"}).to_string())];
    let (status, job) = ca.submit(&bytes(KV_V2), &input, None).await;
    assert_eq!(status, 201, "{job}");
    let id = job["job"]["id"].as_str().unwrap().to_string();
    b.goto(&format!("{}/#/jobs/{id}", a.url)).await;
    b.wait_text("#waiting", "node-b (draining)").await;
    let placement = b.wait_text("#placement", "node-a").await;
    assert!(
        placement.contains("rejected") && placement.contains("accepted"),
        "{placement}"
    );
    // node-a's report says why, import by import: kv 2.x is ahead of its catalog.
    let report = b
        .wait_text("#report-node-a", "driftless:kv/store@2.0.0")
        .await;
    assert!(report.contains("the job (upgrade the runtime)"), "{report}");
    b.screenshot("waiting-job").await;
    // Resumed through node-a's API.
    let (status, asked) = ca
        .send(ca.request(Method::POST, "/v1/nodes/node-b/resume"))
        .await;
    assert_eq!(status, 202, "{asked}");
    assert_eq!(asked["processes"], 1, "{asked}");
    let (status, none) = ca
        .send(ca.request(Method::POST, "/v1/nodes/node-z/drain"))
        .await;
    assert_eq!(status, 404, "{none}");
    b.wait_text("#job-status", "succeeded").await;
    let attempts = b.wait_text("#attempts", "node-b").await;
    assert!(attempts.contains("node-b/"), "{attempts}");

    // The jobs list by node: the job ran on node-b, none on node-a.
    b.goto(&format!("{}/#/jobs", a.url)).await;
    b.find("#f-node option[value='node-b']").await;
    b.eval(
        "const s = document.querySelector('#f-node'); s.value = 'node-b';",
        json!([]),
    )
    .await;
    b.click(".filters button[type=submit]").await;
    b.wait_text("#jobs-table", &id).await;
    assert!(b.url().await.contains("node=node-b"), "{}", b.url().await);
    b.goto(&format!("{}/#/jobs?node=node-a", a.url)).await;
    b.wait_text("#job-list", "No jobs match.").await;
}
