//! Whether the store can write: the last write failure a backend saw that says it cannot
//! (a full disk, a read-only database), remembered until a write succeeds again, so
//! `/readyz` can report it.

use super::{StoreError, StoreResult};
use std::sync::Mutex;

/// Why the store cannot write. Nothing was changed by the write that found out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannotWrite {
    /// The disk (or the database server's disk) is full.
    #[error(
        "the disk holding the database is full ({0}), so nothing was changed: free space on it (or move the data to a larger disk), then retry"
    )]
    DiskFull(String),
    /// The database, its file or its file system is read-only (PostgreSQL: a standby in
    /// recovery, or `default_transaction_read_only`).
    #[error(
        "the database is read-only ({0}), so nothing was changed: make it writable (remount the file system, fix the file's permissions, or point --store at the primary), then retry"
    )]
    ReadOnly(String),
}

/// The last [`CannotWrite`] a backend's writes ran into, until one succeeds again.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth(Mutex<Option<CannotWrite>>);

impl WriteHealth {
    /// Note how a write ended: a [`StoreError::CannotWrite`] is remembered, a success clears
    /// it, and other refusals (conflicts, stale leases) say nothing either way.
    pub(crate) fn saw<T>(&self, result: &StoreResult<T>) {
        match result {
            Ok(_) => self.succeeded(),
            Err(StoreError::CannotWrite(why)) => self.failed(why.clone()),
            Err(_) => {}
        }
    }

    /// A write ran into `why`.
    pub(crate) fn failed(&self, why: CannotWrite) {
        *self.0.lock().expect("write health") = Some(why);
    }

    /// A write succeeded.
    pub(crate) fn succeeded(&self) {
        *self.0.lock().expect("write health") = None;
    }

    /// The remembered failure, if writes still fail.
    pub(crate) fn check(&self) -> StoreResult<()> {
        match &*self.0.lock().expect("write health") {
            Some(why) => Err(StoreError::CannotWrite(why.clone())),
            None => Ok(()),
        }
    }
}
