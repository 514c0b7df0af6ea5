//! The compile pool: the CPU-heavy work on components (wasmparser inspection and Cranelift
//! compilation) runs here, never on the async runtime's threads, so a node that compiles a
//! big upload still answers `/healthz` and its other requests at once.
//!
//! The pool is a rayon thread pool of `workers` threads (default: one per core) at a lower
//! scheduling priority (nice +10 on Linux), in which wasmtime also runs its own parallel
//! compilation: a lone compile uses every worker, several share them, and the async runtime
//! keeps the CPU it needs. At most `workers + queue` pieces of work are admitted at once;
//! beyond that a request is refused at once ([`PoolError::Busy`], HTTP 503 with
//! `Retry-After`), while an agent preparing a claimed job waits for a slot instead.
//!
//! Every piece of work has a deadline (`timeout`, queue time included). Cranelift cannot be
//! interrupted, so a compile past its deadline is not stopped: its request gets
//! [`PoolError::TimedOut`] at the deadline, the compile runs to its end (holding its slot until
//! then), and its result is still cached (memory and disk), so a retry once it ended is
//! answered at once. Work whose requester gave up before it started is skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, oneshot};

/// The nice value of compile threads (Linux): the async runtime's threads (nice 0) get about
/// ten times their CPU share when both want the CPU.
const COMPILE_NICE: libc::c_int = 10;

/// The compile pool's settings (`serve --compile-workers/--compile-queue/--compile-timeout-ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileConfig {
    /// Threads that inspect and compile components (at least 1).
    pub workers: usize,
    /// Pieces of work that may wait for a worker; more are refused.
    pub queue: usize,
    /// The longest a request waits for its component's inspection and compile, queue time
    /// included.
    pub timeout: Duration,
}

impl Default for CompileConfig {
    fn default() -> Self {
        CompileConfig {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue: 4,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why work did not run, or did not finish in time, on the compile pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every worker is busy and the queue is full: nothing was done.
    #[error(
        "this node is busy compiling other components ({workers} compiling, {queue} waiting: all it takes at once); nothing was stored. Retry in {} s (Retry-After), or send it to another node",
        .retry_after.as_secs()
    )]
    Busy {
        /// The pool's workers.
        workers: usize,
        /// The pool's queue.
        queue: usize,
        /// When a slot is likely free.
        retry_after: Duration,
    },
    /// The work did not finish within the deadline. A compile goes on to its end and its
    /// result is cached.
    #[error(
        "inspecting and compiling the component took longer than {} ms (--compile-timeout-ms), so nothing was stored; the compile goes on and its result is cached, so retrying in {} s or later is answered at once. Make the component smaller (strip debug info, fewer functions) or raise --compile-timeout-ms",
        .timeout.as_millis(),
        .retry_after.as_secs()
    )]
    TimedOut {
        /// The deadline.
        timeout: Duration,
        /// When the compile is likely over.
        retry_after: Duration,
    },
    /// The work panicked (a bug in the runtime or wasmtime), or the pool stopped.
    #[error(
        "the compile pool failed while working on the component ({0}); this is a driftless bug worth reporting, with the component"
    )]
    Failed(String),
}

impl PoolError {
    /// How long a client should wait before retrying, when retrying can help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PoolError::Busy { retry_after, .. } | PoolError::TimedOut { retry_after, .. } => {
                Some(*retry_after)
            }
            PoolError::Failed(_) => None,
        }
    }
}

/// What to do when every slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    /// Refuse at once with [`PoolError::Busy`] (an HTTP request).
    Refuse,
    /// Wait for a slot (an agent preparing a job it claimed).
    Wait,
}

/// The pool's counters, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Work admitted and waiting for a worker.
    pub queued: u64,
    /// Work running now.
    pub running: u64,
    /// Requests refused because the pool was full.
    pub refused: u64,
    /// Requests answered with a timeout.
    pub timed_out: u64,
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    running: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
    /// Recent work duration (exponentially weighted), in milliseconds: the basis of
    /// `Retry-After`.
    recent_ms: AtomicU64,
}

/// A bounded pool of low-priority threads for inspection and compilation.
pub struct CompilePool {
    threads: rayon::ThreadPool,
    slots: Arc<Semaphore>,
    config: CompileConfig,
    counters: Arc<Counters>,
}

impl CompilePool {
    /// Start the pool's threads.
    pub fn new(config: CompileConfig) -> std::io::Result<CompilePool> {
        let config = CompileConfig {
            workers: config.workers.max(1),
            ..config
        };
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(config.workers)
            .thread_name(|i| format!("driftless-compile-{i}"))
            .stack_size(8 << 20)
            .start_handler(|_| lower_priority())
            .build()
            .map_err(std::io::Error::other)?;
        Ok(CompilePool {
            threads,
            slots: Arc::new(Semaphore::new(config.workers + config.queue)),
            counters: Arc::default(),
            config,
        })
    }

    /// Its settings.
    pub fn config(&self) -> &CompileConfig {
        &self.config
    }

