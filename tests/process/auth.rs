//! Tokens, scopes and open mode, through HTTP against real `driftless serve` processes: every
//! route × every kind of caller on SQLite and on PostgreSQL, tokens kept across a restart and
//! shared by two nodes of a cluster, open mode's refusals of what a web page could send, the
//! refusal of a non-loopback address without a token, and the CLI's `--token` and `tokens`.
//! (Declared as a test of the runtime package so the real binary is built for it.)

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::examples::HELLO;
use driftless_tests::poll::{until, until_blocking};
use driftless_tests::stores::{Backend, TestDb};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_driftless");

/// The admin token the daemons of these tests are started with.
const ADMIN: &str = "test-admin-token-0123456789";

/// A secret of the right shape that no daemon knows.
const WRONG: &str = "dl_0000000000000000000000000000000000000000000000000000000000000000";

fn with_admin(dir: &Path, extra: &[&str]) -> DaemonProcess {
    DaemonProcess::start_with_env(BIN, dir, extra, &[("DRIFTLESS_ADMIN_TOKEN", ADMIN)])
}

/// A request body.
#[derive(Clone)]
enum Body {
    None,
    Wasm,
    Json(Value),
}

/// One request to one route, and the scope that route should need (`None`: open).
#[derive(Clone)]
struct Probe {
    template: &'static str,
    method: Method,
    path: String,
    body: Body,
    needs: Option<&'static str>,
}

/// One request to every route, with what this test expects each to need (written here, not
/// read from the runtime's table, so the table is checked).
fn probes(job: &str, caller: &str) -> Vec<Probe> {
    let p = |template: &'static str, method: Method, path: &str, body: Body, needs| Probe {
        template,
        method,
        path: path.to_string(),
        body,
        needs,
    };
    let (read, submit, deploy, admin) =
        (Some("read"), Some("submit"), Some("deploy"), Some("admin"));
    vec![
        p("/v1/jobs", Method::POST, "/v1/jobs", Body::Wasm, submit),
        p("/v1/jobs", Method::GET, "/v1/jobs", Body::None, read),
        p(
            "/v1/jobs/{id}",
            Method::GET,
            &format!("/v1/jobs/{job}"),
            Body::None,
            read,
        ),
        p(
            "/v1/jobs/{id}/cancel",
            Method::POST,
            &format!("/v1/jobs/{job}/cancel"),
            Body::None,
            submit,
        ),
        p(
            "/v1/jobs/{id}/logs",
            Method::GET,
            &format!("/v1/jobs/{job}/logs"),
            Body::None,
            read,
        ),
        p(
            "/v1/jobs/{id}/events",
            Method::GET,
            &format!("/v1/jobs/{job}/events"),
            Body::None,
            read,
        ),
        p(
            "/v1/jobs/{id}/output",
            Method::GET,
            &format!("/v1/jobs/{job}/output"),
            Body::None,
            read,
        ),
        p(
            "/v1/components",
            Method::PUT,
            "/v1/components",
            Body::Wasm,
            submit,
        ),
        p("/v1/tasks", Method::GET, "/v1/tasks", Body::None, read),
        p(
            "/v1/tasks/{name}",
            Method::PUT,
            "/v1/tasks/demo",
            Body::Wasm,
            deploy,
        ),
        p(
            "/v1/tasks/{name}",
            Method::GET,
            "/v1/tasks/demo",
            Body::None,
            read,
        ),
        p(
            "/v1/tasks/{name}/rollback",
            Method::POST,
            "/v1/tasks/demo/rollback",
            Body::None,
            deploy,
        ),
        p(
            "/v1/tasks/{name}/versions/{version}",
            Method::DELETE,
            "/v1/tasks/demo/versions/99",
            Body::None,
            deploy,
        ),
        p(
            "/v1/schedules",
            Method::GET,
            "/v1/schedules",
            Body::None,
            read,
        ),
        p(
            "/v1/schedules/{name}",
            Method::PUT,
            &format!("/v1/schedules/s-{caller}"),
            Body::Json(json!({"task": "demo", "cron": "0 0 1 1 *"})),
            deploy,
        ),
        p(
            "/v1/schedules/{name}",
            Method::GET,
            &format!("/v1/schedules/s-{caller}"),
            Body::None,
            read,
        ),
        p(
            "/v1/schedules/{name}",
            Method::DELETE,
            "/v1/schedules/nothing",
            Body::None,
            deploy,
        ),
        p("/v1/check", Method::POST, "/v1/check", Body::Wasm, submit),
        p("/v1/modules", Method::GET, "/v1/modules", Body::None, read),
        p("/v1/nodes", Method::GET, "/v1/nodes", Body::None, read),
        p(
            "/v1/nodes/{node}/drain",
            Method::POST,
            "/v1/nodes/nobody/drain",
            Body::None,
            admin,
        ),
        p(
            "/v1/nodes/{node}/resume",
            Method::POST,
            "/v1/nodes/nobody/resume",
            Body::None,
            admin,
        ),
        p(
            "/v1/activity",
            Method::GET,
            "/v1/activity",
            Body::None,
            read,
        ),
        // Any valid token may ask what it may do.
        p(
            "/v1/whoami",
            Method::GET,
            "/v1/whoami",
            Body::None,
            Some("token"),
        ),
        // The console's page and files hold no data.
        p("/", Method::GET, "/", Body::None, None),
        p(
            "/console/{file}",
            Method::GET,
            "/console/app.js",
            Body::None,
            None,
        ),
        p("/healthz", Method::GET, "/healthz", Body::None, None),
        p("/readyz", Method::GET, "/readyz", Body::None, None),
        p("/metrics", Method::GET, "/metrics", Body::None, read),
        p(
            "/openapi.json",
            Method::GET,
            "/openapi.json",
            Body::None,
            None,
        ),
        p(
            "/v1/admin/drain",
            Method::POST,
            "/v1/admin/drain",
            Body::None,
            admin,
        ),
        p(
            "/v1/admin/resume",
            Method::POST,
            "/v1/admin/resume",
            Body::None,
            admin,
        ),
        p(
            "/v1/admin/inflight",
            Method::GET,
            "/v1/admin/inflight",
            Body::None,
            admin,
        ),
        p(
            "/v1/admin/tokens",
            Method::POST,
            "/v1/admin/tokens",
            Body::Json(json!({"name": format!("made-by-{caller}"), "scopes": ["read"]})),
            admin,
        ),
        p(
            "/v1/admin/tokens",
            Method::GET,
            "/v1/admin/tokens",
            Body::None,
            admin,
        ),
        p(
            "/v1/admin/tokens/{name}",
            Method::DELETE,
            "/v1/admin/tokens/nobody",
            Body::None,
            admin,
        ),
    ]
}

