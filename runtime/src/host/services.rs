//! What host modules need from the outside world, behind small traits: the kv backend, and the
//! per-attempt services of `context` (progress, checkpoints). In-memory implementations here;
//! the daemon plugs in its durable store.

use super::error::ServiceError;
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

/// A kv store shared by every version of `driftless:kv`. Keys are addressed by
/// (scope, bucket, key); the scope is the job's task (or the job itself).
#[async_trait]
pub trait KvBackend: Send + Sync {
    /// The value under the key.
    async fn get(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, KvBackendError>;
    /// Replace the value under the key.
    async fn set(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), KvBackendError>;
    /// Remove the key; true if it existed.
    async fn delete(&self, scope: &str, bucket: &str, key: &str) -> Result<bool, KvBackendError>;
    /// Keys with the prefix, in byte order.
    async fn list_keys(
        &self,
        scope: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<String>, KvBackendError>;
    /// Atomically add `delta` to the decimal integer under the key (missing = 0).
    async fn increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvBackendError>;
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
    data: Mutex<BTreeMap<(String, String, String), Vec<u8>>>,
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
    async fn get(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, KvBackendError> {
        Ok(self
            .data
            .lock()
            .expect("kv lock")
            .get(&k(scope, bucket, key))
            .cloned())
    }
    async fn set(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), KvBackendError> {
        self.data
            .lock()
            .expect("kv lock")
            .insert(k(scope, bucket, key), value.to_vec());
        Ok(())
    }
    async fn delete(&self, scope: &str, bucket: &str, key: &str) -> Result<bool, KvBackendError> {
        Ok(self
            .data
            .lock()
            .expect("kv lock")
            .remove(&k(scope, bucket, key))
            .is_some())
    }
    async fn list_keys(
        &self,
        scope: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<String>, KvBackendError> {
        let data = self.data.lock().expect("kv lock");
        Ok(data
            .range(k(scope, bucket, prefix)..)
            .take_while(|((s, b, key), _)| s == scope && b == bucket && key.starts_with(prefix))
            .map(|((_, _, key), _)| key.clone())
            .collect())
    }
    async fn increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvBackendError> {
        let mut data = self.data.lock().expect("kv lock");
        let entry = k(scope, bucket, key);
        let next = add_to_counter(key, data.get(&entry).map(Vec::as_slice), delta)?;
        data.insert(entry, next.to_string().into_bytes());
        Ok(next)
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
