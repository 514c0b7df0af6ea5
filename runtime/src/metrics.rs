//! Counters and a histogram for `GET /metrics` (Prometheus text format).

use crate::engine::{CacheStats, Outcome, PoolStats};
use crate::store::{JobStatus, StoreStats};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the attempt-duration histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];

/// A stage of a job's way through a node, timed for the per-stage breakdown
/// (`driftless_stage_seconds_total`, read by the load bench).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Submission: the component looked up by hash and judged (or taken from the cache).
    Admission,
    /// Submission: the job's durable insert.
    Insert,
    /// From the job's creation (before its insert) to its claim: at low load, the insert, the
    /// wake-up and the claim (in milliseconds of the store's clock).
    Queued,
    /// An agent's claim when it had no attempt in hand (otherwise the claim rides on the
    /// previous attempt's finish).
    Claim,
    /// The claimed job's component found prepared (or prepared) on this node.
    Prepare,
    /// A fresh store and instance of the component.
    Instantiate,
    /// The job's `run`, to its end.
    Run,
    /// The attempt's end recorded (with the agent's next claim in the same transaction).
    Finish,
}

impl Stage {
    /// Every stage, in the order a job meets them.
    pub const ALL: [Stage; 8] = [
        Stage::Admission,
        Stage::Insert,
        Stage::Queued,
        Stage::Claim,
        Stage::Prepare,
        Stage::Instantiate,
        Stage::Run,
        Stage::Finish,
    ];

    /// Its label in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Admission => "admission",
            Stage::Insert => "insert",
            Stage::Queued => "queued",
            Stage::Claim => "claim",
            Stage::Prepare => "prepare",
            Stage::Instantiate => "instantiate",
            Stage::Run => "run",
            Stage::Finish => "finish",
        }
    }
}

/// The node's counters.
#[derive(Default)]
pub struct Metrics {
    /// Per stage: nanoseconds spent, and how many times.
    stages: [(AtomicU64, AtomicU64); Stage::ALL.len()],
    submitted: AtomicU64,
    rejected: AtomicU64,
    schedule_fired: AtomicU64,
    schedule_skipped: AtomicU64,
    finished: Mutex<BTreeMap<&'static str, u64>>,
    attempts: Mutex<BTreeMap<String, u64>>,
    duration: Mutex<([u64; BUCKETS.len()], u64, f64)>,
    jobs_expired: AtomicU64,
    blobs_expired: AtomicU64,
    blob_bytes_expired: AtomicU64,
    bytes_reclaimed: AtomicU64,
}

