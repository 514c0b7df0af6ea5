//! The rules the driftless host and the SDK's test host share, so a job tested natively meets
//! the same limits, the same counter arithmetic and the same version rule as in production:
//! [`version`] (which versions are interchangeable) and [`kv`] (key and value limits, counters).
//! The runtime and the SDK both depend on this crate; neither approximates it.

pub mod kv;
pub mod version;