    /// Counters since start.
    pub fn stats(&self) -> PoolStats {
        let c = &self.counters;
        PoolStats {
            queued: c.queued.load(Ordering::Relaxed),
            running: c.running.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
        }
    }

    /// Run `work` on the pool (and any parallel compilation inside it on the pool's threads),
    /// within the deadline.
    pub async fn run<T: Send + 'static>(
        &self,
        when: WhenBusy,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let permit = match when {
            WhenBusy::Refuse => self.slots.clone().try_acquire_owned().map_err(|_| {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                PoolError::Busy {
                    workers: self.config.workers,
                    queue: self.config.queue,
                    retry_after: self.retry_after(),
                }
            })?,
            WhenBusy::Wait => self
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| PoolError::Failed(e.to_string()))?,
        };
        let (tx, rx) = oneshot::channel();
        let counters = self.counters.clone();
        counters.queued.fetch_add(1, Ordering::Relaxed);
        self.threads.spawn(move || {
            counters.queued.fetch_sub(1, Ordering::Relaxed);
            if tx.is_closed() {
                // The requester gave up (its deadline passed, or it went away) before the
                // work started: skip it.
                return;
            }
            counters.running.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let took = started.elapsed().as_millis() as u64;
            let recent = counters.recent_ms.load(Ordering::Relaxed);
            counters
                .recent_ms
                .store((recent * 3 + took) / 4, Ordering::Relaxed);
            counters.running.fetch_sub(1, Ordering::Relaxed);
            // The slot is free before the answer goes out.
            drop(permit);
            let _ = tx.send(result.map_err(|panic| {
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into())
            }));
        });
        match tokio::time::timeout(self.config.timeout, rx).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(panic))) => Err(PoolError::Failed(panic)),
            Ok(Err(_)) => Err(PoolError::Failed("the pool dropped the work".into())),
            Err(_) => {
                self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                Err(PoolError::TimedOut {
                    timeout: self.config.timeout,
                    retry_after: self.retry_after(),
                })
            }
        }
    }

    /// When a slot is likely free: the recent work duration times the work ahead per worker,
    /// between 1 and 60 seconds.
    fn retry_after(&self) -> Duration {
        let recent = self.counters.recent_ms.load(Ordering::Relaxed).max(1);
        let ahead = self.counters.queued.load(Ordering::Relaxed)
            + self.counters.running.load(Ordering::Relaxed);
        let ms = recent * ahead.max(1) / self.config.workers as u64;
        Duration::from_secs(ms.div_ceil(1000).clamp(1, 60))
    }
}

/// Lower the calling thread's scheduling priority (Linux: nice +10; elsewhere unchanged).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread, with no pointers.
        let tid = unsafe { libc::gettid() } as libc::id_t;
        // SAFETY: as above; an error (not permitted) leaves the priority as it was.
        let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, COMPILE_NICE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(workers: usize, queue: usize, timeout_ms: u64) -> CompilePool {
        CompilePool::new(CompileConfig {
            workers,
            queue,
            timeout: Duration::from_millis(timeout_ms),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn work_beyond_the_queue_is_refused_and_waiting_work_is_not() {
        let pool = Arc::new(pool(1, 1, 10_000));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(std::sync::Mutex::new(hold));
        let blocking = |hold: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>| {
            move || {
                let _ = hold.lock().unwrap().recv();
                7
            }
        };
        let first = tokio::spawn({
            let (pool, hold) = (pool.clone(), hold.clone());
            async move { pool.run(WhenBusy::Refuse, blocking(hold)).await }
        });
        let second = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(WhenBusy::Refuse, || 8).await }
        });
        // Both slots are taken once the first runs and the second waits behind it.
        while pool.slots.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = pool.run(WhenBusy::Refuse, || 9).await.unwrap_err();
        assert!(
            matches!(
                refused,
                PoolError::Busy {
                    workers: 1,
                    queue: 1,
                    ..
                }
            ),
            "{refused}"
        );
        assert_eq!(refused.retry_after().map(|d| d.as_secs() >= 1), Some(true));
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(WhenBusy::Wait, || 10).await }
        });
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(7));
        assert_eq!(second.await.unwrap(), Ok(8));
        assert_eq!(waiting.await.unwrap(), Ok(10));
        assert_eq!(pool.stats().refused, 1);
    }

    #[tokio::test]
    async fn a_deadline_answers_the_request_and_the_work_still_ends() {
        let pool = pool(1, 0, 50);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let err = pool
            .run(WhenBusy::Refuse, move || {
                std::thread::sleep(Duration::from_millis(300));
                done_tx.send(()).unwrap();
            })
            .await
            .unwrap_err();
        assert!(matches!(err, PoolError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("--compile-timeout-ms"), "{err}");
        done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(pool.stats().timed_out, 1);
    }

    #[tokio::test]
    async fn a_panic_is_an_error_not_a_lost_slot() {
        let pool = pool(1, 0, 5_000);
        let err = pool
            .run(WhenBusy::Refuse, || panic!("boom"))
            .await
            .unwrap_err();
        assert_eq!(err, PoolError::Failed("boom".into()));
        assert_eq!(pool.run(WhenBusy::Refuse, || 1).await, Ok(1));
    }
}
