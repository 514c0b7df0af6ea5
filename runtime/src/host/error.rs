//! Errors a host call raises to end an attempt (they become traps with a typed reason).

/// A job called a function of an optional import that this host does not provide.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error(
    "optional import not provided: the job called `{function}`, which this host does not provide ({host}); the job should check driftless:versioning before calling it"
)]
pub struct MissingImport {
    /// `driftless:kv/store@1.1.0#increment`.
    pub function: String,
    /// What the host provides of that package, e.g. `it provides driftless:kv 1.0.0`.
    pub host: String,
}

/// A host service the attempt depends on refused or failed (e.g. its lease is no longer valid).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ServiceError(pub String);
