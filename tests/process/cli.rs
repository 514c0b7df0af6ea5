//! The `driftless` binary's local commands, run as a guest author's CI would run them.
//! (Declared as a test of the runtime package so the real binary is built for it.)

use driftless_tests::examples::*;
use std::process::{Command, Output};

fn driftless(args: &[&str]) -> Output {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-compile-cache");
    Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .env("DRIFTLESS_CACHE_DIR", &cache)
        .env_remove("DRIFTLESS_PROVIDE")
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

#[test]
fn check_exits_by_verdict_and_names_the_side_that_must_move() {
    let ok = driftless(&["check", KV_COUNTER]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).starts_with("ACCEPTED"), "{}", text(&ok));

    let old_host = driftless(&["check", KV_V2, "--provide", "driftless:kv@1.0.0"]);
    assert_eq!(old_host.status.code(), Some(1));
    assert!(
        text(&old_host).contains("the job is ahead, so upgrade the runtime"),
        "{}",
        text(&old_host)
    );

    let new_host = driftless(&["check", KV_COUNTER, "--provide", "driftless:kv@2.0.0"]);
    assert_eq!(new_host.status.code(), Some(1));
    assert!(
        text(&new_host).contains("rebuild the job against kv 2.x"),
        "{}",
        text(&new_host)
    );

    let degraded = driftless(&[
        "check",
        KV_ADAPTIVE,
        "--provide",
        "driftless:kv@1.0.0",
        "--json",
    ]);
    assert_eq!(degraded.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&degraded.stdout).unwrap();
    assert_eq!(report["verdict"], "degraded");

    let not_a_job = driftless(&["check", CLI_COMMAND]);
    assert_eq!(not_a_job.status.code(), Some(2));
    assert!(
        text(&not_a_job).contains("WASI command"),
        "{}",
        text(&not_a_job)
    );

    let unknown = driftless(&["check", HELLO, "--provide", "driftless:kv@9.0.0"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown)
            .contains("it implements driftless:kv@1.0.0, driftless:kv@1.1.0, driftless:kv@2.0.0"),
        "{}",
        text(&unknown)
    );
}

#[test]
fn run_prints_the_output_and_reports_failures() {
    let ok = driftless(&[
        "run",
        KV_ADAPTIVE,
        "--input",
        r#"{"key":"k"}"#,
        "--provide",
        "driftless:kv@1.0.0",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let out: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(out["path"], "kv-1.0");

    let spin = driftless(&["run", SPIN_FOREVER, "--timeout-ms", "200"]);
    assert_eq!(spin.status.code(), Some(1));
    assert!(
        text(&spin).contains("attempt stopped (timeout)"),
        "{}",
        text(&spin)
    );

    let json = driftless(&["run", HELLO, "--input", "[1,2]", "--json"]);
    let result: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(result["outcome"]["kind"], "succeeded");
    assert!(
        result["log"]["chunks"][0]["text"]
            .as_str()
            .unwrap()
            .contains("hello from driftless")
    );

    let rejected = driftless(&["run", KV_V2, "--provide", "driftless:kv@1.1.0"]);
    assert_eq!(rejected.status.code(), Some(2));
    assert!(text(&rejected).contains("REJECTED"), "{}", text(&rejected));
}
