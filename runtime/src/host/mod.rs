//! host: the modules this runtime provides to jobs (one file per WIT package), their wiring
//! into a linker for the versions a node's catalog ([`crate::compat::Catalog`]) provides,
//! and the services they call out to.

pub mod bindings;
pub mod context;
pub mod error;
pub mod joblog;
pub mod kv;
pub mod kvtxn;
pub mod linker;
pub mod services;
pub mod state;
pub mod versioning;

pub use error::{MissingImport, ServiceError};
pub use joblog::{JobLog, LogContents};
pub use kvtxn::{KvEffects, KvObserved, KvTxn, KvValue, KvWrite};
pub use services::{AttemptServices, KvBackend, KvBackendError, MemoryKv, MemoryServices};
pub use state::{DeclaredImport, HostState, JobInfo};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::Catalog;

    #[test]
    fn every_catalog_module_has_an_implementation() {
        let mut implemented: Vec<&str> = linker::implementations::<HostState>()
            .iter()
            .map(|(id, _)| *id)
            .collect();
        implemented.sort();
        assert_eq!(Catalog::full().driftless_ids(), implemented);
    }
}