/// Who calls: a name, the client, and the scope its token has (`None`: no valid token).
struct Caller {
    name: &'static str,
    client: Client,
    scope: Option<&'static str>,
}

/// What one request answered.
struct Answer {
    status: u16,
    body: Value,
    challenge: Option<String>,
}

async fn send(client: &Client, probe: &Probe, wasm: &[u8]) -> Answer {
    let mut req = client.request(probe.method.clone(), &probe.path);
    req = match &probe.body {
        Body::None => req,
        Body::Wasm => req
            .header("content-type", "application/wasm")
            .body(wasm.to_vec()),
        Body::Json(v) => req.json(v),
    };
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        challenge,
    }
}

/// Every route × {no token, a wrong token, each scope, the stored admin token, the admin token
/// given at start}, in parallel, on one daemon; and the audit actor is the token's name.
async fn every_route_answers_by_scope(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let extra: Vec<&str> = match db.url() {
        Some(url) => vec!["--store", url],
        None => vec![],
    };
    let d = with_admin(dir.path(), &extra);
    let admin = Client::with_token(&d.url, ADMIN);
    let mut callers = vec![
        Caller {
            name: "nobody",
            client: Client::new(&d.url),
            scope: None,
        },
        Caller {
            name: "wrong",
            client: Client::with_token(&d.url, WRONG),
            scope: None,
        },
        Caller {
            name: "admin",
            client: Client::with_token(&d.url, ADMIN),
            scope: Some("admin"),
        },
    ];
    for (name, scope) in [
        ("reader", "read"),
        ("submitter", "submit"),
        ("deployer", "deploy"),
        ("operator", "admin"),
    ] {
        let secret = admin.make_token(name, &[scope]).await;
        callers.push(Caller {
            name,
            client: Client::with_token(&d.url, &secret),
            scope: Some(scope),
        });
    }
    let wasm = driftless_tests::bytes(HELLO);
    let (status, job) = admin.submit(&wasm, &[], None).await;
    assert_eq!(status, 201, "{job}");
    let job = job["job"]["id"].as_str().unwrap().to_string();

    // The audit trail names the token, whatever x-driftless-actor says.
    let deployer = &callers
        .iter()
        .find(|c| c.name == "deployer")
        .unwrap()
        .client;
    let (status, body) = deployer
        .send(
            deployer
                .request(Method::PUT, "/v1/tasks/demo")
                .header("content-type", "application/wasm")
                .header("x-driftless-actor", "mallory")
                .body(wasm.clone()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, task) = admin.get("/v1/tasks/demo").await;
    assert_eq!(task["audit"][0]["actor"], "deployer", "{task}");

    // The probes cover exactly the routes the runtime serves.
    let covered: BTreeSet<(String, String)> = probes(&job, "x")
        .iter()
        .map(|p| (p.method.to_string(), p.template.to_string()))
        .collect();
    let served: BTreeSet<(String, String)> = driftless::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(covered, served, "the matrix must probe every route");

    let callers = Arc::new(callers);
    let wasm = Arc::new(wasm);
    let mut requests = tokio::task::JoinSet::new();
    for (c, caller) in callers.iter().enumerate() {
        for probe in probes(&job, caller.name) {
            let (callers, wasm) = (callers.clone(), wasm.clone());
            requests.spawn(async move {
                let answer = send(&callers[c].client, &probe, &wasm).await;
                (c, probe, answer)
            });
        }
    }
    let t0 = Instant::now();
    let mut failures = vec![];
    let mut count = 0;
    while let Some(done) = requests.join_next().await {
        let (c, probe, a) = done.unwrap();
        let caller = &callers[c];
        count += 1;
        let what = format!(
            "{} {} as {}: {} {}",
            probe.method, probe.path, caller.name, a.status, a.body
        );
        let allowed = match (probe.needs, caller.scope) {
            (None, _) => true,
            (Some("token"), Some(_)) => true,
            (Some(need), Some(has)) => has == need || has == "admin",
            (Some(_), None) => false,
        };
        let ok = if allowed {
            // Past the gate: a success or an error of the route itself (404, 409, ...).
            ![401, 403].contains(&a.status) && (a.status < 500 || probe.template == "/readyz")
        } else if caller.scope.is_none() {
            a.status == 401
                && a.body["error"]["code"] == "unauthorized"
                && a.challenge
                    .as_deref()
                    .is_some_and(|c| c.starts_with("Bearer"))
                && (caller.name != "wrong"
                    || a.challenge.as_deref().unwrap().contains("invalid_token"))
        } else {
            let message = a.body["error"]["message"].as_str().unwrap_or("");
            a.status == 403
                && a.body["error"]["code"] == "forbidden"
                && message.contains(&format!("`{}`", probe.needs.unwrap()))
                && message.contains(&format!("`{}`", caller.name))
        };
        if !ok {
            failures.push(what);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{backend:?}: {count} requests in {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_answers_by_scope_on_sqlite() {
    every_route_answers_by_scope(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_answers_by_scope_on_postgres() {
    every_route_answers_by_scope(Backend::Postgres).await
}

/// Tokens made through the API are in the store: a restarted node knows them, and a node
/// started without the admin token on a store that holds tokens requires them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_a_restart_and_tokens_in_the_store_mean_auth_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let first = with_admin(dir.path(), &[]);
    let reader = Client::with_token(&first.url, ADMIN)
        .make_token("reader", &["read"])
        .await;
    drop(first);

    let second = DaemonProcess::start(BIN, dir.path(), &[]);
    let (status, body) = Client::new(&second.url).get("/v1/jobs").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = Client::with_token(&second.url, &reader)
        .get("/v1/jobs")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = Client::with_token(&second.url, &reader)
        .send(Client::with_token(&second.url, &reader).request(Method::POST, "/v1/admin/drain"))
        .await;
    assert_eq!(status, 403, "{body}");
}

/// Two nodes on one PostgreSQL: a token made on one works on the other, and a revoke on one
/// is honoured by the other within about a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_made_on_one_node_works_on_the_other_and_a_revoke_reaches_it() {
    let db = TestDb::new(Backend::Postgres).await;
    let url = db.url().unwrap();
    let root = tempfile::tempdir().unwrap();
    let a = with_admin(&root.path().join("a"), &["--store", url, "--node", "a"]);
    let b = with_admin(&root.path().join("b"), &["--store", url, "--node", "b"]);
    let secret = Client::with_token(&a.url, ADMIN)
        .make_token("shared", &["read"])
        .await;
    let on_b = Client::with_token(&b.url, &secret);
    until(
        "node b accepts the token made on node a",
        Duration::from_secs(3),
        async || on_b.get("/v1/jobs").await.0 == 200,
    )
    .await;

    // Node a knows the token (its view of the store is fresh), then node b revokes it.
    let on_a = Client::with_token(&a.url, &secret);
    assert_eq!(on_a.get("/v1/jobs").await.0, 200);
    let admin_b = Client::with_token(&b.url, ADMIN);
    let (status, body) = admin_b
        .send(admin_b.request(Method::DELETE, "/v1/admin/tokens/shared"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"name": "shared", "revoked": true}));
    let t0 = Instant::now();
    let on_a = Client::with_token(&a.url, &secret);
    until(
        "node a refuses the token revoked on node b",
        Duration::from_secs(3),
        async || on_a.get("/v1/jobs").await.0 == 401,
    )
    .await;
    let took = t0.elapsed();
    eprintln!("the revoke reached the other node in {took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(on_b.get("/v1/jobs").await.0, 401);
}

/// Open mode (loopback, no token): it says so, and refuses what a web page could send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_mode_refuses_what_a_web_page_could_send() {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(BIN, dir.path(), &["--allowed-host", "driftless.test"]);
    let port = d.port();
    let raw = reqwest::Client::new();
    let at = |path: &str| format!("{}{path}", d.url);

    // A cross-site form posting text/plain to drain: refused, and the node is not draining.
    let drained = raw
        .post(at("/v1/admin/drain"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 403);
    let body: Value = drained.json().await.unwrap();
    assert_eq!(body["error"]["code"], "cross-site-request", "{body}");
    let c = Client::new(&d.url);
    let (_, inflight) = c.get("/v1/admin/inflight").await;
    assert_eq!(inflight["draining"], false, "{inflight}");

    // A cross-site multipart submit: refused; the same with the client header: accepted.
    let form = || {
        reqwest::multipart::Form::new().part(
            "component",
            reqwest::multipart::Part::bytes(driftless_tests::bytes(HELLO)),
        )
    };
    let submitted = raw
        .post(at("/v1/jobs"))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 403);
    let body: Value = submitted.json().await.unwrap();
    assert_eq!(body["error"]["code"], "cross-site-request", "{body}");
    let (_, jobs) = c.get("/v1/jobs").await;
    assert_eq!(jobs["jobs"], json!([]), "nothing was stored: {jobs}");
    let (status, body) = c
        .send(c.request(Method::POST, "/v1/jobs").multipart(form()))
        .await;
    assert_eq!(status, 201, "{body}");

    // A foreign Host (DNS rebinding): refused; loopback names and --allowed-host pass, and
    // health checks pass whatever the Host.
    let with_host = |path: &str, host: String| raw.get(at(path)).header("host", host).send();
    let foreign = with_host("/v1/jobs", format!("evil.example:{port}"))
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["error"]["code"], "host-not-allowed", "{body}");
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("driftless.test:{port}"),
    ] {
        assert_eq!(
            with_host("/v1/jobs", host.clone()).await.unwrap().status(),
            200,
            "{host}"
        );
    }
    let health = with_host("/healthz", "evil.example".into()).await.unwrap();
    assert_eq!(health.status(), 200);

    // The first token made turns tokens on (tokens in the store mean auth is on).
    let secret = c.make_token("first", &["admin"]).await;
    assert_eq!(c.get("/v1/jobs").await.0, 401);
    assert_eq!(
        Client::with_token(&d.url, &secret).get("/v1/jobs").await.0,
        200
    );
}

/// Wait for `serve`'s first line, or for it to exit; the line, or the exit and its stderr.
fn serve_outcome(args: &[&str], env: &[(&str, &str)]) -> Result<String, (Option<i32>, String)> {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("DRIFTLESS_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let line = std::io::BufReader::new(stdout).lines().next();
        let _ = tx.send(line.and_then(Result::ok));
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).ok().flatten();
    match line {
        Some(line) => {
            let _ = child.kill();
            let _ = child.wait();
            Ok(line)
        }
        None => {
            let output = child.wait_with_output().unwrap();
            Err((
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            ))
        }
    }
}

/// A non-loopback address without a token is refused at start, naming DRIFTLESS_ADMIN_TOKEN;
/// with a token, or with --insecure-no-auth (loudly), it starts.
#[test]
fn a_non_loopback_listen_needs_a_token() {
    let refused = serve_outcome(&["--listen", "0.0.0.0:0"], &[]).unwrap_err();
    assert_eq!(refused.0, Some(2), "{}", refused.1);
    assert!(
        refused.1.contains("DRIFTLESS_ADMIN_TOKEN") && refused.1.contains("0.0.0.0:0"),
        "{}",
        refused.1
    );

    let line = serve_outcome(
        &["--listen", "0.0.0.0:0"],
        &[("DRIFTLESS_ADMIN_TOKEN", ADMIN)],
    )
    .expect("starts with a token");
    assert!(
        line.contains("http://0.0.0.0:") && line.contains("tokens required"),
        "{line}"
    );

    let line = serve_outcome(&["--listen", "0.0.0.0:0", "--insecure-no-auth"], &[])
        .expect("starts when told to");
    assert!(line.contains("INSECURE"), "{line}");

    let line = serve_outcome(&["--listen", "127.0.0.1:0"], &[]).expect("starts on loopback");
    assert!(
        line.contains("http://127.0.0.1:") && line.contains("open mode"),
        "{line}"
    );

    let short = serve_outcome(
        &["--listen", "0.0.0.0:0"],
        &[("DRIFTLESS_ADMIN_TOKEN", "short")],
    )
    .unwrap_err();
    assert!(short.1.contains("at least 16"), "{}", short.1);
}

/// `driftless ARGS` against `url`, with `token` in DRIFTLESS_TOKEN if given.
fn driftless(url: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("DRIFTLESS_URL", url)
        .env_remove("DRIFTLESS_TOKEN");
    if let Some(t) = token {
        cmd.env("DRIFTLESS_TOKEN", t);
    }
    cmd.output().expect("run driftless")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// The CLI: `tokens create|list|revoke`, `--token` / DRIFTLESS_TOKEN on client commands, and
/// messages that say which token or scope to use.
#[test]
fn the_cli_makes_lists_and_revokes_tokens_and_says_which_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let d = with_admin(dir.path(), &[]);
    let url = d.url.as_str();

    let made = driftless(
        url,
        Some(ADMIN),
        &[
            "tokens", "create", "ci", "--scope", "read", "--scope", "submit",
        ],
    );
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let secret = text(&made.stdout).trim().to_string();
    assert!(
        secret.starts_with("dl_") && !secret.contains('\n'),
        "{secret:?}"
    );
    assert!(
        text(&made.stderr).contains("will not be shown again"),
        "{}",
        text(&made.stderr)
    );

    let listed = driftless(url, Some(ADMIN), &["tokens", "list"]);
    let list = text(&listed.stdout);
    assert!(
        list.contains("ci") && list.contains("read,submit") && list.contains("by admin"),
        "{list}"
    );
    assert!(
        !list.contains(&secret[3..]),
        "the list shows no secret: {list}"
    );

    // Without a token: a message naming --token and DRIFTLESS_TOKEN.
    let without = driftless(url, None, &["jobs"]);
    assert_eq!(without.status.code(), Some(2));
    let message = text(&without.stderr);
    assert!(
        message.contains("--token") && message.contains("DRIFTLESS_TOKEN"),
        "{message}"
    );

    // With it (the flag, and the variable): a submit waits for its output.
    let submitted = driftless(
        url,
        None,
        &[
            "submit", HELLO, "--input", "[1]", "--wait", "--token", &secret,
        ],
    );
    assert_eq!(
        submitted.status.code(),
        Some(0),
        "{}",
        text(&submitted.stderr)
    );
    let output: Value = serde_json::from_str(&text(&submitted.stdout)).expect("the output is JSON");
    assert_eq!(output, json!([1]));
    assert_eq!(
        driftless(url, Some(&secret), &["jobs"]).status.code(),
        Some(0)
    );

    // A scope it lacks: the message names the scope and the token.
    let drain = driftless(url, Some(&secret), &["drain"]);
    assert_eq!(drain.status.code(), Some(2));
    let message = text(&drain.stderr);
    assert!(
        message.contains("`admin`") && message.contains("`ci`") && message.contains("forbidden"),
        "{message}"
    );

    let revoked = driftless(url, Some(ADMIN), &["tokens", "revoke", "ci"]);
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked.stderr));
    until_blocking(
        "the revoked token is refused",
        Duration::from_secs(3),
        || {
            let after = driftless(url, Some(&secret), &["jobs"]);
            after.status.code() == Some(2) && text(&after.stderr).contains("was refused")
        },
    );
    let again = driftless(url, Some(ADMIN), &["tokens", "revoke", "ci"]);
    assert!(
        text(&again.stderr).contains("no token named `ci`"),
        "{}",
        text(&again.stderr)
    );
}
