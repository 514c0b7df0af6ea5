//! driftless: a runtime for job code shipped as WebAssembly components.
//!
//! The flow (DESIGN.md): a component's imports are judged against this host's catalog
//! ([`compat`]), its host modules are implemented in [`host`], and [`engine`] compiles it once
//! and runs attempts under limits.

pub mod agent;
pub mod api;
pub mod cluster;
pub mod compat;
pub mod daemon;
pub mod engine;
pub mod fault;
pub mod host;
pub mod identity;
pub mod lifecycle;
pub mod listener;
pub mod metrics;
pub mod node;
pub mod store;
pub mod tasks;
