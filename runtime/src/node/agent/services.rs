//! `context`'s progress and checkpoints, written to the store fenced by the attempt's lease.

use crate::host::{AttemptServices, ServiceError};
use crate::store::Store;
use async_trait::async_trait;
use std::sync::Arc;

/// Attempt services for one leased attempt.
pub struct LeasedServices {
    store: Arc<dyn Store>,
    token: String,
    job_id: String,
}

impl LeasedServices {
    /// Services for the attempt holding `token` on `job_id`.
    pub fn new(store: Arc<dyn Store>, token: String, job_id: String) -> Self {
        LeasedServices {
            store,
            token,
            job_id,
        }
    }
}

fn refused(e: crate::store::StoreError) -> ServiceError {
    ServiceError(e.to_string())
}

#[async_trait]
impl AttemptServices for LeasedServices {
    async fn progress(&self, percent: u8, message: &str) -> Result<(), ServiceError> {
        self.store
            .set_progress(&self.token, percent, message)
            .await
            .map_err(refused)
    }
    async fn checkpoint_save(&self, data: &[u8]) -> Result<(), ServiceError> {
        self.store
            .save_checkpoint(&self.token, data)
            .await
            .map_err(refused)
    }
    async fn checkpoint_load(&self) -> Result<Option<Vec<u8>>, ServiceError> {
        self.store
            .load_checkpoint(&self.job_id)
            .await
            .map_err(refused)
    }
}
