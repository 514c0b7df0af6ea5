//! A sandbox: the engine bound to one catalog. It turns component bytes into a [`Prepared`]
//! job (inspected, judged, compiled, linked) and runs attempts of it.

use super::Engine;
use super::attempt::{self, CancelToken, StoreData};
use super::cache::hash_hex;
use super::compile_pool::{PoolError, WhenBusy};
use super::limits::Limits;
use super::outcome::AttemptResult;
use crate::compat::{self, Catalog, CompatReport, InspectError, Inspection, Requirements, Verdict};
use crate::host::bindings::Host_Pre;
use crate::host::{
    AttemptServices, DeclaredImport, HostState, JobInfo, JobLog, KvBackend, KvTxn, linker,
};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::Linker;

/// Why component bytes cannot become a runnable job on this sandbox.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Not a driftless component (not wasm, a core module, truncated, no `run`).
    #[error(transparent)]
    Invalid(#[from] InspectError),
    /// The versioning rules reject its imports against this catalog.
    #[error("{0}")]
    Rejected(Box<CompatReport>),
    /// wasmtime could not compile it (or it exceeds the engine's per-component caps).
    #[error("the component was accepted but does not compile on this runtime: {0}")]
    Compile(String),
    /// The real linker refused what the rules accepted.
    #[error(
        "the component's imports passed the version check but the linker refused them: {message}. This is a driftless bug worth reporting, with the component"
    )]
    Link {
        /// The report the rules produced.
        report: Box<CompatReport>,
        /// The linker's message.
        message: String,
    },
    /// The compile pool refused the work (busy) or did not finish it in time.
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl PrepareError {
    /// The compat report, where one applies.
    pub fn report(&self) -> Option<&CompatReport> {
        match self {
            PrepareError::Rejected(r) | PrepareError::Link { report: r, .. } => Some(r),
            _ => None,
        }
    }
}

/// A job component ready to run on one sandbox.
pub struct Prepared {
    pub(crate) engine: Arc<Engine>,
    /// blake3 of the component bytes, hex.
    pub hash: String,
    /// What was read from the component.
    pub inspection: Inspection,
    /// The verdict against the sandbox's catalog (accepted or degraded).
    pub report: CompatReport,
    /// The report as compact JSON, serialized once (every job admitted with it stores it).
    pub report_json: Arc<str>,
    /// What the job needs from a host, as its compatibility class.
    pub requirements: Requirements,
    pub(crate) declared: Arc<Vec<DeclaredImport>>,
    pub(crate) pre: Host_Pre<StoreData>,
}

/// A component read and judged once against a sandbox's catalog: what admission decides on,
/// and what [`Sandbox::build`] compiles when the verdict allows it.
#[derive(Debug, Clone)]
pub struct Judged {
    /// blake3 of the component bytes, hex.
    pub hash: String,
    /// What was read from the component (with the extra optional imports).
    pub inspection: Inspection,
    /// What the job needs from a host, as its compatibility class.
    pub requirements: Requirements,
    /// The verdict against the sandbox's catalog.
    pub report: CompatReport,
}

/// A component judged (and, when its verdict allows, built) on the compile pool.
pub enum Ready {
    /// Accepted or degraded here: compiled and linked.
    Prepared(Arc<Prepared>),
    /// This sandbox's catalog rejects it (another node's may not).
    Rejected(Box<Judged>),
}

/// What one attempt needs besides the component.
pub struct AttemptRequest {
    /// The input bytes passed to `run`.
    pub input: Vec<u8>,
    /// Which job and attempt.
    pub job: JobInfo,
    /// The limits (memory is capped at the engine's maximum).
    pub limits: Limits,
    /// Progress and checkpoints.
    pub services: Arc<dyn AttemptServices>,
    /// Cancels the attempt.
    pub cancel: CancelToken,
    /// Where the attempt's stdout, stderr and `context.log` lines go; its owner can read it
    /// while the attempt runs (a live log). Make it with the job's `log_bytes` limit as its cap.
    pub log: JobLog,
}

/// The engine bound to one catalog, with the kv backend its modules use.
pub struct Sandbox {
    engine: Arc<Engine>,
    catalog: Arc<Catalog>,
    linker: Linker<StoreData>,
    kv: Arc<dyn KvBackend>,
    prepared: Mutex<Bounded<Arc<Prepared>>>,
    /// How many components this sandbox inspected (admission's tests count them).
    #[cfg(test)]
    pub(crate) inspections: std::sync::atomic::AtomicUsize,
}

