//! The drift matrix: every guest example × every catalog (current host; kv 1.0 only; kv 1.1
//! only; kv 2.0 only) → the expected verdict, and for accepted jobs the expected outcome.
//! `foreach_example!` makes an example without an expectation here a compile error.

use driftless::compat::{InspectError, Verdict};
use driftless::engine::{Outcome, PrepareError, TrapReason};
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
        let sandbox = sandbox(host);
        let at = format!("{name} on {host:?}");
        let result = run(&sandbox, &bytes, &case.input, test_limits()).await;
        match ((case.on)(host), result) {
            (Expect::Output(verdict, want), Ok(r)) => {
                assert_eq!(
                    sandbox.prepare(&bytes).unwrap().report.verdict,
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
