//! Which versions are interchangeable: wasmtime's linker rule, shared with the SDK's test host
//! (see `driftless_rules::version`, which holds it and its table test).

pub use driftless_rules::version::{Class, serves};
