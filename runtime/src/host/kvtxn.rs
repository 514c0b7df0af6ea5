//! An attempt's view of the kv store. Reads see the committed values plus the attempt's own
//! writes; writes are buffered, never sent while the job runs. What the attempt read is
//! recorded with the versions it saw, so its writes can commit with its success only if
//! nothing it read has changed since (the store checks, in the transaction that records the
//! success). A lost, failed, cancelled, interrupted or fenced-out attempt leaves no trace.

use super::services::{KvBackend, KvBackendError};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

/// A kv value as the store holds it: the bytes (`None`: absent) and the key's version, which
/// grows with every committed write of the key (0: never written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvValue {
    /// The value, if the key is present.
    pub value: Option<Vec<u8>>,
    /// The key's version.
    pub version: u64,
}

/// What an attempt observed of the kv store, checked when its effects commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvObserved {
    /// One key, at a version (0: never written).
    Key {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The version read.
        version: u64,
    },
    /// The keys under a prefix, with their versions, in byte order.
    Keys {
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
        /// The keys present and their versions.
        seen: Vec<(String, u64)>,
    },
}

/// A kv write an attempt makes, applied when it commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvWrite {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The new value (`None`: delete the key).
    pub value: Option<Vec<u8>>,
}

/// An attempt's kv effects: in the job's kv scope, what it read and what it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvEffects {
    /// The job's kv scope.
    pub scope: String,
    /// What it read, in order.
    pub reads: Vec<KvObserved>,
    /// What it writes: the last write of each key, in key order.
    pub writes: Vec<KvWrite>,
}

impl KvEffects {
    /// Whether the attempt touched the kv store at all.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty() && self.writes.is_empty()
    }
}

#[derive(Default)]
struct Buffer {
    reads: Vec<KvObserved>,
    read_keys: HashSet<(String, String)>,
    writes: BTreeMap<(String, String), Option<Vec<u8>>>,
}

/// One attempt's kv transaction over a [`KvBackend`].
pub struct KvTxn {
    backend: Arc<dyn KvBackend>,
    scope: String,
    buffer: Mutex<Buffer>,
}

impl KvTxn {
    /// A transaction in `scope` (the job's task, or the job itself).
    pub fn new(backend: Arc<dyn KvBackend>, scope: &str) -> KvTxn {
        KvTxn {
            backend,
            scope: scope.to_string(),
            buffer: Mutex::default(),
        }
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().expect("kv buffer")
    }

    /// The value under the key: the attempt's own write, else the committed value (recorded).
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvBackendError> {
        let id = (bucket.to_string(), key.to_string());
        if let Some(written) = self.buffer().writes.get(&id) {
            return Ok(written.clone());
        }
        let read = self.backend.read(&self.scope, bucket, key).await?;
        let mut b = self.buffer();
        if b.read_keys.insert(id) {
            b.reads.push(KvObserved::Key {
                bucket: bucket.to_string(),
                key: key.to_string(),
                version: read.version,
            });
        }
        Ok(read.value)
    }

    /// Replace the value (at commit).
    pub fn set(&self, bucket: &str, key: &str, value: &[u8]) {
        self.buffer()
            .writes
            .insert((bucket.to_string(), key.to_string()), Some(value.to_vec()));
    }

    /// Remove the key (at commit); whether it is present now.
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<bool, KvBackendError> {
        let existed = self.get(bucket, key).await?.is_some();
        self.buffer()
            .writes
            .insert((bucket.to_string(), key.to_string()), None);
        Ok(existed)
    }

    /// Keys with the prefix, in byte order: the committed ones (recorded) with the attempt's
    /// own writes and deletions applied.
    pub async fn list_keys(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<String>, KvBackendError> {
        let seen = self.backend.keys(&self.scope, bucket, prefix).await?;
        let mut b = self.buffer();
        let mut keys: std::collections::BTreeSet<String> =
            seen.iter().map(|(k, _)| k.clone()).collect();
        for ((wb, wk), value) in &b.writes {
            if wb == bucket && wk.starts_with(prefix) {
                match value {
                    Some(_) => keys.insert(wk.clone()),
                    None => keys.remove(wk),
                };
            }
        }
        b.reads.push(KvObserved::Keys {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            seen,
        });
        Ok(keys.into_iter().collect())
    }

    /// Add `delta` to the decimal integer under the key (missing = 0) and return it. Atomic
    /// from the job's point of view: it commits only if the value it read is still current.
    pub async fn increment(
        &self,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvBackendError> {
        let current = self.get(bucket, key).await?;
        let next = super::services::add_to_counter(key, current.as_deref(), delta)?;
        self.set(bucket, key, next.to_string().as_bytes());
        Ok(next)
    }

    /// What the attempt read and writes, for the store to commit with its success.
    pub fn effects(&self) -> KvEffects {
        let b = self.buffer();
        KvEffects {
            scope: self.scope.clone(),
            reads: b.reads.clone(),
            writes: b
                .writes
                .iter()
                .map(|((bucket, key), value)| KvWrite {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::MemoryKv;

    #[tokio::test]
    async fn reads_see_own_writes_and_record_what_they_saw() {
        let kv = Arc::new(MemoryKv::default());
        kv.commit(&KvEffects {
            scope: "s".into(),
            reads: vec![],
            writes: vec![KvWrite {
                bucket: "b".into(),
                key: "a".into(),
                value: Some(b"1".to_vec()),
            }],
        });
        let txn = KvTxn::new(kv, "s");
        assert_eq!(txn.increment("b", "a", 2).await.unwrap(), 3);
        assert_eq!(txn.get("b", "a").await.unwrap().as_deref(), Some(&b"3"[..]));
        txn.set("b", "c", b"x");
        assert!(txn.delete("b", "a").await.unwrap());
        assert_eq!(txn.list_keys("b", "").await.unwrap(), ["c"]);
        let fx = txn.effects();
        assert_eq!(
            fx.reads[0],
            KvObserved::Key {
                bucket: "b".into(),
                key: "a".into(),
                version: 1
            }
        );
        assert_eq!(fx.writes.len(), 2);
        assert_eq!(
            fx.writes[0].value, None,
            "the delete of `a` is the last write of it"
        );
    }
}
