//! driftless: a runtime for job code shipped as WebAssembly components.
//!
//! The flow (DESIGN.md): a component's imports are judged against this host's catalog
//! ([`compat`]), its host modules are implemented in [`host`], and [`engine`] compiles it once
//! and runs attempts under limits.

pub mod compat;
pub mod engine;
pub mod host;
