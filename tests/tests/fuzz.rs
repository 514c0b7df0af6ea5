//! The fuzz harness (`driftless_tests::fuzz`) on the admission path: component bytes →
//! inspect → judge against a catalog, the multipart submission parser and the JSON spec
//! parser (`driftless::api::submission`), driven without HTTP. Properties: no input panics,
//! none hangs, and each ends in a verdict or an error with the code its route documents.
//!
//! A few seconds by default; a longer run: `DRIFTLESS_FUZZ_CASES=100000 DRIFTLESS_FUZZ_SEED=7
//! cargo test -p driftless-tests --test fuzz --release`.

use driftless::admission::AdmissionError;
use driftless::api::error::ApiError;
use driftless::api::submission::{self, Caps};
use driftless::wire::ErrorCode;
use driftless_tests::fuzz::{self, Rng, Target};
use driftless_tests::{Host, bytes, drift, examples, sandbox};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Caps small enough that mutated inputs cross them.
const CAPS: Caps = Caps {
    max_upload_bytes: 4 << 20,
    max_input_bytes: 4096,
};

/// How long one case may take (the runtime crate is not optimised in test builds).
const TIME_BOUND: Duration = Duration::from_secs(20);

fn failures() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// An error must carry one of `allowed` codes and say something.
fn classified(e: &ApiError, allowed: &[ErrorCode]) -> Result<(), String> {
    if !allowed.contains(&e.code) {
        return Err(format!(
            "unexpected code {} ({}): {}",
            e.code,
            e.code.status(),
            e.message
        ));
    }
    if e.message.trim().is_empty() {
        return Err(format!("{} without a message", e.code));
    }
    Ok(())
}

#[test]
fn admission_judges_or_classifies_every_component() {
    let hosts = [
        Arc::new(sandbox(Host::Current)),
        Arc::new(sandbox(Host::Kv10)),
    ];
    let mut seeds: Vec<Vec<u8>> = examples::ALL.iter().map(|(_, p)| bytes(p)).collect();
    seeds.extend(drift::HAND_MADE.iter().map(|(_, make)| make()));
    let check: fuzz::Check = Arc::new(move |input: &[u8]| {
        let hash = driftless::engine::hash_hex(input);
        for host in &hosts {
            match host.judge(&hash, input, &[]) {
                Ok(judged) => {
                    // A verdict that reads back and prints.
                    let json = serde_json::to_string(&judged.report).map_err(|e| e.to_string())?;
                    serde_json::from_str::<driftless::compat::CompatReport>(&json)
                        .map_err(|e| format!("the report does not read back: {e}"))?;
                    if judged.report.to_string().is_empty() {
                        return Err("an empty report".into());
                    }
                }
                Err(e) => {
                    let e = ApiError::from(AdmissionError::Invalid(e));
                    classified(&e, &[ErrorCode::InvalidComponent])?;
                }
            }
        }
        Ok(())
    });
    let summary = fuzz::run(
        Target {
            name: "admission",
            seeds,
            cases: 150,
            mutate: |rng, seeds| {
                if rng.one_in(4) {
                    fuzz::mutate_seed(rng, seeds)
                } else {
                    fuzz::mutate_wasm(rng, seeds)
                }
            },
            check,
            time_bound: TIME_BOUND,
        },
        failures(),
    );
    eprintln!("admission: {summary:?}");
}

/// A JSON value of some depth, with the spec's field names and values near their limits.
fn json_value(rng: &mut Rng, depth: usize) -> String {
    let scalars = [
        "null",
        "true",
        "0",
        "-1",
        "1",
        "4294967295",
        "4294967296",
        "18446744073709551616",
        "1e309",
        "-0.0",
        "\"\"",
        "\"resize@7\"",
        "\"resize@current\"",
        "\"@\"",
        "\"\\ud800\"",
        "\"driftless:kv/store@1.1.0\"",
        "\"ab\"",
    ];
    match rng.below(if depth == 0 { 1 } else { 4 }) {
        0 => rng.pick(&scalars).to_string(),
        1 => format!(
            "[{}]",
            (0..rng.below(4))
                .map(|_| json_value(rng, depth - 1))
                .collect::<Vec<_>>()
                .join(",")
        ),
        2 => format!(
            "\"{}\"",
            "x".repeat(rng.pick(&[0usize, 10, 4000, 5000]).to_owned())
        ),
        _ => spec_object(rng, depth - 1),
    }
}

