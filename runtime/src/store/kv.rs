//! The `driftless:kv` backend over the store: kv data is as durable as jobs.

use super::{Store, StoreError};
use crate::host::{KvBackend, KvBackendError};
use async_trait::async_trait;
use std::sync::Arc;

/// [`KvBackend`] over any [`Store`].
pub struct StoreKv(pub Arc<dyn Store>);

fn unavailable(e: StoreError) -> KvBackendError {
    KvBackendError::Unavailable(e.to_string())
}

#[async_trait]
impl KvBackend for StoreKv {
    async fn get(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, KvBackendError> {
        self.0.kv_get(scope, bucket, key).await.map_err(unavailable)
    }
    async fn set(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), KvBackendError> {
        self.0
            .kv_set(scope, bucket, key, value)
            .await
            .map_err(unavailable)
    }
    async fn delete(&self, scope: &str, bucket: &str, key: &str) -> Result<bool, KvBackendError> {
        self.0
            .kv_delete(scope, bucket, key)
            .await
            .map_err(unavailable)
    }
    async fn list_keys(
        &self,
        scope: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<String>, KvBackendError> {
        self.0
            .kv_list(scope, bucket, prefix)
            .await
            .map_err(unavailable)
    }
    async fn increment(
        &self,
        scope: &str,
        bucket: &str,
        key: &str,
        delta: i64,
    ) -> Result<i64, KvBackendError> {
        self.0
            .kv_increment(scope, bucket, key, delta)
            .await
            .map_err(unavailable)?
    }
}
