//! The drift matrix: every guest example × every catalog (current host; kv 1.0 only; kv 1.1
//! only; kv 2.0 only) → the expected verdict, and for accepted jobs the expected outcome.
//! `foreach_example!` makes an example without an expectation here a compile error. Then the
//! hand-made drift (`driftless_tests::drift`: WASI ahead by a patch, an unknown or re-typed
//! function, another WASI minor, a pre-release) on the current host.

use driftless::compat::Status;
use driftless::compat::{InspectError, Verdict};
use driftless::engine::{Outcome, PrepareError, TrapReason};
use driftless_tests::TestSandbox;
use driftless_tests::drift::{self, HAND_MADE};
use driftless_tests::{Host, bytes, examples::*, foreach_example, run, sandbox, test_limits};
use serde_json::{Value, json};

/// What one example should do on one host.
enum Expect {
    /// Accepted (or degraded) and the output equals this JSON.
    Output(Verdict, Value),
    /// Accepted and the job returned this error code.
    JobError(&'static str),
    /// Accepted and the attempt was stopped for this reason.
    Trap(TrapReason),
    /// Rejected at admission; the report mentions every one of these fragments.
    Rejected(&'static [&'static str]),
    /// Not a driftless job at all; the error mentions this.
    Invalid(&'static str),
}

struct Case {
    input: Value,
    on: fn(Host) -> Expect,
}

fn hello() -> Case {
    Case {
        input: json!({"greeting": "hi", "n": [1, 2]}),
        on: |_| Expect::Output(Verdict::Accepted, json!({"greeting": "hi", "n": [1, 2]})),
    }
}

fn wordcount() -> Case {
    Case {
        input: json!({"text": "the cat and the hat\nthe end"}),
        on: |_| {
            Expect::Output(
                Verdict::Accepted,
                json!({"words": 7, "lines": 2, "top": [["the", 3], ["and", 1], ["cat", 1]]}),
            )
        },
    }
}

fn kv_counter() -> Case {
    Case {
        input: json!({"key": "visits"}),
        on: |host| match host {
            // Built against kv 1.1 but calling only 1.0 functions: runs on a 1.0 host too.
            Host::Current | Host::Kv10 | Host::Kv11 => {
                Expect::Output(Verdict::Accepted, json!({"key": "visits", "count": 1}))
            }
            Host::Kv2 => Expect::Rejected(&[
                "this host dropped 1.x",
                "the host is ahead, so rebuild the job against kv 2.x",
            ]),
        },
    }
}

fn kv_adaptive() -> Case {
    Case {
        input: json!({"key": "visits"}),
        on: |host| match host {
            Host::Current => Expect::Output(
                Verdict::Accepted,
                json!({"key": "visits", "count": 1, "path": "kv-1.1", "host_kv": ["2.0.0", "1.1.0", "1.0.0"]}),
            ),
            Host::Kv11 => Expect::Output(
                Verdict::Accepted,
                json!({"key": "visits", "count": 1, "path": "kv-1.1", "host_kv": ["1.1.0"]}),
            ),
            // Degraded: kv 1.1's calls are stubbed, and the job takes its kv 1.0 path.
            Host::Kv10 => Expect::Output(
                Verdict::Degraded,
                json!({"key": "visits", "count": 1, "path": "kv-1.0", "host_kv": ["1.0.0"]}),
            ),
            // Its optional kv 1.x import is missing entirely: the job notices and says so.
            Host::Kv2 => Expect::JobError("kv-unavailable"),
        },
    }
}

fn kv_v2() -> Case {
    Case {
        input: json!({"key": "visits"}),
        on: |host| match host {
            Host::Current | Host::Kv2 => Expect::Output(
                Verdict::Accepted,
                json!({"key": "visits", "bucket": "counters", "count": 1, "kv": "2.x"}),
            ),
            Host::Kv10 | Host::Kv11 => Expect::Rejected(&[
                "job built against kv 2.x",
                "the job is ahead, so upgrade the runtime",
            ]),
        },
    }
}

fn spin_forever() -> Case {
    Case {
        input: json!(null),
        on: |_| Expect::Trap(TrapReason::Timeout),
    }
}

fn memory_bomb() -> Case {
    Case {
        input: json!(null),
        on: |_| Expect::Trap(TrapReason::MemoryLimit),
    }
}

fn deep_recursion() -> Case {
    Case {
        input: json!({}),
        on: |_| Expect::Trap(TrapReason::StackOverflow),
    }
}

fn huge_output() -> Case {
    Case {
        input: json!({"output_bytes": 2 << 20}),
        on: |_| Expect::Trap(TrapReason::OutputTooLarge),
    }
}

fn sandbox_probe() -> Case {
    Case {
        input: json!(null),
        on: |_| {
            Expect::Output(
                Verdict::Accepted,
                json!({
                    "env": ["WORKFLOW_VERSIONING=1"],
                    "args": [],
                    "fs_root": "denied: NotFound",
                    "fs_tmp": "denied: NotFound",
                    "versioning_enabled": true,
                    "versioning_level": 1,
                }),
            )
        },
    }
}

fn slow() -> Case {
    Case {
        input: json!({"ms": 20, "tag": "t"}),
        on: |_| {
            Expect::Output(
                Verdict::Accepted,
                json!({"tag": "t", "slept_ms": 20, "attempt": 1}),
            )
        },
    }
}

fn cli_command() -> Case {
    Case {
        input: json!(null),
        on: |_| Expect::Invalid("is a WASI command"),
    }
}

async fn check(name: &str, path: &str, case: Case) {
    let bytes = bytes(path);
    for host in Host::ALL {
        let at = format!("{name} on {host:?}");
        check_one(&at, &sandbox(host), &bytes, &case.input, (case.on)(host)).await;
    }
}

async fn check_one(at: &str, sandbox: &TestSandbox, bytes: &[u8], input: &Value, expect: Expect) {
    let result = run(sandbox, bytes, input, test_limits()).await;
    match (expect, result) {
        (Expect::Output(verdict, want), Ok(r)) => {
            assert_eq!(
                sandbox.prepare(bytes).unwrap().report.verdict,
                verdict,
                "{at}: verdict"
            );
            match &r.outcome {
                Outcome::Succeeded { output } => {
                    assert_eq!(
                        serde_json::from_slice::<Value>(output).unwrap(),
                        want,
                        "{at}: output"
                    )
                }
                other => panic!(
                    "{at}: expected output, got {other:?}\nlog: {}",
                    r.log.text()
                ),
            }
        }
        (Expect::JobError(code), Ok(r)) => match &r.outcome {
            Outcome::Failed { code: got, .. } => assert_eq!(got, code, "{at}"),
            other => panic!("{at}: expected job error {code}, got {other:?}"),
        },
        (Expect::Trap(reason), Ok(r)) => {
            assert_eq!(
                r.outcome.trap_reason(),
                Some(reason),
                "{at}: {:?}",
                r.outcome
            )
        }
        (Expect::Rejected(fragments), Err(PrepareError::Rejected(report))) => {
            assert_eq!(report.verdict, Verdict::Rejected);
            let text = report.to_string();
            for f in fragments {
                assert!(text.contains(f), "{at}: report lacks {f:?}:\n{text}");
            }
        }
        (
            Expect::Invalid(fragment),
            Err(PrepareError::Invalid(e @ InspectError::MissingRun(_))),
        ) => {
            assert!(e.to_string().contains(fragment), "{at}: {e}")
        }
        (_, other) => panic!("{at}: unexpected result {:?}", other.map(|r| r.outcome)),
    }
}

macro_rules! matrix_case {
    ($name:ident, $path:ident) => {
        #[tokio::test]
        async fn $name() {
            check(stringify!($name), $path, super::$name()).await;
        }
    };
}

mod matrix {
    use super::*;
    foreach_example!(matrix_case);
}

/// What each hand-made component does on the current host. A name without an entry here
/// fails the test, so none escapes the matrix.
fn hand_made(name: &str) -> Expect {
    match name {
        // Every WASI import a patch ahead, with only functions WASI 0.2.12 has: runs.
        "wasi_patch_ahead" => {
            Expect::Output(Verdict::Accepted, json!({"greeting": "hi", "n": [1, 2]}))
        }
        "wasi_unknown_function" => Expect::Rejected(&[
            "1 of ",
            "[FAIL] wasi:random/insecure@0.2.99",
            "wasi:random@0.2.12 lacks `get-insecure-random-u128`",
            "upgrade the runtime to one whose wasmtime-wasi provides wasi:random 0.2.99+",
        ]),
        "wasi_other_minor" => Expect::Rejected(&[
            "job built against io 0.3.x; this host provides io 0.2.12",
            "the job is ahead, so upgrade the runtime",
        ]),
        "wasi_pre_release" => Expect::Rejected(&[
            "job built against io exactly 0.2.0-rc-2023-11-10",
            "0.2.0-rc-2023-11-10 is a pre-release, which links only to exactly that version",
        ]),
        "wasi_retyped" => Expect::Rejected(&[
            "`get-insecure-random-u64` is `func() -> u32` in the job but `func() -> u64` in wasi:random@0.2.12",
            "rebuild the job against the published WIT",
        ]),
        "kv_retyped" => Expect::Rejected(&[
            "`get` is `func(key: u32) -> string` in the job but `func(key: string) -> option<string>` in driftless:kv@1.1.0",
            "driftless:kv@1.1.0 is the published driftless:kv",
            "rebuild the job against the published WIT (the driftless-sdk crate",
        ]),
        other => panic!("the hand-made component {other} has no expectation in the drift matrix"),
    }
}

#[tokio::test]
async fn hand_made_drift_on_the_current_host() {
    let sandbox = sandbox(Host::Current);
    for (name, make) in HAND_MADE {
        let input = json!({"greeting": "hi", "n": [1, 2]});
        check_one(name, &sandbox, &make(), &input, hand_made(name)).await;
    }
}

#[test]
fn only_the_unknown_function_fails_and_the_rest_of_wasi_is_satisfied() {
    let report = match sandbox(Host::Current).prepare(&drift::wasi_unknown_function()) {
        Err(PrepareError::Rejected(report)) => report,
        other => panic!(
            "expected a rejection, got {:?}",
            other.map(|p| p.report.clone())
        ),
    };
    let rejected: Vec<&str> = report.rejected().map(|i| i.import.as_str()).collect();
    assert_eq!(rejected, ["wasi:random/insecure@0.2.99"]);
    let failed = report.rejected().next().unwrap();
    assert_eq!(failed.missing_functions, ["get-insecure-random-u128"]);
    assert!(
        report
            .imports
            .iter()
            .filter(|i| i.package.starts_with("wasi:") && i.import != failed.import)
            .all(|i| i.status == Status::Satisfied
                && i.version.as_deref() == Some(drift::WASI_AHEAD))
    );
}
