//! What admission refuses and what it tells the job: bad bytes, optional imports, the
//! WORKFLOW_VERSIONING capability, and the real linker's agreement with the rules.

use driftless::compat::{Catalog, InspectError, Status, Verdict};
use driftless::engine::{Outcome, PrepareError, TrapReason};
use driftless_tests::drift::HAND_MADE;
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
    // prepare() confirms each accepted verdict with instantiate_pre; across the matrix (the
    // examples and the hand-made drift) no accepted job may fail to link.
    for host in Host::ALL {
        let sandbox = sandbox(host);
        let examples = ALL.iter().map(|(name, path)| (*name, bytes(path)));
        let hand_made = HAND_MADE.iter().map(|(name, make)| (*name, make()));
        for (name, bytes) in examples.chain(hand_made) {
            match sandbox.prepare(&bytes) {
                Ok(p) => assert_ne!(p.report.verdict, Verdict::Rejected),
                Err(PrepareError::Link { message, .. }) => {
                    panic!("{name} on {host:?}: the linker refused an accepted job: {message}")
                }
                Err(e @ (PrepareError::Compile(_) | PrepareError::Pool(_))) => {
                    panic!("{name} on {host:?}: {e}")
                }
                Err(PrepareError::Rejected(_) | PrepareError::Invalid(_)) => {}
            }
        }
    }
}

/// A component importing every WASI function the catalog lists (a dummy guest of
/// `wasi:cli/imports` beside `driftless:job/task`) is accepted and links: the catalog never
/// lists a WASI function the linker lacks or types differently, so a report never says
/// "satisfied" for something instantiation would refuse.
#[test]
fn every_wasi_function_of_the_catalog_links() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut resolve = wit_parser::Resolve::new();
    for file in ["io", "clocks", "random", "filesystem", "sockets", "cli"] {
        let path = root.join(format!("runtime/src/compat/wasi@0.2.12/{file}.wit"));
        resolve.push_file(path).unwrap();
    }
    resolve
        .push_file(root.join("wit/job@1.0.0/job.wit"))
        .unwrap();
    let all = "package test:all;\nworld all {\n  include wasi:cli/imports@0.2.12;\n  include driftless:job/task@1.0.0;\n}\n";
    let package = resolve.push_str("all.wit", all).unwrap();
    let world = resolve.select_world(&[package], Some("all")).unwrap();
    let mut module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    let bytes = wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap();

    let prepared = match sandbox(Host::Current).prepare(&bytes) {
        Ok(p) => p,
        Err(e) => panic!("every WASI function of the catalog should link: {e}"),
    };
    assert_eq!(
        prepared.report.verdict,
        Verdict::Accepted,
        "{}",
        prepared.report
    );
    let imported: usize = prepared
        .report
        .imports
        .iter()
        .filter(|i| i.package.starts_with("wasi:"))
        .map(|i| i.functions.len())
        .sum();
    let listed: usize = Catalog::full()
        .modules()
        .iter()
        .filter(|m| m.name.starts_with("wasi:"))
        .flat_map(|m| m.interfaces.as_ref().unwrap().values())
        .map(|i| i.functions.len())
        .sum();
    assert_eq!(
        imported, listed,
        "the dummy guest imports every listed function"
    );
}
