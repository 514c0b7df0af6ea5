//! The `driftless` binary's local commands, run as a guest author's CI would run them.
//! (Declared as a test of the runtime package so the real binary is built for it.)

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::drift::HAND_MADE;
use driftless_tests::{Host, examples::*};
use serde_json::Value;
use std::path::{Path, PathBuf};
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

/// A hand-made component of the drift matrix, written to a file for the CLI.
fn hand_made_file(dir: &Path, name: &str) -> PathBuf {
    let (_, make) = HAND_MADE
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a hand-made component");
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, make()).unwrap();
    path
}

#[test]
fn check_and_run_name_the_wasi_functions_the_host_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = hand_made_file(dir.path(), "wasi_unknown_function");
    let unknown = unknown.to_str().unwrap();
    let wants = [
        "REJECTED: 1 of ",
        "[FAIL] wasi:random/insecure@0.2.99",
        "wasi:random@0.2.12 lacks `get-insecure-random-u128`",
    ];
    let check = driftless(&["check", unknown]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    let run = driftless(&["run", unknown]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    for out in [&check, &run] {
        for want in wants {
            assert!(text(out).contains(want), "{want:?} not in:\n{}", text(out));
        }
        assert!(!text(out).contains("linker refused"), "{}", text(out));
    }
    let ahead = hand_made_file(dir.path(), "wasi_patch_ahead");
    let run = driftless(&["run", ahead.to_str().unwrap(), "--input", "[1]"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
}

/// `driftless check` and a daemon providing the same catalog give the same verdict and the
/// same report for every component of the drift matrix (the examples and the hand-made
/// drift): the daemon's 201 or 422 carries exactly the report `check --json` prints, and a
/// component `check` cannot read is refused by the daemon with the same message.
#[test]
fn check_and_the_daemon_agree_on_every_component_of_the_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let mut components: Vec<(String, PathBuf)> = ALL
        .iter()
        .map(|(name, path)| (name.to_string(), PathBuf::from(path)))
        .collect();
    for (name, _) in HAND_MADE {
        components.push((name.to_string(), hand_made_file(dir.path(), name)));
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for host in Host::ALL {
        let provides: Vec<&str> = host
            .provides()
            .iter()
            .flat_map(|p| ["--provide", p])
            .collect();
        let mut args = vec!["--agents", "1"];
        args.extend(&provides);
        let daemon = DaemonProcess::start(
            env!("CARGO_BIN_EXE_driftless"),
            &dir.path().join(format!("{host:?}")),
            &args,
        );
        let client = Client::new(&daemon.url);
        for (name, path) in &components {
            let at = format!("{name} on {host:?}");
            let mut check_args = vec!["check", path.to_str().unwrap(), "--json"];
            check_args.extend(&provides);
            let check = driftless(&check_args);
            let bytes = std::fs::read(path).unwrap();
            let (status, body) = runtime.block_on(client.submit(&bytes, &[], None));
            // A task deploy goes through the same admission: same status, code and report.
            let deploy = client
                .request(
                    reqwest::Method::PUT,
                    &format!("/v1/tasks/{}", name.replace('_', "-")),
                )
                .body(bytes.clone());
            let (deploy_status, deployed) = runtime.block_on(client.send(deploy));
            match (status, check.status.code()) {
                (201, Some(0)) | (422, Some(1)) => {
                    let report: Value = serde_json::from_slice(&check.stdout).unwrap();
                    assert_eq!(body["report"], report, "{at}: the reports differ");
                    assert_eq!(
                        deployed["report"], report,
                        "{at}: the deploy's report differs"
                    );
                    let verdict = report["verdict"].as_str().unwrap();
                    assert_eq!(verdict == "rejected", status == 422, "{at}: {verdict}");
                    if status == 422 {
                        assert_eq!(body["error"]["code"], "rejected", "{at}: {body}");
                        assert_eq!(deployed["error"], body["error"], "{at}: {deployed}");
                        assert_eq!(deploy_status, 422, "{at}: {deployed}");
                    } else {
                        assert_eq!(deploy_status, 201, "{at}: {deployed}");
                    }
                }
                (400, Some(2)) => {
                    let message = body["error"]["message"].as_str().unwrap();
                    assert!(text(&check).contains(message), "{at}: {}", text(&check));
                    assert_eq!((deploy_status, &deployed["error"]), (400, &body["error"]));
                }
                (status, code) => panic!(
                    "{at}: the daemon answered {status} ({body}) but check exited {code:?}:\n{}",
                    text(&check)
                ),
            }
        }
    }
}

/// README's quick start works on a toolchain without the wasm32-wasip2 target (it adds the
/// target before building), and the components it submits are where the build puts them.
#[test]
fn the_readme_quick_start_adds_the_target_and_names_built_examples() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = &readme[readme.find("## Quick start").expect("a quick start")..];
    let block = &section[section.find("```sh").unwrap()..];
    let block = &block[..block[5..].find("```").unwrap() + 5];
    let add = block
        .find("rustup target add wasm32-wasip2")
        .expect("adds the target");
    let build = block
        .find("cargo build --release --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml")
        .expect("builds the examples");
    assert!(add < build, "{block}");
    let ex = "guest-examples/target/wasm32-wasip2/release";
    assert!(block.contains(&format!("EX={ex}\n")), "{block}");
    let built = Path::new(HELLO).parent().unwrap();
    assert!(built.ends_with(ex), "{}", built.display());
    for file in block.split("$EX/").skip(1) {
        let file = file.split_whitespace().next().unwrap();
        assert!(
            built.join(file).exists(),
            "the quick start submits {file}, which is not built"
        );
    }
}