/// A JSON object with (mostly) the fields of a job spec.
fn spec_object(rng: &mut Rng, depth: usize) -> String {
    let keys = [
        "component",
        "task",
        "input",
        "timeout_ms",
        "memory_mib",
        "max_attempts",
        "optional_imports",
        "colour",
        "input",
    ];
    let fields: Vec<String> = (0..rng.below(6))
        .map(|_| format!("\"{}\": {}", rng.pick(&keys), json_value(rng, depth)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

#[test]
fn the_json_spec_parser_answers_every_input() {
    let check: fuzz::Check = Arc::new(|input: &[u8]| {
        if let Err(e) = submission::spec(input, &CAPS) {
            classified(&e, &[ErrorCode::BadSpec, ErrorCode::InputTooLarge])?;
        }
        let text = String::from_utf8_lossy(input);
        if let Err(e) = submission::query_input(&text, &CAPS) {
            classified(&e, &[ErrorCode::BadRequest, ErrorCode::InputTooLarge])?;
        }
        Ok(())
    });
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let summary = fuzz::run(
        Target {
            name: "spec",
            seeds: vec![deep.into_bytes()],
            cases: 3000,
            mutate: |rng, seeds| {
                if rng.one_in(2) {
                    let mut s = spec_object(rng, 3).into_bytes();
                    if rng.one_in(3) {
                        fuzz::mutate_bytes(rng, &mut s, seeds);
                    }
                    s
                } else {
                    fuzz::mutate_seed(rng, seeds)
                }
            },
            check,
            time_bound: TIME_BOUND,
        },
        failures(),
    );
    eprintln!("spec: {summary:?}");
}

/// A multipart body (boundary `B`) of random parts: names the parser knows and others,
/// payloads from the seeds, a closing boundary or none.
fn form(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..rng.below(4) {
        let name = rng.pick(&["component", "spec", "spec", "other", ""]);
        body.extend_from_slice(b"--B\r\n");
        if !rng.one_in(8) {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes(),
            );
        }
        if rng.one_in(3) {
            body.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        body.extend_from_slice(b"\r\n");
        let payload = match rng.below(3) {
            0 => spec_object(rng, 2).into_bytes(),
            1 => rng.pick(seeds).clone(),
            _ => {
                let n = rng.below(64);
                rng.bytes(n)
            }
        };
        body.extend_from_slice(&payload);
        body.extend_from_slice(b"\r\n");
    }
    if !rng.one_in(4) {
        body.extend_from_slice(b"--B--\r\n");
    }
    body
}

#[test]
fn the_multipart_parser_answers_every_body() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let runtime = Arc::new(runtime);
    let check: fuzz::Check = Arc::new(move |input: &[u8]| {
        let parsed = runtime.block_on(submission::multipart(
            "multipart/form-data; boundary=B",
            input.to_vec().into(),
            &CAPS,
        ));
        match parsed {
            Ok((_, spec)) => submission::check_input(spec.input.as_ref(), &CAPS)
                .map_err(|_| "a spec over the input cap was accepted".to_string()),
            Err(e) => classified(
                &e,
                &[
                    ErrorCode::BadRequest,
                    ErrorCode::BadSpec,
                    ErrorCode::InputTooLarge,
                ],
            ),
        }
    });
    let summary = fuzz::run(
        Target {
            name: "multipart",
            seeds: vec![],
            cases: 3000,
            mutate: |rng, seeds| {
                let mut body = if rng.one_in(2) {
                    form(rng, seeds)
                } else {
                    rng.pick(seeds).clone()
                };
                for _ in 0..rng.below(3) {
                    fuzz::mutate_bytes(rng, &mut body, seeds);
                }
                body
            },
            check,
            time_bound: TIME_BOUND,
        },
        failures(),
    );
    eprintln!("multipart: {summary:?}");
}
