//! engine: one wasmtime `Engine` per process (pooling allocator, epoch interruption), the
//! compile cache, per-attempt limits, and running one attempt.
//!
//! [`Engine`] owns what is process-wide; a [`Sandbox`] binds it to one catalog (a node's host
//! modules): it judges component bytes ([`Judged`]), builds an accepted one into a
//! [`Prepared`] job (compiled and linked), then runs attempts of it.

mod attempt;
pub mod cache;
pub mod compile_pool;
pub mod limits;
pub mod outcome;
mod sandbox;

pub use attempt::CancelToken;
pub use cache::{CacheStats, hash_hex};
pub use compile_pool::{CompileConfig, CompilePool, PoolError, PoolStats, WhenBusy};
pub use limits::Limits;
pub use outcome::{AttemptResult, Outcome, TrapReason};
pub use sandbox::{AttemptRequest, Judged, PrepareError, Prepared, Ready, Sandbox};

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the epoch advances: the granularity of timeouts, cancellation and yielding.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Process-wide engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where compiled artifacts are kept across restarts; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// The most bytes of artifacts kept in `cache_dir` (least recently used out first).
    pub cache_max_bytes: u64,
    /// Attempts that may be instantiated at once (pooling allocator slots).
    pub max_instances: u32,
    /// The most memory any attempt may be allowed (per linear memory), in bytes.
    pub max_memory_bytes: u64,
    /// The wasm stack per attempt, in bytes.
    pub max_wasm_stack: usize,
    /// The compile pool (inspection and compilation off the async runtime).
    pub compile: CompileConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cache_dir: None,
            cache_max_bytes: 1 << 30,
            max_instances: 128,
            max_memory_bytes: 1 << 30,
            max_wasm_stack: 1 << 20,
            compile: CompileConfig::default(),
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the configuration (or could not reserve the pool).
    #[error(
        "the WebAssembly engine could not start: {0}. Lower --max-instances or the memory cap, or check the process's virtual memory limit (ulimit -v)"
    )]
    Config(String),
    /// The compile cache could not be opened.
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    /// The compile pool's threads could not start.
    #[error("the compile pool could not start its threads: {0}")]
    Pool(std::io::Error),
}

/// The process-wide engine: compiler, instance pool, epoch ticker, compile cache and compile
/// pool.
pub struct Engine {
    wasmtime: wasmtime::Engine,
    cache: cache::CompileCache,
    pool: CompilePool,
    config: EngineConfig,
}

impl Engine {
    /// Start an engine (and its epoch ticker thread, which stops when the engine is dropped).
    pub fn new(config: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        let n = config.max_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 4)
            .total_stacks(n)
            .max_core_instances_per_component(8)
            .max_memories_per_component(2)
            .max_tables_per_component(4)
            .max_memory_size(config.max_memory_bytes as usize)
            .table_elements(200_000)
            .max_component_instance_size(1 << 20)
            // Reset up to the first MiB of a memory (and 64 KiB of a table) with memset when a
            // slot is reused, instead of madvise: short jobs touch little memory, and madvise
            // costs a TLB shootdown on every core per attempt. Decommits are batched for the
            // rest. Where the kernel has PAGEMAP_SCAN (Linux 6.7+), only the pages the attempt
            // dirtied are reset, not the whole first MiB.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .decommit_batch_size(8);
        let mut wc = wasmtime::Config::new();
        wc.epoch_interruption(true)
            .allocation_strategy(pool)
            .max_wasm_stack(config.max_wasm_stack)
            .async_stack_size(config.max_wasm_stack + (1 << 20))
            .wasm_component_model(true);
        let wasmtime =
            wasmtime::Engine::new(&wc).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let cache = cache::CompileCache::new(
            &wasmtime,
            config.cache_dir.as_deref(),
            config.cache_max_bytes,
        )?;
        let pool = CompilePool::new(config.compile.clone()).map_err(EngineError::Pool)?;
        let engine = Arc::new(Engine {
            wasmtime,
            cache,
            pool,
            config,
        });
        spawn_ticker(Arc::downgrade(&engine));
        Ok(engine)
    }

    /// The underlying wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.wasmtime
    }

    /// The settings it started with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Compile-cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The pool that inspects and compiles components off the async runtime.
    pub fn compile_pool(&self) -> &CompilePool {
        &self.pool
    }

    pub(crate) fn cache(&self) -> &cache::CompileCache {
        &self.cache
    }
}

fn spawn_ticker(engine: Weak<Engine>) {
    std::thread::Builder::new()
        .name("driftless-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.wasmtime.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
}
