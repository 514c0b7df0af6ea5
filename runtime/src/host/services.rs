//! What host modules need from the outside world, behind small traits: the kv backend, and the
//! per-attempt services of `context` (progress, checkpoints). In-memory implementations here;
//! the daemon plugs in its durable store.

use super::error::ServiceError;
use super::kvtxn::{KvEffects, KvValue};
use async_trait::async_trait;
use driftless_rules::kv::Refused;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Why a kv backend call failed (validation happens before the backend is called).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KvBackendError {
    /// The stored value is not an integer (for `increment`).
    #[error("{}", Refused::NotANumber(.0.clone()))]
    NotANumber(String),
    /// Incrementing would overflow a signed 64-bit integer.
    #[error("{}", Refused::Overflow(.0.clone()))]
    Overflow(String),
    /// The backend is unreachable or failed; a later attempt may succeed.
    #[error("the kv store is unavailable ({0}); the attempt can be retried")]
    Unavailable(String),
}

/// The committed kv data every version of `driftless:kv` reads, addressed by (scope, bucket,
/// key); the scope is the job's task (or the job itself). Attempts only read through it: their
/// writes are buffered in a [`KvTxn`](super::kvtxn::KvTxn) and commit with their success.
#[async_trait]
pub trait KvBackend: Send + Sync {
    /// The value under the key, with its version.
    async fn read(&self, scope: &str, bucket: &str, key: &str) -> Result<KvValue, KvBackendError>;
    /// The keys present under the prefix, with their versions, in byte order.
    async fn keys(
        &self,
        scope: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(String, u64)>, KvBackendError>;
}

/// Per-attempt services behind `driftless:job/context`. Every call may be refused (for the
/// daemon: when the attempt's lease was lost), which ends the attempt.
#[async_trait]
pub trait AttemptServices: Send + Sync {
    /// Record progress.
    async fn progress(&self, percent: u8, message: &str) -> Result<(), ServiceError>;
    /// Save the job's checkpoint.
    async fn checkpoint_save(&self, data: &[u8]) -> Result<(), ServiceError>;
    /// The job's last checkpoint.
    async fn checkpoint_load(&self) -> Result<Option<Vec<u8>>, ServiceError>;
}

/// An in-memory kv store (the CLI's `run`, and tests).
#[derive(Default)]
pub struct MemoryKv {
    data: Mutex<BTreeMap<(String, String, String), KvValue>>,
}

impl MemoryKv {
    /// Apply an attempt's writes (its reads are not checked: one attempt at a time).
    pub fn commit(&self, fx: &KvEffects) {
        let mut data = self.data.lock().expect("kv lock");
        for w in &fx.writes {
            let entry = data.entry(k(&fx.scope, &w.bucket, &w.key)).or_default();
            entry.value = w.value.clone();
            entry.version += 1;
        }
    }
}

fn k(scope: &str, bucket: &str, key: &str) -> (String, String, String) {
    (scope.to_string(), bucket.to_string(), key.to_string())
}

/// Parse a stored counter and add `delta` (the rule the SDK's test host shares).
pub fn add_to_counter(
    key: &str,
    current: Option<&[u8]>,
    delta: i64,
) -> Result<i64, KvBackendError> {
    driftless_rules::kv::add_to_counter(key, current, delta).map_err(|e| match e {
        Refused::Overflow(key) => KvBackendError::Overflow(key),
        _ => KvBackendError::NotANumber(key.to_string()),
    })
}

#[async_trait]
impl KvBackend for MemoryKv {
    async fn read(&self, scope: &str, bucket: &str, key: &str) -> Result<KvValue, KvBackendError> {
        let data = self.data.lock().expect("kv lock");
        Ok(data
            .get(&k(scope, bucket, key))
            .cloned()
            .unwrap_or_default())
    }

    async fn keys(
        &self,
        scope: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(String, u64)>, KvBackendError> {
        let data = self.data.lock().expect("kv lock");
        Ok(data
            .range(k(scope, bucket, prefix)..)
            .take_while(|((s, b, key), _)| s == scope && b == bucket && key.starts_with(prefix))
            .filter(|(_, v)| v.value.is_some())
            .map(|((_, _, key), v)| (key.clone(), v.version))
            .collect())
    }
}

/// In-memory attempt services for one job: its checkpoint and its last progress.
#[derive(Default)]
pub struct MemoryServices {
    checkpoint: Mutex<Option<Vec<u8>>>,
    progress: Mutex<Option<(u8, String)>>,
}

impl MemoryServices {
    /// The last progress reported.
    pub fn last_progress(&self) -> Option<(u8, String)> {
        self.progress.lock().expect("lock").clone()
    }
}

#[async_trait]
impl AttemptServices for MemoryServices {
    async fn progress(&self, percent: u8, message: &str) -> Result<(), ServiceError> {
        *self.progress.lock().expect("lock") = Some((percent, message.to_string()));
        Ok(())
    }
    async fn checkpoint_save(&self, data: &[u8]) -> Result<(), ServiceError> {
        *self.checkpoint.lock().expect("lock") = Some(data.to_vec());
        Ok(())
    }
    async fn checkpoint_load(&self) -> Result<Option<Vec<u8>>, ServiceError> {
        Ok(self.checkpoint.lock().expect("lock").clone())
    }
}
