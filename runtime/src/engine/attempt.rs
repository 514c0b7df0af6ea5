//! One attempt: a fresh store with its limits, WASI sandbox and host state; instantiate,
//! call `run`, classify how it ended.

use super::limits::{AttemptLimiter, LimitHit, Limits};
use super::outcome::{AttemptResult, Outcome, TrapReason};
use super::sandbox::{AttemptRequest, Prepared};
use crate::host::joblog::Source;
use crate::host::{HostState, JobLog, MissingImport, ServiceError, versioning};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::Notify;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Cancels a running attempt: the job stops at its next epoch check (within milliseconds),
/// or at once if it is waiting on the host.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<(AtomicBool, Notify)>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// Cancel.
    pub fn cancel(&self) {
        self.0.0.store(true, Ordering::SeqCst);
        self.0.1.notify_waiters();
    }
    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.0.load(Ordering::SeqCst)
    }
    async fn cancelled(&self) {
        loop {
            let notified = self.0.1.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Timeout,
    Cancelled,
}

/// Everything one store holds.
pub(crate) struct StoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) host: HostState,
    limiter: AttemptLimiter,
    deadline: Instant,
    cancel: CancelToken,
    stop: Option<Stop>,
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The `HostState` of a store, for the linker's host getters.
pub(crate) fn host_of(data: &mut StoreData) -> &mut HostState {
    &mut data.host
}

pub(crate) async fn run(
    prepared: &Prepared,
    request: AttemptRequest,
    host: HostState,
) -> AttemptResult {
    let started = Instant::now();
    let log = host.log.clone();
    let limits = request.limits;
    let mut store = new_store(prepared, &request, host, &log);
    let mut instantiate = None;
    let call = async {
        let instance = prepared.pre.instantiate_async(&mut store).await?;
        instantiate = Some(started.elapsed());
        instance.call_run(&mut store, &request.input).await
    };
    // The epoch callback stops a spinning job; this outer guard also stops one that waits on
    // the host past its deadline, or is cancelled while waiting.
    let guard = limits.timeout() + super::EPOCH_TICK * 4;
    let result = tokio::select! {
        r = call => Some(r),
        _ = tokio::time::sleep(guard) => None,
        _ = request.cancel.cancelled() => None,
    };
    let outcome = match result {
        Some(Ok(Ok(output))) if output.len() as u64 > limits.output_bytes => Outcome::Trapped {
            reason: TrapReason::OutputTooLarge,
            message: format!(
                "the job returned {} bytes of output; the limit is {} bytes. Return less (store bulk results in kv), or ask for a larger output limit",
                output.len(),
                limits.output_bytes
            ),
        },
        Some(Ok(Ok(output))) => Outcome::Succeeded { output },
        Some(Ok(Err(e))) => Outcome::Failed {
            code: e.code,
            message: e.message,
            retryable: e.retryable,
        },
        Some(Err(e)) => classify(&e, store.data(), &limits),
        None if request.cancel.is_cancelled() => cancelled(),
        None => timed_out(&limits),
    };
    let duration = started.elapsed();
    AttemptResult {
        outcome,
        log: log.contents(),
        duration,
        instantiate: instantiate.unwrap_or(duration),
        kv: store.data().host.kv.effects(),
    }
}

