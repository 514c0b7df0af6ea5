//! Hostile jobs end their attempt with the right typed reason, under the limits as configured,
//! and leave the process healthy: a normal job runs right after each, and while they run.

use driftless::engine::{CancelToken, Limits, Outcome, TrapReason};
use driftless_tests::{Host, bytes, examples::*, output_json, run, run_with, sandbox, test_limits};
use serde_json::json;
use std::time::{Duration, Instant};

async fn hello_still_runs(sandbox: &driftless_tests::TestSandbox) {
    let r = run(sandbox, &bytes(HELLO), &json!({"ok": true}), test_limits())
        .await
        .unwrap();
    assert_eq!(output_json(&r), json!({"ok": true}));
}

fn trapped(outcome: &Outcome) -> (TrapReason, &str) {
    match outcome {
        Outcome::Trapped { reason, message } => (*reason, message.as_str()),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn spin_forever_times_out_at_the_configured_limit() {
    let sandbox = sandbox(Host::Current);
    let limits = Limits {
        timeout_ms: 300,
        ..test_limits()
    };
    let started = Instant::now();
    let r = run(&sandbox, &bytes(SPIN_FOREVER), &json!(null), limits)
        .await
        .unwrap();
    let (reason, message) = trapped(&r.outcome);
    assert_eq!(reason, TrapReason::Timeout);
    assert!(message.contains("300 ms time limit"), "{message}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "stopped before its limit"
    );
    hello_still_runs(&sandbox).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_configured_memory_limit() {
    let sandbox = sandbox(Host::Current);
    for mib in [16u64, 48] {
        let limits = Limits {
            memory_bytes: mib << 20,
            ..test_limits()
        };
        let r = run(&sandbox, &bytes(MEMORY_BOMB), &json!(null), limits)
            .await
            .unwrap();
        let (reason, message) = trapped(&r.outcome);
        assert_eq!(reason, TrapReason::MemoryLimit);
        assert!(
            message.contains(&format!("the limit is {} bytes", mib << 20)),
            "{message}"
        );
    }
    hello_still_runs(&sandbox).await;
}

#[tokio::test]
async fn deep_recursion_overflows_the_stack_and_bounded_recursion_does_not() {
    let sandbox = sandbox(Host::Current);
    let r = run(&sandbox, &bytes(DEEP_RECURSION), &json!({}), test_limits())
        .await
        .unwrap();
    let (reason, message) = trapped(&r.outcome);
    assert_eq!(reason, TrapReason::StackOverflow);
    assert!(message.contains("recursion"), "{message}");
    // The same code with a bounded depth completes: the limit is the stack, not the code.
    let r = run(
        &sandbox,
        &bytes(DEEP_RECURSION),
        &json!({"depth": 1000}),
        test_limits(),
    )
    .await
    .unwrap();
    assert!(output_json(&r).is_u64());
    hello_still_runs(&sandbox).await;
}

#[tokio::test]
async fn output_over_the_limit_is_refused_and_under_it_returned() {
    let sandbox = sandbox(Host::Current);
    let limits = Limits {
        output_bytes: 64 << 10,
        ..test_limits()
    };
    let r = run(
        &sandbox,
        &bytes(HUGE_OUTPUT),
        &json!({"output_bytes": 100_000}),
        limits,
    )
    .await
    .unwrap();
    let (reason, message) = trapped(&r.outcome);
    assert_eq!(reason, TrapReason::OutputTooLarge);
    assert!(message.contains("the limit is 65536 bytes"), "{message}");
    let r = run(
        &sandbox,
        &bytes(HUGE_OUTPUT),
        &json!({"output_bytes": 1000}),
        limits,
    )
    .await
    .unwrap();
    assert_eq!(output_json(&r).as_str().map(str::len), Some(1000));
}

#[tokio::test]
async fn stdout_flood_is_capped_in_the_log_without_failing_the_job() {
    let sandbox = sandbox(Host::Current);
    let limits = Limits {
        log_bytes: 16 << 10,
        ..test_limits()
    };
    let r = run(
        &sandbox,
        &bytes(HUGE_OUTPUT),
        &json!({"stdout_bytes": 1 << 20, "output_bytes": 3}),
        limits,
    )
    .await
    .unwrap();
    assert_eq!(output_json(&r), json!("yyy"));
    assert_eq!(r.log.bytes, 16 << 10);
    assert_eq!(r.log.dropped_bytes, (1 << 20) - (16 << 10));
    assert!(
        r.log
            .text()
            .ends_with("[driftless: log truncated, 1032192 more bytes dropped]\n")
    );
}

#[tokio::test]
async fn cancellation_reaches_a_running_attempt() {
    let sandbox = sandbox(Host::Current);
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let limits = Limits {
        timeout_ms: 10_000,
        ..test_limits()
    };
    let started = Instant::now();
    let r = run_with(&sandbox, &bytes(SPIN_FOREVER), &json!(null), limits, cancel)
        .await
        .unwrap();
    assert_eq!(trapped(&r.outcome).0, TrapReason::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancellation took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_jobs_next_to_normal_ones_do_not_disturb_them() {
    let sandbox = std::sync::Arc::new(sandbox(Host::Current));
    let mut hostile = Vec::new();
    for path in [SPIN_FOREVER, MEMORY_BOMB, DEEP_RECURSION, SPIN_FOREVER] {
        let s = sandbox.clone();
        hostile.push(tokio::spawn(async move {
            run(&s, &bytes(path), &json!({}), test_limits())
                .await
                .unwrap()
                .outcome
        }));
    }
    for i in 0..20 {
        let r = run(
            &sandbox,
            &bytes(WORDCOUNT),
            &json!({"text": "a b a", "top": 1}),
            test_limits(),
        )
        .await
        .unwrap();
        assert_eq!(
            output_json(&r),
            json!({"words": 3, "lines": 1, "top": [["a", 2]]}),
            "run {i}"
        );
    }
    for h in hostile {
        assert!(h.await.unwrap().trap_reason().is_some());
    }
}
