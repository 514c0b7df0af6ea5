//! Instantiate + run `hello`: driftless's engine against raw wasmtime with the same engine
//! configuration, side by side in one run.
//!
//! `cargo bench -p driftless-runtime --bench instantiate` measures one attempt of the `hello`
//! example (echo its JSON input, log one line) two ways on one `wasmtime::Engine` (driftless's:
//! pooling allocator, epoch interruption, component model):
//! - `driftless`: [`Sandbox::run`] of a [`Prepared`](driftless::engine::Prepared) job, as an
//!   agent runs it: a fresh store with its limits, WASI context wired to the job log, host state,
//!   kv transaction, epoch deadline callback, instantiate from the `InstancePre`, call `run`,
//!   classify the outcome;
//! - `raw-wasmtime`: the least a host must do for the same component: a store with a minimal
//!   WASI context, the job's one host function (`driftless:job/context.log`) as a no-op,
//!   instantiate from an `InstancePre`, call `run`.
//!
//! It then prints both medians and their ratio (the target is at most 1.2×).

use criterion::Criterion;
use driftless::compat::Catalog;
use driftless::engine::{
    AttemptRequest, CancelToken, Engine, EngineConfig, Limits, Outcome, Prepared, Sandbox,
};
use driftless::host::{JobInfo, JobLog, MemoryKv, MemoryServices};
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{Component, ComponentType, InstancePre, Lift, Linker, ResourceTable};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const INPUT: &[u8] = br#"{"greeting":"hello","n":1}"#;
const GROUP: &str = "instantiate-run-hello";

/// The state of a raw store: WASI and its resource table, nothing else.
struct Raw {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// `driftless:job/types.job-error`, for the typed call of `run`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
struct JobError {
    #[allow(dead_code)]
    code: String,
    #[allow(dead_code)]
    message: String,
    #[allow(dead_code)]
    retryable: bool,
}

/// A raw-wasmtime host for `hello` on `engine`.
fn raw_pre(engine: &wasmtime::Engine, bytes: &[u8]) -> InstancePre<Raw> {
    let component = Component::new(engine, bytes).expect("hello compiles");
    let mut linker = Linker::<Raw>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI links");
    linker
        .instance("driftless:job/context@1.0.0")
        .expect("context instance")
        .func_new("log", |_, _, _, _| Ok(()))
        .expect("log links");
    linker.instantiate_pre(&component).expect("hello links")
}

/// One raw attempt: store, instantiate, call `run`.
async fn raw_attempt(engine: &wasmtime::Engine, pre: &InstancePre<Raw>) -> Vec<u8> {
    let raw = Raw {
        wasi: WasiCtx::builder().build(),
        table: ResourceTable::new(),
    };
    let mut store = Store::new(engine, raw);
    // The engine interrupts on epochs (as driftless's does); give the call a deadline that
    // yields, as a host with timeouts must.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    let instance = pre
        .instantiate_async(&mut store)
        .await
        .expect("instantiate");
    let run = instance
        .get_typed_func::<(&[u8],), (Result<Vec<u8>, JobError>,)>(&mut store, "run")
        .expect("run export");
    let (output,) = run
        .call_async(&mut store, (INPUT,))
        .await
        .expect("run returns");
    output.expect("hello succeeds")
}

/// One driftless attempt, as an agent runs it.
async fn driftless_attempt(sandbox: &Sandbox, prepared: &Prepared) -> Vec<u8> {
    let request = AttemptRequest {
        input: INPUT.to_vec(),
        job: JobInfo::one_off("bench-job", "bench"),
        limits: Limits::default(),
        services: Arc::new(MemoryServices::default()),
        cancel: CancelToken::new(),
        log: JobLog::new(Limits::default().log_bytes as usize),
    };
    match sandbox.run(prepared, request).await.outcome {
        Outcome::Succeeded { output } => output,
        other => panic!("hello did not succeed: {other:?}"),
    }
}

/// The median of a finished benchmark, from criterion's estimates file, in nanoseconds.
fn median_ns(target: &Path, name: &str) -> Option<f64> {
    let path = target.join(format!("criterion/{GROUP}/{name}/new/estimates.json"));
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn main() {
    let hello = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-examples/target/wasm32-wasip2/release/hello.wasm");
    let bytes = std::fs::read(&hello).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); build the guest examples first: `cargo test -p driftless-tests --no-run` builds them",
            hello.display()
        )
    });
    let engine = Engine::new(EngineConfig::default()).expect("engine starts");
    let sandbox = Sandbox::new(
        engine.clone(),
        Catalog::full(),
        Arc::new(MemoryKv::default()),
    )
    .expect("sandbox links");
    let prepared = sandbox.prepare(&bytes).expect("hello is accepted");
    let pre = raw_pre(engine.wasmtime(), &bytes);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Both paths give the same answer before either is timed.
    let a = runtime.block_on(driftless_attempt(&sandbox, &prepared));
    let b = runtime.block_on(raw_attempt(engine.wasmtime(), &pre));
    assert_eq!(
        a, b,
        "driftless and raw wasmtime disagree on hello's output"
    );

    let mut criterion = Criterion::default().configure_from_args();
    {
        let mut group = criterion.benchmark_group(GROUP);
        group.bench_function("driftless", |b| {
            b.to_async(&runtime)
                .iter(|| driftless_attempt(&sandbox, &prepared))
        });
        group.bench_function("raw-wasmtime", |b| {
            b.to_async(&runtime)
                .iter(|| raw_attempt(engine.wasmtime(), &pre))
        });
        group.finish();
    }
    criterion.final_summary();

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    match (
        median_ns(&target, "driftless"),
        median_ns(&target, "raw-wasmtime"),
    ) {
        (Some(ours), Some(raw)) => println!(
            "\ninstantiate + run hello, medians: driftless {:.1} µs, raw wasmtime {:.1} µs, ratio {:.2}× (target ≤ 1.20×)",
            ours / 1e3,
            raw / 1e3,
            ours / raw
        ),
        _ => println!("\n(no medians to compare: run without a filter to measure both)"),
    }
}