fn new_store(
    prepared: &Prepared,
    request: &AttemptRequest,
    host: HostState,
    log: &JobLog,
) -> Store<StoreData> {
    let mut wasi = WasiCtx::builder();
    wasi.env(versioning::ENV.0, versioning::ENV.1)
        .stdout(log.stream(Source::Stdout))
        .stderr(log.stream(Source::Stderr));
    let data = StoreData {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        host,
        limiter: AttemptLimiter::new(request.limits),
        deadline: Instant::now() + request.limits.timeout(),
        cancel: request.cancel.clone(),
        stop: None,
    };
    let mut store = Store::new(prepared.engine.wasmtime(), data);
    store.limiter(|d| &mut d.limiter);
    // The most the job may hand the host in one call, its output included: an output past it
    // is refused while wasmtime lifts it, before the host allocates a copy.
    store.set_hostcall_fuel(request.limits.hostcall_bytes());
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        let data = ctx.data_mut();
        if data.cancel.is_cancelled() {
            data.stop = Some(Stop::Cancelled);
            return Ok(UpdateDeadline::Interrupt);
        }
        if Instant::now() >= data.deadline {
            data.stop = Some(Stop::Timeout);
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

fn cancelled() -> Outcome {
    Outcome::Trapped {
        reason: TrapReason::Cancelled,
        message: "the attempt was cancelled while it ran".into(),
    }
}

fn timed_out(limits: &Limits) -> Outcome {
    Outcome::Trapped {
        reason: TrapReason::Timeout,
        message: format!(
            "the attempt ran past its {} ms time limit and was stopped. If the job needs longer, submit it with a larger timeout; if it should not, look for a loop that never ends",
            limits.timeout_ms
        ),
    }
}

/// Whether wasmtime refused to copy more data from the job to the host than the store's
/// hostcall fuel allows (its error type is private; its message is stable).
fn is_hostcall_fuel(e: &wasmtime::Error) -> bool {
    format!("{e:#}").contains("fuel allocated for hostcalls has been exhausted")
}

fn classify(e: &wasmtime::Error, data: &StoreData, limits: &Limits) -> Outcome {
    match data.stop {
        Some(Stop::Timeout) => return timed_out(limits),
        Some(Stop::Cancelled) => return cancelled(),
        None => {}
    }
    let trapped = |reason, message: String| Outcome::Trapped { reason, message };
    if let Some(hit) = e.downcast_ref::<LimitHit>().or(data.limiter.hit.as_ref()) {
        return trapped(
            TrapReason::MemoryLimit,
            format!(
                "{hit}. The attempt was stopped; submit the job with a larger memory limit if it really needs more"
            ),
        );
    }
    if let Some(missing) = e.downcast_ref::<MissingImport>() {
        return trapped(TrapReason::MissingImport, missing.to_string());
    }
    if let Some(service) = e.downcast_ref::<ServiceError>() {
        return trapped(
            TrapReason::HostError,
            format!("a host service failed: {service}"),
        );
    }
    let detail = e.downcast_ref::<wasmtime::WasmBacktrace>().map(|bt| {
        let frames: Vec<String> = bt
            .to_string()
            .lines()
            .take(12)
            .map(str::to_string)
            .collect();
        format!("\n{}", frames.join("\n"))
    });
    let detail = detail.unwrap_or_default();
    match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => trapped(
            TrapReason::StackOverflow,
            "the job exhausted its stack (endless or very deep recursion) and was stopped; make the recursion iterative or bounded".into(),
        ),
        Some(Trap::Interrupt) => timed_out(limits),
        Some(trap) => trapped(TrapReason::WasmTrap, format!("the job trapped: {trap}. It is a bug in the job (a panic, or an invalid operation).{detail}")),
        None if detail.contains("concurrent limit") || detail.contains("resource limit exceeded") => trapped(
            TrapReason::ResourceLimit,
            format!("the attempt could not be instantiated within its limits: {e:#}. Another attempt may succeed when the node is less busy"),
        ),
        None if detail.is_empty() && is_hostcall_fuel(e) => trapped(
            TrapReason::OutputTooLarge,
            format!(
                "the job returned more than {} bytes of output (the runtime stopped reading it there); the limit is {} bytes. Return less (store bulk results in kv), or ask for a larger output limit",
                limits.hostcall_bytes(),
                limits.output_bytes
            ),
        ),
        None if is_hostcall_fuel(e) => trapped(
            TrapReason::ResourceLimit,
            format!("the job passed more than {} bytes to a host function in one call, and was stopped; pass less at a time.{detail}", limits.hostcall_bytes()),
        ),
        None => trapped(TrapReason::HostError, format!("the attempt failed in the host: {e:#}")),
    }
}
