//! The CLI as a client of a real daemon: `submit`, `status`, `logs`, `jobs`, `cancel` and
//! `modules` run as a user would run them, with `--url` / `DRIFTLESS_URL`.
//! (Declared as a test of the runtime package so the real binary is built for it.)

use driftless_tests::daemon::DaemonProcess;
use driftless_tests::examples::*;
use driftless_tests::poll::until_blocking;
use serde_json::{Value, json};
use std::process::{Command, Output};
use std::time::Duration;

fn start(extra: &[&str]) -> (tempfile::TempDir, DaemonProcess) {
    let dir = tempfile::tempdir().unwrap();
    let d = DaemonProcess::start(env!("CARGO_BIN_EXE_driftless"), dir.path(), extra);
    (dir, d)
}

/// `driftless ARGS` against the daemon at `url` (through `DRIFTLESS_URL`).
fn driftless(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .env("DRIFTLESS_URL", url)
        .output()
        .expect("run driftless")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn submit_wait_prints_the_output_and_the_other_commands_show_the_job() {
    let (_dir, d) = start(&[]);
    let waited = driftless(
        &d.url,
        &["submit", HELLO, "--input", r#"{"a":[1,2]}"#, "--wait"],
    );
    assert_eq!(waited.status.code(), Some(0), "{}", stderr(&waited));
    let output: Value = serde_json::from_str(&stdout(&waited)).expect("output is JSON");
    assert_eq!(output, json!({"a": [1, 2]}));
    assert!(
        stderr(&waited).contains("submitted: job_"),
        "{}",
        stderr(&waited)
    );

    // Without --wait: the id alone on stdout, for scripts.
    let submitted = driftless(
        &d.url,
        &["submit", WORDCOUNT, "--input", r#"{"text":"a b a"}"#],
    );
    assert_eq!(submitted.status.code(), Some(0), "{}", stderr(&submitted));
    let id = stdout(&submitted).trim().to_string();
    assert!(id.starts_with("job_") && !id.contains('\n'), "{id:?}");

    let status = driftless(&d.url, &["status", &id, "--wait"]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let text = stdout(&status);
    assert!(text.starts_with(&format!("{id}  succeeded")), "{text}");
    assert!(text.contains("attempt 1  succeeded on node-1/"), "{text}");
    assert!(text.contains(r#""words":3"#), "{text}");

    let as_json = driftless(&d.url, &["status", &id, "--json"]);
    let job: Value = serde_json::from_slice(&as_json.stdout).unwrap();
    assert_eq!(job["output"]["words"], 3);

    let logs = driftless(&d.url, &["logs", &id]);
    assert_eq!(logs.status.code(), Some(0));
    assert!(
        stdout(&logs).starts_with("=== attempt 1 on node-1/"),
        "{}",
        stdout(&logs)
    );

    let list = driftless(&d.url, &["jobs", "--status", "succeeded"]);
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    assert!(stdout(&list).contains(&id), "{}", stdout(&list));
    assert_eq!(stdout(&list).lines().count(), 3, "header and two jobs");
    let page = driftless(&d.url, &["jobs", "--limit", "1"]);
    assert_eq!(stdout(&page).lines().count(), 2, "{}", stdout(&page));
    assert!(
        stderr(&page).contains("more: driftless jobs --before"),
        "{}",
        stderr(&page)
    );

    let modules = driftless(&d.url, &["modules"]);
    assert!(
        stdout(&modules).contains("driftless:kv@2.0.0  store"),
        "{}",
        stdout(&modules)
    );
}

#[test]
fn failures_exit_non_zero_and_say_why() {
    let (_dir, d) = start(&["--provide", "driftless:kv@1.0.0"]);

    // A job that fails: exit 1, the reason on stderr.
    let failed = driftless(
        &d.url,
        &[
            "submit",
            SPIN_FOREVER,
            "--timeout-ms",
            "200",
            "--max-attempts",
            "1",
            "--wait",
        ],
    );
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("failed after 1 attempt(s)")
            && stderr(&failed).contains("(timeout)"),
        "{}",
        stderr(&failed)
    );

    // Refused at admission: exit 2, the compat report says which side must move.
    let rejected = driftless(&d.url, &["submit", KV_V2]);
    assert_eq!(rejected.status.code(), Some(2));
    let text = stderr(&rejected);
    assert!(text.contains("(rejected, HTTP 422)"), "{text}");
    assert!(text.contains("upgrade the runtime"), "{text}");

    let bad_input = driftless(&d.url, &["submit", HELLO, "--input", "not json"]);
    assert_eq!(bad_input.status.code(), Some(2));
    assert!(
        stderr(&bad_input).contains("the input is not JSON"),
        "{}",
        stderr(&bad_input)
    );

    let missing = driftless(&d.url, &["status", "job_nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("(not-found, HTTP 404)"),
        "{}",
        stderr(&missing)
    );

    // Cancelling a running job stops it; --wait then exits 1.
    let slow = driftless(&d.url, &["submit", SLOW, "--input", r#"{"ms":60000}"#]);
    let id = stdout(&slow).trim().to_string();
    until_blocking("the job to start", Duration::from_secs(10), || {
        let s = driftless(&d.url, &["status", &id, "--json"]);
        serde_json::from_slice::<Value>(&s.stdout).unwrap()["status"] == "running"
    });
    let cancel = driftless(&d.url, &["cancel", &id]);
    assert_eq!(cancel.status.code(), Some(0), "{}", stderr(&cancel));
    assert!(
        stdout(&cancel).contains("cancellation requested"),
        "{}",
        stdout(&cancel)
    );
    let waited = driftless(&d.url, &["status", &id, "--wait", "--json"]);
    let job: Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(job["status"], "cancelled", "{job}");

    // No daemon there: say how to start one.
    let nowhere = driftless("http://127.0.0.1:9", &["jobs"]);
    assert_eq!(nowhere.status.code(), Some(2));
    assert!(
        stderr(&nowhere).contains("cannot reach the daemon at http://127.0.0.1:9")
            && stderr(&nowhere).contains("driftless serve"),
        "{}",
        stderr(&nowhere)
    );
}

#[test]
fn tasks_are_deployed_updated_and_rolled_back_from_the_cli() {
    let (_dir, d) = start(&[]);
    let v1 = driftless(&d.url, &["deploy", "greet", SLOW]);
    assert_eq!(v1.status.code(), Some(0), "{}", stderr(&v1));
    assert_eq!(stdout(&v1).trim(), "greet: created with version 1");
    let v2 = driftless(&d.url, &["deploy", "greet", HELLO]);
    assert_eq!(stdout(&v2).trim(), "greet: deployed version 2 (was 1)");
    let same = driftless(&d.url, &["deploy", "greet", HELLO]);
    assert!(
        stdout(&same).starts_with("greet: unchanged; these bytes are already version 2"),
        "{}",
        stdout(&same)
    );

    let run = driftless(
        &d.url,
        &["submit", "greet", "--input", r#"{"hi":1}"#, "--wait"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&run)).unwrap(),
        json!({"hi": 1})
    );
    let pinned = driftless(
        &d.url,
        &[
            "submit",
            "greet@1",
            "--input",
            r#"{"ms":1,"tag":"one"}"#,
            "--wait",
        ],
    );
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&pinned)).unwrap()["tag"],
        "one"
    );

    let back = driftless(&d.url, &["rollback", "greet"]);
    assert_eq!(
        stdout(&back).trim(),
        "greet: current is now version 1 (was 2)"
    );
    let list = driftless(&d.url, &["tasks"]);
    assert!(
        stdout(&list)
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["greet", "1", "2"]),
        "{}",
        stdout(&list)
    );
    let show = driftless(&d.url, &["task", "greet"]);
    let text = stdout(&show);
    assert!(text.starts_with("greet  current version 1"), "{text}");
    assert!(
        text.contains("jobs: 0 queued, 0 running, 1 succeeded"),
        "{text}"
    );
    assert!(
        text.contains("node node-1 resolves current to v1"),
        "{text}"
    );

    let refused = driftless(&d.url, &["undeploy", "greet", "1"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("is the current version"),
        "{}",
        stderr(&refused)
    );
    let gone = driftless(&d.url, &["undeploy", "greet", "2"]);
    assert_eq!(stdout(&gone).trim(), "greet: version 2 unregistered");

    let neither = driftless(&d.url, &["submit", "./no-such.wasm"]);
    assert_eq!(neither.status.code(), Some(2));
    assert!(
        stderr(&neither).contains("neither a readable .wasm file nor a task reference"),
        "{}",
        stderr(&neither)
    );
}

#[test]
fn drain_resume_and_inflight_from_the_cli() {
    let (_dir, d) = start(&["--agents", "1"]);
    let slow = driftless(&d.url, &["submit", SLOW, "--input", r#"{"ms":800}"#]);
    let id = stdout(&slow).trim().to_string();
    until_blocking("the job to run", Duration::from_secs(10), || {
        stdout(&driftless(&d.url, &["inflight"])).contains(&id)
    });
    let inflight = driftless(&d.url, &["inflight"]);
    assert!(
        stdout(&inflight)
            .starts_with("node node-1 (taking work), agents node-1/0: 1 attempt(s) running"),
        "{}",
        stdout(&inflight)
    );
    let drained = driftless(&d.url, &["drain", "--wait"]);
    assert_eq!(drained.status.code(), Some(0), "{}", stderr(&drained));
    assert!(
        stderr(&drained).contains("draining: 1 attempt(s) still running"),
        "{}",
        stderr(&drained)
    );
    assert!(
        stdout(&drained).contains("(draining)")
            && stdout(&drained).contains(": 0 attempt(s) running"),
        "{}",
        stdout(&drained)
    );
    let resumed = driftless(&d.url, &["resume", "--json"]);
    let state: Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(state["draining"], false);

    // By name, through the registry (here the node the CLI talks to).
    let drained = driftless(&d.url, &["drain", "--node", "node-1", "--wait"]);
    assert_eq!(drained.status.code(), Some(0), "{}", stderr(&drained));
    assert!(
        stderr(&drained).contains("node-1 drains at its next heartbeat"),
        "{}",
        stderr(&drained)
    );
    assert_eq!(stdout(&drained), "node-1 is drained: nothing runs on it\n");
    let resumed = driftless(&d.url, &["resume", "--node", "node-1"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let unknown = driftless(&d.url, &["drain", "--node", "node-9"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(
        stderr(&unknown).contains("no live process of node node-9 is registered"),
        "{}",
        stderr(&unknown)
    );
}

/// `driftless logs` on a running job shows what its attempt has logged so far (read from the
/// node that runs it), then the kept log once it ends.
#[test]
fn logs_of_a_running_job_show_its_output_so_far() {
    let (_dir, d) = start(&[]);
    let slow = driftless(&d.url, &["submit", SLOW, "--input", r#"{"ms":60000}"#]);
    assert_eq!(slow.status.code(), Some(0), "{}", stderr(&slow));
    let id = stdout(&slow).trim().to_string();
    let mut seen = String::new();
    until_blocking("the live log", Duration::from_secs(20), || {
        seen = stdout(&driftless(&d.url, &["logs", &id]));
        seen.contains("napping 60000 ms")
    });
    assert!(
        seen.starts_with("=== attempt 1 on node-1/") && seen.contains("(running) ===\nnapping"),
        "{seen}"
    );
    let cancelled = driftless(&d.url, &["cancel", &id]);
    assert_eq!(cancelled.status.code(), Some(0), "{}", stderr(&cancelled));
    until_blocking("the kept log", Duration::from_secs(20), || {
        seen = stdout(&driftless(&d.url, &["logs", &id]));
        seen.contains("(cancelled) ===\nnapping 60000 ms")
    });
}

/// `driftless submit` sets a job's priority, delay and concurrency key; `status` shows them.
#[test]
fn submit_sets_the_jobs_turn_and_status_shows_it() {
    let (_dir, d) = start(&[]);
    let submitted = driftless(
        &d.url,
        &[
            "submit",
            HELLO,
            "--priority",
            "-3",
            "--delay-ms",
            "60000",
            "--concurrency-key",
            "acme",
            "--concurrency-limit",
            "2",
        ],
    );
    assert_eq!(submitted.status.code(), Some(0), "{}", stderr(&submitted));
    let id = stdout(&submitted).trim().to_string();
    let status = stdout(&driftless(&d.url, &["status", &id]));
    let prefix = format!("{id}  queued, delayed: runs in ");
    assert!(status.starts_with(&prefix), "{status}");
    let secs: f64 = status[prefix.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((30.0..=60.0).contains(&secs), "{status}");
    assert!(status.contains("  priority   -3\n"), "{status}");
    assert!(
        status.contains("  key        acme (at most 2 of its jobs at once)\n"),
        "{status}"
    );
    let both = driftless(
        &d.url,
        &[
            "submit",
            HELLO,
            "--delay-ms",
            "1",
            "--not-before",
            "2026-01-01T00:00:00Z",
        ],
    );
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
}