impl Metrics {
    /// A job was accepted.
    pub fn job_submitted(&self) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
    }

    /// A submission was refused by the version check or as invalid.
    pub fn job_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// A schedule's tick fired here, after skipping `skipped` missed ones.
    pub fn schedule_fired(&self, skipped: u64) {
        self.schedule_fired.fetch_add(1, Ordering::Relaxed);
        self.schedule_skipped.fetch_add(skipped, Ordering::Relaxed);
    }

    /// A job reached a terminal status on this node.
    pub fn job_finished(&self, status: JobStatus) {
        *self
            .finished
            .lock()
            .expect("metrics")
            .entry(status.as_str())
            .or_default() += 1;
    }

    /// Retention deleted `jobs` finished jobs.
    pub fn jobs_expired(&self, jobs: u64) {
        self.jobs_expired.fetch_add(jobs, Ordering::Relaxed);
    }

    /// Retention deleted `blobs` components of `bytes` bytes in all.
    pub fn blobs_expired(&self, blobs: u64, bytes: u64) {
        self.blobs_expired.fetch_add(blobs, Ordering::Relaxed);
        self.blob_bytes_expired.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The store gave `bytes` back to the file system (SQLite's incremental vacuum).
    pub fn bytes_reclaimed(&self, bytes: u64) {
        self.bytes_reclaimed.fetch_add(bytes, Ordering::Relaxed);
    }

    /// One pass through `stage` took `took`.
    pub fn stage(&self, stage: Stage, took: Duration) {
        let (nanos, count) = &self.stages[stage as usize];
        nanos.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt ended.
    pub fn attempt_finished(&self, outcome: &Outcome, took: Duration) {
        let label = match outcome {
            Outcome::Succeeded { .. } => "succeeded".to_string(),
            Outcome::Failed { .. } => "failed".to_string(),
            Outcome::Trapped { reason, .. } => serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        *self
            .attempts
            .lock()
            .expect("metrics")
            .entry(label)
            .or_default() += 1;
        let secs = took.as_secs_f64();
        let mut h = self.duration.lock().expect("metrics");
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.0[i] += 1;
            }
        }
        h.1 += 1;
        h.2 += secs;
    }

    /// The Prometheus text exposition.
    pub fn render(&self, stats: &StoreStats, cache: CacheStats, compile: PoolStats) -> String {
        let mut out = String::new();
        let queued = stats
            .jobs
            .iter()
            .find(|(s, _)| *s == JobStatus::Queued)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(
            out,
            "# HELP driftless_queue_depth Jobs waiting for an agent.\n# TYPE driftless_queue_depth gauge\ndriftless_queue_depth {queued}"
        );
        let _ = writeln!(
            out,
            "# HELP driftless_queue Queued jobs by what they wait for: an agent (ready), their time (delayed), a slot of their concurrency key (parked).\n# TYPE driftless_queue gauge"
        );
        for (state, n) in &stats.queue {
            let _ = writeln!(out, "driftless_queue{{state=\"{state}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP driftless_jobs Jobs in the store by status.\n# TYPE driftless_jobs gauge"
        );
        for (s, n) in &stats.jobs {
            let _ = writeln!(out, "driftless_jobs{{status=\"{}\"}} {n}", s.as_str());
        }
        let _ = writeln!(
            out,
            "# HELP driftless_jobs_submitted_total Jobs accepted by this node.\n# TYPE driftless_jobs_submitted_total counter\ndriftless_jobs_submitted_total {}",
            self.submitted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP driftless_jobs_rejected_total Submissions refused (version check or invalid component).\n# TYPE driftless_jobs_rejected_total counter\ndriftless_jobs_rejected_total {}",
            self.rejected.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP driftless_schedule_ticks_fired_total Schedule ticks this node fired (each made a job).\n# TYPE driftless_schedule_ticks_fired_total counter\ndriftless_schedule_ticks_fired_total {}",
            self.schedule_fired.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP driftless_schedule_ticks_skipped_total Missed schedule ticks skipped by this node's firings (ticks more than a minute late).\n# TYPE driftless_schedule_ticks_skipped_total counter\ndriftless_schedule_ticks_skipped_total {}",
            self.schedule_skipped.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP driftless_jobs_finished_total Jobs finished on this node by outcome.\n# TYPE driftless_jobs_finished_total counter"
        );
        for (s, n) in self.finished.lock().expect("metrics").iter() {
            let _ = writeln!(out, "driftless_jobs_finished_total{{outcome=\"{s}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP driftless_attempts_total Attempts run on this node by outcome.\n# TYPE driftless_attempts_total counter"
        );
        for (s, n) in self.attempts.lock().expect("metrics").iter() {
            let _ = writeln!(out, "driftless_attempts_total{{outcome=\"{s}\"}} {n}");
        }
        let h = self.duration.lock().expect("metrics");
        let _ = writeln!(
            out,
            "# HELP driftless_attempt_duration_seconds Wall-clock time of attempts.\n# TYPE driftless_attempt_duration_seconds histogram"
        );
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "driftless_attempt_duration_seconds_bucket{{le=\"{le}\"}} {}",
                h.0[i]
            );
        }
        let _ = writeln!(
            out,
            "driftless_attempt_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            h.1
        );
        let _ = writeln!(
            out,
            "driftless_attempt_duration_seconds_sum {}\ndriftless_attempt_duration_seconds_count {}",
            h.2, h.1
        );
        let _ = writeln!(
            out,
            "# HELP driftless_compile_cache_total Compile-cache lookups by result.\n# TYPE driftless_compile_cache_total counter"
        );
        let _ = writeln!(
            out,
            "driftless_compile_cache_total{{result=\"memory-hit\"}} {}",
            cache.memory_hits
        );
        let _ = writeln!(
            out,
            "driftless_compile_cache_total{{result=\"disk-hit\"}} {}",
            cache.disk_hits
        );
        let _ = writeln!(
            out,
            "driftless_compile_cache_total{{result=\"compiled\"}} {}",
            cache.compiles
        );
        let _ = writeln!(
            out,
            "# HELP driftless_compile_cache_evictions_total Compiled artifacts removed from the disk cache to keep it under --compile-cache-bytes.\n# TYPE driftless_compile_cache_evictions_total counter\ndriftless_compile_cache_evictions_total {}",
            cache.evictions
        );
        let _ = writeln!(
            out,
            "# HELP driftless_compile_cache_evicted_bytes_total Bytes of compiled artifacts removed from the disk cache.\n# TYPE driftless_compile_cache_evicted_bytes_total counter\ndriftless_compile_cache_evicted_bytes_total {}",
            cache.evicted_bytes
        );
        let _ = writeln!(
            out,
            "# HELP driftless_retention_jobs_deleted_total Finished jobs this node deleted after --retention, with their attempts, events, logs and output.\n# TYPE driftless_retention_jobs_deleted_total counter\ndriftless_retention_jobs_deleted_total {}",
            self.jobs_expired.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP driftless_retention_components_deleted_total Components no job or task version referenced, deleted by this node after --retention.\n# TYPE driftless_retention_components_deleted_total counter\ndriftless_retention_components_deleted_total {}",
            self.blobs_expired.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP driftless_retention_component_bytes_deleted_total Bytes of the components this node deleted.\n# TYPE driftless_retention_component_bytes_deleted_total counter\ndriftless_retention_component_bytes_deleted_total {}",
            self.blob_bytes_expired.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP driftless_retention_reclaimed_bytes_total Bytes of the database file given back to the file system (SQLite's incremental vacuum; 0 on PostgreSQL, which reuses freed space).\n# TYPE driftless_retention_reclaimed_bytes_total counter\ndriftless_retention_reclaimed_bytes_total {}",
            self.bytes_reclaimed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP driftless_compile_queue_depth Components waiting for a compile worker.\n# TYPE driftless_compile_queue_depth gauge\ndriftless_compile_queue_depth {}",
            compile.queued
        );
        let _ = writeln!(
            out,
            "# HELP driftless_compiles_running Components being inspected or compiled now.\n# TYPE driftless_compiles_running gauge\ndriftless_compiles_running {}",
            compile.running
        );
        let _ = writeln!(
            out,
            "# HELP driftless_compiles_refused_total Uploads refused (503 compile-busy) because the compile queue was full.\n# TYPE driftless_compiles_refused_total counter\ndriftless_compiles_refused_total {}",
            compile.refused
        );
        let _ = writeln!(
            out,
            "# HELP driftless_compile_timeouts_total Requests answered compile-timeout (the compile went on).\n# TYPE driftless_compile_timeouts_total counter\ndriftless_compile_timeouts_total {}",
            compile.timed_out
        );
        let _ = writeln!(
            out,
            "# HELP driftless_stage_seconds_total Wall-clock time spent in each stage of jobs' way through this node.\n# TYPE driftless_stage_seconds_total counter"
        );
        for stage in Stage::ALL {
            let nanos = self.stages[stage as usize].0.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "driftless_stage_seconds_total{{stage=\"{}\"}} {}",
                stage.as_str(),
                nanos as f64 / 1e9
            );
        }
        let _ = writeln!(
            out,
            "# HELP driftless_stage_total Passes through each stage on this node.\n# TYPE driftless_stage_total counter"
        );
        for stage in Stage::ALL {
            let count = self.stages[stage as usize].1.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "driftless_stage_total{{stage=\"{}\"}} {count}",
                stage.as_str()
            );
        }
        out
    }
}
