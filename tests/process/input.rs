//! Bounded answers and bounded input over real HTTP: job listings carry summaries (a page of
//! 500 jobs with 1 MiB outputs stays small), every list route honours and caps `?limit`, job
//! inputs over `--max-input-bytes` are refused with `input-too-large`, a multipart body cut
//! short is a `bad-request`, and the CLI ends quietly when its output pipe closes.
//! (Declared as a test of the runtime package so the binary is built for it.)

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::poll::until;
use driftless_tests::{bytes, examples::*};
use reqwest::Method;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

fn start(extra: &[&str]) -> (tempfile::TempDir, DaemonProcess, Client) {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(env!("CARGO_BIN_EXE_driftless"), dir.path(), extra);
    let c = Client::new(&d.url);
    (dir, d, c)
}

/// `PUT /v1/components`: the component's hash.
async fn upload(c: &Client, path: &str) -> String {
    let (status, body) = c
        .send(c.request(Method::PUT, "/v1/components").body(bytes(path)))
        .await;
    assert!(status == 201 || status == 200, "{body}");
    body["component"].as_str().unwrap().to_string()
}

/// `POST /v1/jobs` with a JSON spec: (status, answer).
async fn submit_json(c: &Client, spec: &Value) -> (u16, Value) {
    c.send(c.request(Method::POST, "/v1/jobs").json(spec)).await
}

/// Whether a command's stderr is free of a panic or an error (a hint such as `more: …` may be
/// there when the command finished writing before its reader went away).
fn quiet(stderr: &str) -> bool {
    !["panicked", "Broken pipe", "error"]
        .iter()
        .any(|bad| stderr.contains(bad))
}

/// SIGPIPE's number on Linux.
const SIGPIPE: i32 = 13;

/// An output just under the 1 MiB cap once JSON-quoted.
const MIB_OUTPUT: usize = (1 << 20) - 64;