impl Sandbox {
    /// Link WASI (no preopens, no sockets, no inherited environment) and every driftless
    /// module `catalog` provides.
    pub fn new(
        engine: Arc<Engine>,
        catalog: Catalog,
        kv: Arc<dyn KvBackend>,
    ) -> wasmtime::Result<Sandbox> {
        let mut linker = Linker::new(engine.wasmtime());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        linker::add_catalog(&mut linker, &catalog, attempt::host_of)?;
        Ok(Sandbox {
            engine,
            catalog: Arc::new(catalog),
            linker,
            kv,
            prepared: Mutex::default(),
            #[cfg(test)]
            inspections: Default::default(),
        })
    }

    /// The catalog this sandbox provides.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Read `bytes` (whose [`hash_hex`] is `hash`) once and judge its imports against this
    /// sandbox's catalog, without compiling (dry-run admission). `extra_optional` adds
    /// optional imports declared at submission to those the component declares itself.
    pub fn judge(
        &self,
        hash: &str,
        bytes: &[u8],
        extra_optional: &[String],
    ) -> Result<Judged, InspectError> {
        #[cfg(test)]
        self.inspections
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut inspection = compat::inspect(bytes)?;
        for o in extra_optional {
            if !inspection.optional.contains(o) {
                inspection.optional.push(o.clone());
            }
        }
        let report = compat::rules::judge(&inspection.imports, &inspection.optional, &self.catalog);
        Ok(Judged {
            hash: hash.to_string(),
            requirements: Requirements::of(&inspection),
            inspection,
            report,
        })
    }

    /// Inspect, judge, compile (cached by hash) and link; the result is cached by hash.
    pub fn prepare(&self, bytes: &[u8]) -> Result<Arc<Prepared>, PrepareError> {
        self.prepare_with(bytes, &[])
    }

    /// As [`prepare`](Self::prepare), with optional imports declared at submission on top of
    /// those the component declares itself.
    pub fn prepare_with(
        &self,
        bytes: &[u8],
        extra_optional: &[String],
    ) -> Result<Arc<Prepared>, PrepareError> {
        let hash = hash_hex(bytes);
        if let Some(p) = self.cached(&hash, extra_optional) {
            return Ok(p);
        }
        let judged = self.judge(&hash, bytes, extra_optional)?;
        self.build(bytes, judged, extra_optional)
    }

    /// Compile (cached by hash) and link a component [`judge`](Self::judge)d with the same
    /// `extra_optional`; the result is cached by hash. A rejected verdict is refused here too.
    pub fn build(
        &self,
        bytes: &[u8],
        judged: Judged,
        extra_optional: &[String],
    ) -> Result<Arc<Prepared>, PrepareError> {
        let Judged {
            hash,
            inspection,
            requirements,
            report,
        } = judged;
        if report.verdict == Verdict::Rejected {
            return Err(PrepareError::Rejected(Box::new(report)));
        }
        let component = self
            .engine
            .cache()
            .get_or_compile(self.engine.wasmtime(), &hash, bytes)
            .map_err(|e| PrepareError::Compile(e.to_string()))?;
        let link_error = |e: wasmtime::Error| PrepareError::Link {
            report: Box::new(report.clone()),
            message: format!("{e:#}"),
        };
        let instance_pre = if report.verdict == Verdict::Degraded {
            let mut linker = self.linker.clone();
            linker::add_optional_stubs(&mut linker, &report).map_err(link_error)?;
            linker.instantiate_pre(&component)
        } else {
            self.linker.instantiate_pre(&component)
        }
        .map_err(link_error)?;
        let pre = Host_Pre::new(instance_pre).map_err(link_error)?;
        let declared = report
            .imports
            .iter()
            .map(|i| DeclaredImport {
                name: i.import.split('@').next().unwrap_or(&i.import).to_string(),
                version: i.version.clone(),
                optional: i.optional,
                missing_functions: i.missing_functions.clone(),
            })
            .collect();
        let prepared = Arc::new(Prepared {
            engine: self.engine.clone(),
            hash: hash.clone(),
            requirements,
            inspection,
            report_json: serde_json::to_string(&report)
                .expect("a report serializes")
                .into(),
            report,
            declared: Arc::new(declared),
            pre,
        });
        self.prepared
            .lock()
            .expect("prepared lock")
            .insert(cache_key(&hash, extra_optional), prepared.clone());
        Ok(prepared)
    }

