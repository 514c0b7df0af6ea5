//! What admission refuses and what it tells the job: bad bytes, optional imports, the
//! WORKFLOW_VERSIONING capability, and the real linker's agreement with the rules.

use driftless::compat::{InspectError, Status, Verdict};
use driftless::engine::{Outcome, PrepareError, TrapReason};
use driftless_tests::{Host, bytes, examples::*, output_json, run, sandbox, test_limits};
use serde_json::json;

fn invalid(bytes: &[u8]) -> InspectError {
    match sandbox(Host::Current).prepare(bytes) {
        Err(PrepareError::Invalid(e)) => e,
        Err(other) => panic!("expected an invalid-input error, got {other}"),
        Ok(_) => panic!("bad bytes were accepted"),
    }
}

#[test]
fn bad_input_is_refused_with_what_to_do() {
    let e = invalid(b"#!/bin/sh\necho hi\n");
    assert_eq!(e, InspectError::NotWasm);
    assert!(
        e.to_string().contains("target/wasm32-wasip2/release"),
        "{e}"
    );

    // A core module (the smallest valid one).
    let e = invalid(b"\0asm\x01\0\0\0");
    assert_eq!(e, InspectError::CoreModule);
    assert!(e.to_string().contains("wasm-tools component new"), "{e}");

    let hello = bytes(HELLO);
    for cut in [hello.len() / 2, hello.len() - 1, 12] {
        let e = invalid(&hello[..cut]);
        assert!(
            matches!(e, InspectError::Malformed { .. }),
            "cut at {cut}: {e:?}"
        );
        assert!(e.to_string().contains("truncated or corrupt"), "{e}");
    }

    let e = invalid(&bytes(CLI_COMMAND));
    assert!(matches!(e, InspectError::MissingRun(_)));
    assert!(e.to_string().contains("export_task!"), "{e}");
}

#[test]
fn rejected_reports_cover_every_import_and_are_serializable() {
    let err = match sandbox(Host::Kv10).prepare(&bytes(KV_V2)) {
        Err(e) => e,
        Ok(_) => panic!("kv-v2 accepted on a kv 1.0 host"),
    };
    let report = err.report().expect("a rejection carries its report");
    assert_eq!(report.verdict, Verdict::Rejected);
    let kv = report
        .imports
        .iter()
        .find(|i| i.package == "driftless:kv")
        .unwrap();
    assert_eq!(
        (kv.version.as_deref(), kv.provided.as_slice()),
        (Some("2.0.0"), &["1.0.0".to_string()][..])
    );
    assert!(
        report
            .imports
            .iter()
            .filter(|i| i.package != "driftless:kv")
            .all(|i| i.status == Status::Satisfied)
    );
    let json = serde_json::to_value(report).unwrap();
    assert_eq!(
        json["imports"].as_array().unwrap().len(),
        report.imports.len()
    );
}

#[tokio::test]
async fn calling_a_missing_optional_function_traps_naming_it() {
    let sandbox = sandbox(Host::Kv10);
    let r = run(
        &sandbox,
        &bytes(KV_ADAPTIVE),
        &json!({"key": "k", "skip_check": true}),
        test_limits(),
    )
    .await
    .unwrap();
    match &r.outcome {
        Outcome::Trapped {
            reason: TrapReason::MissingImport,
            message,
        } => {
            assert!(
                message.contains("`driftless:kv/store@1.1.0#increment`"),
                "{message}"
            );
            assert!(
                message.contains("it provides driftless:kv 1.0.0"),
                "{message}"
            );
        }
        other => panic!("expected a missing-import trap, got {other:?}"),
    }
    // The stubs live beside the real 1.0 functions, which keep working for the same job.
    let r = run(
        &sandbox,
        &bytes(KV_ADAPTIVE),
        &json!({"key": "k"}),
        test_limits(),
    )
    .await
    .unwrap();
    assert_eq!(output_json(&r)["path"], "kv-1.0");
}

#[tokio::test]
async fn kv_state_is_shared_across_versions_and_attempts() {
    let sandbox = sandbox(Host::Current);
    for expected in 1..=3 {
        let r = run(
            &sandbox,
            &bytes(KV_COUNTER),
            &json!({"key": "n"}),
            test_limits(),
        )
        .await
        .unwrap();
        assert_eq!(output_json(&r)["count"], expected);
    }
    // kv-adaptive increments the same 1.x key with kv 1.1's increment.
    let r = run(
        &sandbox,
        &bytes(KV_ADAPTIVE),
        &json!({"key": "n"}),
        test_limits(),
    )
    .await
    .unwrap();
    assert_eq!(output_json(&r)["count"], 4);
    // kv 2.x sees 1.x data in the bucket named "".
    let r = run(
        &sandbox,
        &bytes(KV_V2),
        &json!({"key": "n", "bucket": ""}),
        test_limits(),
    )
    .await
    .unwrap();
    assert_eq!(output_json(&r)["count"], 5);
}

#[test]
fn the_linker_agrees_with_every_accepted_verdict() {
    // prepare() confirms each accepted verdict with instantiate_pre; across the matrix no
    // accepted job may fail to link.
    for host in Host::ALL {
        let sandbox = sandbox(host);
        for (name, path) in ALL {
            match sandbox.prepare(&bytes(path)) {
                Ok(p) => assert_ne!(p.report.verdict, Verdict::Rejected),
                Err(PrepareError::Link { message, .. }) => {
                    panic!("{name} on {host:?}: the linker refused an accepted job: {message}")
                }
                Err(PrepareError::Compile(e)) => panic!("{name} on {host:?}: {e}"),
                Err(PrepareError::Rejected(_) | PrepareError::Invalid(_)) => {}
            }
        }
    }
}
