//! Per-attempt limits, and the resource limiter that enforces the memory and table ones.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What one attempt may use. Every field has a default; a job may ask for less or (up to
/// the node's caps) more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory, in bytes, per memory.
    pub memory_bytes: u64,
    /// Wall-clock time for the attempt, in milliseconds.
    pub timeout_ms: u64,
    /// Captured stdout + stderr + context log, in bytes; the rest is dropped and counted.
    pub log_bytes: u64,
    /// Largest output `run` may return, in bytes.
    pub output_bytes: u64,
    /// Core and component instances.
    pub instances: u32,
    /// Tables.
    pub tables: u32,
    /// Linear memories.
    pub memories: u32,
    /// Elements per table.
    pub table_elements: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 << 20,
            timeout_ms: 30_000,
            log_bytes: 1 << 20,
            output_bytes: 1 << 20,
            instances: 16,
            tables: 16,
            memories: 4,
            table_elements: 100_000,
        }
    }
}

/// The least a job may hand the host in one call (a kv value or a checkpoint is at most
/// 1 MiB; the rest is keys and framing).
const MIN_HOSTCALL_BYTES: u64 = 4 << 20;

impl Limits {
    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The most the job may hand the host in one call, its output included (wasmtime's
    /// hostcall fuel): four times the output limit, at least 4 MiB. An output between the
    /// output limit and this is read and refused with its size; a bigger one is refused while
    /// it is read, before the host allocates a copy of it.
    pub fn hostcall_bytes(&self) -> usize {
        usize::try_from(self.output_bytes.saturating_mul(4).max(MIN_HOSTCALL_BYTES))
            .unwrap_or(usize::MAX)
    }
}

/// Which limit an attempt ran into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    /// Memory growth past `memory_bytes`.
    #[error("the job tried to grow its memory to {desired} bytes; the limit is {limit} bytes")]
    Memory {
        /// Bytes asked for.
        desired: u64,
        /// The limit.
        limit: u64,
    },
    /// Table growth past `table_elements`.
    #[error("the job tried to grow a table to {desired} elements; the limit is {limit}")]
    Table {
        /// Elements asked for.
        desired: u64,
        /// The limit.
        limit: u64,
    },
}

/// Enforces [`Limits`] on one store; remembers what was hit so the outcome can say so.
pub struct AttemptLimiter {
    limits: Limits,
    /// The limit that ended the attempt, if any.
    pub hit: Option<LimitHit>,
}

impl AttemptLimiter {
    /// A limiter for `limits`.
    pub fn new(limits: Limits) -> Self {
        AttemptLimiter { limits, hit: None }
    }
}

impl wasmtime::ResourceLimiter for AttemptLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limits.memory_bytes {
            let hit = LimitHit::Memory {
                desired: desired as u64,
                limit: self.limits.memory_bytes,
            };
            self.hit = Some(hit.clone());
            return Err(wasmtime::Error::new(hit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > u64::from(self.limits.table_elements) {
            let hit = LimitHit::Table {
                desired: desired as u64,
                limit: u64::from(self.limits.table_elements),
            };
            self.hit = Some(hit.clone());
            return Err(wasmtime::Error::new(hit));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances as usize
    }

    fn tables(&self) -> usize {
        self.limits.tables as usize
    }

    fn memories(&self) -> usize {
        self.limits.memories as usize
    }
}
