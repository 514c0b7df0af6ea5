//! The `driftless:kv` backend over the store: what attempts read is the committed kv data.

use super::{Store, StoreError};
use crate::host::{KvBackend, KvBackendError, KvValue};
use async_trait::async_trait;
use std::sync::Arc;

/// [`KvBackend`] over any [`Store`].
pub struct StoreKv(pub Arc<dyn Store>);

fn unavailable(e: StoreError) -> KvBackendError {
    KvBackendError::Unavailable(e.to_string())
}

#[async_trait]
impl KvBackend for StoreKv {
    async fn read(&self, scope: &str, bucket: &str, key: &str) -> Result<KvValue, KvBackendError> {
        self.0
            .kv_read(scope, bucket, key)
            .await
            .map_err(unavailable)
    }

    async fn keys(
        &self,
        scope: &str,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(String, u64)>, KvBackendError> {
        self.0
            .kv_keys(scope, bucket, prefix)
            .await
            .map_err(unavailable)
    }
}
