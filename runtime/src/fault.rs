//! fault: crash points for tests. When `DRIFTLESS_FAULT` names a point, the process aborts
//! there, as a power cut or `kill -9` would stop it between two steps. Unset (always, outside
//! tests), a point costs one cached lookup.

use std::sync::OnceLock;

/// Abort the process here if `DRIFTLESS_FAULT` is `name`.
pub fn point(name: &str) {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    let armed = FAULT.get_or_init(|| std::env::var("DRIFTLESS_FAULT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("driftless: fault injected at {name}; aborting");
        std::process::abort();
    }
}
