//! The driftless test harness: the guest examples (built by `build.rs`), a shared engine, and
//! helpers to prepare and run jobs through the real host against a chosen catalog.

use driftless::compat::Catalog;
use driftless::engine::{
    AttemptRequest, AttemptResult, CancelToken, Engine, EngineConfig, Limits, PrepareError, Sandbox,
};
use driftless::host::{JobInfo, JobLog, MemoryKv, MemoryServices};
use std::sync::{Arc, OnceLock};

/// Paths of the built guest examples, and `foreach_example!`.
pub mod examples {
    include!(concat!(env!("OUT_DIR"), "/examples.rs"));
}

/// The catalogs the drift matrix runs every example against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// Everything this build provides (kv 1.0, 1.1 and 2.0).
    Current,
    /// An older host: kv 1.0 only.
    Kv10,
    /// kv 1.1 only.
    Kv11,
    /// A newer host that dropped kv 1.x: kv 2.0 only.
    Kv2,
}

impl Host {
    /// Every catalog in the matrix.
    pub const ALL: [Host; 4] = [Host::Current, Host::Kv10, Host::Kv11, Host::Kv2];

    /// The `--provide` list for this host.
    pub fn provides(self) -> &'static [&'static str] {
        match self {
            Host::Current => &[],
            Host::Kv10 => &["driftless:kv@1.0.0"],
            Host::Kv11 => &["driftless:kv@1.1.0"],
            Host::Kv2 => &["driftless:kv@2.0.0"],
        }
    }

    /// The catalog.
    pub fn catalog(self) -> Catalog {
        Catalog::with_provides(self.provides()).expect("the matrix catalogs exist")
    }
}

/// One engine per test process (memory cache only), as the daemon has one per process.
pub fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            Engine::new(EngineConfig {
                max_instances: 32,
                ..EngineConfig::default()
            })
            .expect("engine starts")
        })
        .clone()
}

/// A sandbox for `host` with a fresh in-memory kv store.
pub fn sandbox(host: Host) -> TestSandbox {
    sandbox_on(engine(), host.catalog())
}

/// A sandbox of `engine` serving `catalog`, over a fresh in-memory kv store.
pub fn sandbox_on(engine: Arc<driftless::engine::Engine>, catalog: Catalog) -> TestSandbox {
    let kv = Arc::new(MemoryKv::default());
    let sandbox = Sandbox::new(engine, catalog, kv.clone()).expect("sandbox links");
    TestSandbox { sandbox, kv }
}

/// A sandbox over an in-memory kv store that [`run`] commits each succeeded attempt's kv
/// writes to, as the daemon's store does with the attempt's result.
pub struct TestSandbox {
    sandbox: Sandbox,
    kv: Arc<MemoryKv>,
}

impl std::ops::Deref for TestSandbox {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

/// The bytes of a built example.
pub fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Limits for tests: the defaults with a short timeout, so hostile jobs end quickly.
pub fn test_limits() -> Limits {
    Limits {
        timeout_ms: 500,
        memory_bytes: 32 << 20,
        ..Limits::default()
    }
}

/// Prepare `bytes` on `sandbox` and run one attempt with `input` (JSON).
pub async fn run(
    sandbox: &TestSandbox,
    bytes: &[u8],
    input: &serde_json::Value,
    limits: Limits,
) -> Result<AttemptResult, PrepareError> {
    run_with(sandbox, bytes, input, limits, CancelToken::new()).await
}

/// As [`run`], with a cancel token.
pub async fn run_with(
    sandbox: &TestSandbox,
    bytes: &[u8],
    input: &serde_json::Value,
    limits: Limits,
    cancel: CancelToken,
) -> Result<AttemptResult, PrepareError> {
    let prepared = sandbox.prepare(bytes)?;
    let request = AttemptRequest {
        input: serde_json::to_vec(input).expect("JSON encodes"),
        job: JobInfo::one_off("test-job", "test-scope"),
        limits,
        services: Arc::new(MemoryServices::default()),
        cancel,
        log: JobLog::new(limits.log_bytes as usize),
    };
    let result = sandbox.run(&prepared, request).await;
    if matches!(result.outcome, driftless::engine::Outcome::Succeeded { .. }) {
        sandbox.kv.commit(&result.kv);
    }
    Ok(result)
}

/// The output of a succeeded attempt as JSON, or a panic that shows the outcome and log.
pub fn output_json(result: &AttemptResult) -> serde_json::Value {
    match &result.outcome {
        driftless::engine::Outcome::Succeeded { output } => {
            serde_json::from_slice(output).expect("output is JSON")
        }
        other => panic!(
            "expected success, got {other:?}\nlog:\n{}",
            result.log.text()
        ),
    }
}

pub mod browser;
pub mod daemon;
pub mod drift;
pub mod fuzz;
pub mod poll;
pub mod postgres;
pub mod stores;