#[tokio::test]
async fn listings_are_summaries_and_every_list_caps_its_limit() {
    let (_dir, d, c) = start(&["--agents", "2"]);
    let huge = upload(&c, HUGE_OUTPUT).await;
    let hello = upload(&c, HELLO).await;

    // 500 jobs with ~1 MiB outputs, and 3 small ones: more than one full page.
    let started = std::time::Instant::now();
    let submitted = futures_join(500, 16, |_| {
        let spec = json!({"component": huge, "input": {"output_bytes": MIB_OUTPUT}});
        let c = &c;
        async move { submit_json(c, &spec).await }
    })
    .await;
    for (status, body) in &submitted {
        assert_eq!(*status, 201, "{body}");
    }
    for n in 0..3 {
        let (status, body) = submit_json(&c, &json!({"component": hello, "input": n})).await;
        assert_eq!(status, 201, "{body}");
    }
    until("503 jobs succeeded", Duration::from_secs(180), async || {
        let (_, page) = c.get("/v1/jobs?status=succeeded&limit=500").await;
        page["jobs"].as_array().map_or(0, Vec::len) == 500 && page["next"].is_number()
    })
    .await;
    eprintln!("500 jobs of 1 MiB ran in {:?}", started.elapsed());

    // A page of 500 summaries is small, and says each job's sizes.
    let listing = c
        .request(Method::GET, "/v1/jobs?limit=500")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        listing.len() < 200_000,
        "a listing of 500 jobs with 1 MiB outputs is {} bytes",
        listing.len()
    );
    eprintln!("a page of 500 summaries: {} bytes", listing.len());
    let page: Value = serde_json::from_slice(&listing).unwrap();
    let jobs = page["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 500);
    let big = jobs
        .iter()
        .find(|j| j["output_bytes"].as_u64() > Some(1 << 19))
        .expect("a job with a 1 MiB output");
    assert_eq!(big["output_bytes"], MIB_OUTPUT + 2, "{big}");
    assert!(big.get("output").is_none() && big.get("input").is_none());
    assert!(big["input_bytes"].as_u64().unwrap() > 10, "{big}");
    assert!(page["next"].is_number(), "503 jobs do not fit one page");

    // The output itself, from the job and raw.
    let id = big["id"].as_str().unwrap();
    let (_, job) = c.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(job["output"].as_str().unwrap().len(), MIB_OUTPUT);
    let raw = c
        .request(Method::GET, &format!("/v1/jobs/{id}/output"))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "application/json");
    assert_eq!(raw.bytes().await.unwrap().len(), MIB_OUTPUT + 2);

    // ?limit is honoured, defaulted and capped on every list.
    let count = |v: &Value, key: &str| v[key].as_array().map_or(0, Vec::len);
    let (_, p) = c.get("/v1/jobs?limit=3").await;
    assert_eq!((count(&p, "jobs"), p["next"].is_number()), (3, true));
    let (_, p) = c.get("/v1/jobs").await;
    assert_eq!(count(&p, "jobs"), 50, "the default page");
    let (_, p) = c.get("/v1/jobs?limit=100000").await;
    assert_eq!(count(&p, "jobs"), 500, "capped at 500");
    let (_, p) = c
        .get(&format!("/v1/jobs?limit=500&before={}", p["next"]))
        .await;
    assert_eq!((count(&p, "jobs"), &p["next"]), (3, &Value::Null));

    let (_, p) = c.get(&format!("/v1/jobs/{id}/events?limit=1")).await;
    assert_eq!(p["events"][0]["kind"], "queued", "{p}");
    let after = p["next"].as_str().expect("a cursor").to_string();
    let (_, rest) = c.get(&format!("/v1/jobs/{id}/events?after={after}")).await;
    assert_eq!(rest["events"][0]["kind"], "claimed", "{rest}");
    assert_eq!(rest["next"], Value::Null);
    let (_, p) = c.get(&format!("/v1/jobs/{id}/events?limit=0")).await;
    assert_eq!(count(&p, "events"), 1, "0 is 1");
    let (status, p) = c.get(&format!("/v1/jobs/{id}/events?after=x")).await;
    assert_eq!((status, &p["error"]["code"]), (400, &json!("bad-request")));

    // Logs: the newest attempts only.
    let (status, body) = c
        .send(
            c.request(Method::POST, "/v1/jobs?timeout_ms=20&max_attempts=3")
                .header("content-type", "application/wasm")
                .body(bytes(SPIN_FOREVER)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let spinner = body["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(c.wait(&spinner).await["attempts"], 3);
    let logs = |limit: &str| {
        let path = format!("/v1/jobs/{spinner}/logs{limit}");
        let c = &c;
        async move { c.get(&path).await.1.as_str().unwrap().to_string() }
    };
    let all = logs("").await;
    assert_eq!(all.matches("=== attempt ").count(), 3, "{all}");
    let newest = logs("?limit=1").await;
    assert!(
        newest.starts_with("=== attempts 1 to 2 not shown") && newest.contains("=== attempt 3 on "),
        "{newest}"
    );

    // Tasks, a task's versions, nodes.
    for name in ["t-a", "t-b", "t-c"] {
        let (status, body) = c
            .send(
                c.request(Method::PUT, &format!("/v1/tasks/{name}"))
                    .body(bytes(HELLO)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = c
        .send(
            c.request(Method::PUT, "/v1/tasks/t-a")
                .body(bytes(WORDCOUNT)),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, p) = c.get("/v1/tasks?limit=2").await;
    assert_eq!((count(&p, "tasks"), &p["next"]), (2, &json!("t-b")), "{p}");
    let (_, p) = c.get("/v1/tasks?after=t-b").await;
    assert_eq!((count(&p, "tasks"), &p["next"]), (1, &Value::Null), "{p}");
    let (_, t) = c.get("/v1/tasks/t-a?limit=1").await;
    assert_eq!(t["versions"].as_array().unwrap().len(), 1, "{t}");
    assert_eq!(t["versions"][0]["version"], 2, "the newest version");
    assert_eq!(t["audit"].as_array().unwrap().len(), 1, "{t}");
    let (_, t) = c.get("/v1/tasks/t-a").await;
    assert_eq!(t["versions"].as_array().unwrap().len(), 2, "{t}");
    let (_, n) = c.get("/v1/nodes?limit=0").await;
    assert_eq!(count(&n, "nodes"), 1, "{n}");
    let (status, n) = c.get("/v1/nodes?limit=lots").await;
    assert_eq!((status, &n["error"]["code"]), (400, &json!("bad-request")));

    // The CLI's listing of the same page ends quietly when its reader goes away.
    for args in [&["jobs", "--limit", "500"][..], &["logs", spinner.as_str()]] {
        quiet_on_a_closed_pipe(args, &d.url);
    }
}

/// Run `n` requests made by `make`, `width` at a time; their answers, in order.
async fn futures_join<F, Fut>(n: usize, width: usize, make: F) -> Vec<(u16, Value)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let mut answers = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let batch: Vec<_> = (i..(i + width).min(n)).map(&make).collect();
        for a in join_all(batch).await {
            answers.push(a);
        }
        i += width;
    }
    answers
}

/// Await every future, concurrently, on the current task.
async fn join_all<Fut: std::future::Future>(futures: Vec<Fut>) -> Vec<Fut::Output> {
    // They borrow the client, so they are polled here rather than spawned.
    let mut out: Vec<Option<Fut::Output>> = (0..futures.len()).map(|_| None).collect();
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, f) in out.iter_mut().zip(pinned.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.expect("ready")).collect()
}

/// `driftless ARGS` with its standard output a pipe whose reader is already gone (as when
/// `| head -1` has read its line and exited): it ends by the pipe signal, without a panic or
/// an error message.
fn quiet_on_a_closed_pipe(args: &[&str], url: &str) {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .env("DRIFTLESS_URL", url)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run driftless");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        quiet(&stderr) && (out.status.signal() == Some(SIGPIPE) || out.status.success()),
        "`driftless {}` into a closed pipe: {:?}, stderr: {stderr}",
        args.join(" "),
        out.status
    );
    // Through a real shell pipeline too, as a user runs it.
    let line = format!(
        "{} {} | head -1 >/dev/null",
        env!("CARGO_BIN_EXE_driftless"),
        args.join(" ")
    );
    let sh = Command::new("sh")
        .args(["-c", &line])
        .env("DRIFTLESS_URL", url)
        .output()
        .expect("run sh");
    let stderr = String::from_utf8_lossy(&sh.stderr);
    assert!(
        sh.status.success() && quiet(&stderr),
        "{line}: {:?}, stderr: {stderr}",
        sh.status
    );
}

#[tokio::test]
async fn inputs_over_the_cap_and_cut_bodies_are_refused_cleanly() {
    let (_dir, d, c) = start(&["--agents", "1"]);
    let hello = upload(&c, HELLO).await;

    // 2 MiB of input: refused with its own code, naming the flag; 900 KiB: accepted.
    let big = "x".repeat(2 << 20);
    let (status, body) = submit_json(&c, &json!({"component": hello, "input": big})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &json!("input-too-large")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-input-bytes"),
        "{body}"
    );
    let form = reqwest::multipart::Form::new()
        .part("component", reqwest::multipart::Part::bytes(bytes(HELLO)))
        .text("spec", json!({"input": big}).to_string());
    let (status, body) = c
        .send(c.request(Method::POST, "/v1/jobs").multipart(form))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &json!("input-too-large")),
        "{body}"
    );
    let fits = "y".repeat(900 << 10);
    let (status, body) = submit_json(&c, &json!({"component": hello, "input": fits})).await;
    assert_eq!(status, 201, "{body}");
    let done = c.wait(body["job"]["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    // A multipart body cut short is a bad request, not "too large"; nothing is stored.
    let boundary = "XyZ";
    let mut whole = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"component\"; filename=\"a.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
    )
    .into_bytes();
    whole.extend_from_slice(&bytes(HELLO));
    whole.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let before = c.get("/v1/jobs?limit=500").await.1["jobs"]
        .as_array()
        .unwrap()
        .len();
    for cut in [whole.len() / 2, whole.len() - 3, 40] {
        let (status, body) = c
            .send(
                c.request(Method::POST, "/v1/jobs")
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={boundary}"),
                    )
                    .body(whole[..cut].to_vec()),
            )
            .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("bad-request")),
            "cut at {cut} of {}: {body}",
            whole.len()
        );
    }
    // A body that ends before its Content-Length (the client stopped sending).
    let answer = cut_connection(&d.url, &whole[..whole.len() / 2], whole.len()).await;
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("bad-request"),
        "{answer}"
    );
    let after = c.get("/v1/jobs?limit=500").await.1["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a refused submission stored a job");

    // `driftless check JOB | head -1`: quiet too (a local command).
    quiet_on_a_closed_pipe(&["check", KV_ADAPTIVE], &d.url);
}

/// Send a multipart submission whose `Content-Length` says `claimed` bytes but only `sent`
/// arrive before the client stops sending (half-close); the daemon's answer, as text.
async fn cut_connection(url: &str, sent: &[u8], claimed: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: {addr}\r\nx-driftless-client: 1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {claimed}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(sent).await.unwrap();
    s.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}