    /// Judge `bytes` (whose [`hash_hex`] is `hash`) and, when the verdict allows, compile and
    /// link them, in one trip to the engine's compile pool (never on the caller's thread);
    /// a component prepared before is answered from the cache without the pool.
    pub async fn judge_and_build(
        self: &Arc<Self>,
        when: WhenBusy,
        hash: &str,
        bytes: Bytes,
        extra_optional: &[String],
    ) -> Result<Ready, PrepareError> {
        if let Some(p) = self.cached(hash, extra_optional) {
            return Ok(Ready::Prepared(p));
        }
        let (sandbox, hash, optional) = (self.clone(), hash.to_string(), extra_optional.to_vec());
        self.engine
            .compile_pool()
            .run(when, move || {
                let judged = sandbox.judge(&hash, &bytes, &optional)?;
                if judged.report.verdict == Verdict::Rejected {
                    return Ok(Ready::Rejected(Box::new(judged)));
                }
                sandbox
                    .build(&bytes, judged, &optional)
                    .map(Ready::Prepared)
            })
            .await?
    }

    /// [`judge`](Self::judge) on the engine's compile pool (refused when it is full).
    pub async fn judge_pooled(self: &Arc<Self>, bytes: Bytes) -> Result<Judged, PrepareError> {
        let sandbox = self.clone();
        let judged = self
            .engine
            .compile_pool()
            .run(WhenBusy::Refuse, move || {
                sandbox.judge(&hash_hex(&bytes), &bytes, &[])
            })
            .await?;
        Ok(judged?)
    }

    /// A component this sandbox prepared before, by hash (with the same extra optional
    /// imports), without its bytes: its verdict against this catalog still holds.
    pub fn cached(&self, hash: &str, extra_optional: &[String]) -> Option<Arc<Prepared>> {
        self.prepared
            .lock()
            .expect("prepared lock")
            .get(&cache_key(hash, extra_optional))
    }

    /// Forget what was prepared from component `hash` (retention deleted it from the store),
    /// so a submission naming it is looked up in the store again, which no longer has it.
    pub fn forget(&self, hash: &str) {
        let extra = format!("{hash}+");
        self.prepared
            .lock()
            .expect("prepared lock")
            .remove_where(|key| key == hash || key.starts_with(&extra));
    }

    /// Run one attempt of a prepared job.
    pub async fn run(&self, prepared: &Prepared, mut request: AttemptRequest) -> AttemptResult {
        request.limits.memory_bytes = request
            .limits
            .memory_bytes
            .min(self.engine.config().max_memory_bytes);
        let host = HostState {
            job: request.job.clone(),
            catalog: self.catalog.clone(),
            declared: prepared.declared.clone(),
            kv: KvTxn::new(self.kv.clone(), &request.job.kv_scope),
            services: request.services.clone(),
            log: request.log.clone(),
        };
        attempt::run(prepared, request, host).await
    }
}

/// The prepared-cache key: the hash, plus the extra optional imports when there are any.
fn cache_key(hash: &str, extra_optional: &[String]) -> String {
    if extra_optional.is_empty() {
        hash.to_string()
    } else {
        format!("{hash}+{}", extra_optional.join(","))
    }
}

/// Prepared components kept for reuse; past this many, the oldest-inserted is dropped (it is
/// prepared again from the compile cache or the store when next needed).
const PREPARED_ENTRIES: usize = 512;

/// A map that keeps at most `PREPARED_ENTRIES` values, dropping the oldest-inserted first.
struct Bounded<V> {
    entries: HashMap<String, V>,
    order: std::collections::VecDeque<String>,
    cap: usize,
}

impl<V> Default for Bounded<V> {
    fn default() -> Self {
        Bounded {
            entries: HashMap::new(),
            order: Default::default(),
            cap: PREPARED_ENTRIES,
        }
    }
}

impl<V: Clone> Bounded<V> {
    fn get(&self, key: &str) -> Option<V> {
        self.entries.get(key).cloned()
    }

    fn remove_where(&mut self, drop: impl Fn(&str) -> bool) {
        self.entries.retain(|key, _| !drop(key));
        self.order.retain(|key| !drop(key));
    }

    fn insert(&mut self, key: String, value: V) {
        if self.entries.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bounded;

    #[test]
    fn the_prepared_cache_drops_the_oldest_past_its_bound() {
        let mut cache = Bounded::<u32> {
            cap: 2,
            ..Default::default()
        };
        cache.insert("a".into(), 1);
        cache.insert("b".into(), 2);
        cache.insert("a".into(), 3);
        assert_eq!((cache.get("a"), cache.get("b")), (Some(3), Some(2)));
        cache.insert("c".into(), 4);
        assert_eq!(
            (cache.get("a"), cache.get("b"), cache.get("c")),
            (None, Some(2), Some(4))
        );
    }
}
