//! WORKFLOW_VERSIONING: ask what the host provides, and degrade on purpose
//! (`driftless:versioning/versioning@1.0.0`).
//!
//! ```no_run
//! use driftless_sdk::versioning;
//! if versioning::supports("driftless:kv", "^1.1") {
//!     // use kv 1.1's increment
//! } else {
//!     // fall back to kv 1.0's get + set
//! }
//! ```

use crate::sys;
use semver::{Version, VersionReq};

pub use crate::bindings::driftless::versioning::versioning::DeclaredImport;

/// The environment variable every job sees on a versioning-aware host.
pub const ENV_VAR: &str = "WORKFLOW_VERSIONING";

/// Whether this host is versioning-aware (`WORKFLOW_VERSIONING=1` in the job's environment).
/// When false, the other calls here answer as if the host provided nothing.
pub fn enabled() -> bool {
    sys::versioning_enabled()
}

/// The capability level the host implements (1 today), or 0 when [`enabled`] is false.
pub fn level() -> u32 {
    if enabled() {
        sys::versioning_level()
    } else {
        0
    }
}

/// Every module the host provides, as `(package, version)`.
pub fn catalog() -> Vec<(String, Version)> {
    if !enabled() {
        return Vec::new();
    }
    sys::versioning_catalog()
        .into_iter()
        .filter_map(|(name, v)| Version::parse(&v).ok().map(|v| (name, v)))
        .collect()
}

/// The versions the host provides of `package` (`"driftless:kv"`), highest first.
pub fn provided(package: &str) -> Vec<Version> {
    if !enabled() {
        return Vec::new();
    }
    let mut versions: Vec<Version> = sys::versioning_provided(package)
        .iter()
        .filter_map(|v| Version::parse(v).ok())
        .collect();
    versions.sort_by(|a, b| b.cmp(a));
    versions
}

/// The highest provided version of `package` that satisfies `requirement` (Cargo syntax:
/// `"^1.1"`, `">=1.0, <3"`). An unparsable requirement matches nothing.
pub fn find(package: &str, requirement: &str) -> Option<Version> {
    let req = VersionReq::parse(requirement).ok()?;
    provided(package).into_iter().find(|v| req.matches(v))
}

/// Whether the host provides a version of `package` that satisfies `requirement`.
pub fn supports(package: &str, requirement: &str) -> bool {
    find(package, requirement).is_some()
}

/// Whether `version` satisfies `requirement`, by Cargo's rules.
pub fn satisfies(version: &str, requirement: &str) -> Result<bool, semver::Error> {
    Ok(VersionReq::parse(requirement)?.matches(&Version::parse(version)?))
}

/// The imports the host read from this job's component, with what it lacks of each.
pub fn declared() -> Vec<DeclaredImport> {
    if !enabled() {
        return Vec::new();
    }
    sys::versioning_declared()
}
