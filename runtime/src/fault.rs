//! fault: crash points, clock skew and a full disk for tests. When `DRIFTLESS_FAULT` names a
//! point, the process aborts there, as a power cut or `kill -9` would stop it between two
//! steps; `DRIFTLESS_CLOCK_OFFSET_MS` shifts this process's clock; while the file
//! `DRIFTLESS_FAULT_DISK_FULL` names exists, the SQLite store acts as on a full disk. Unset
//! (always, outside tests), each costs one cached lookup.

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

/// How far `DRIFTLESS_CLOCK_OFFSET_MS` shifts this process's clock (milliseconds, may be
/// negative; 0 when unset): a test runs a node whose clock is skewed, as a machine's may be.
pub fn clock_offset_ms() -> i64 {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("DRIFTLESS_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// Whether a test says the disk is full: while the file `DRIFTLESS_FAULT_DISK_FULL` names
/// exists, the SQLite writer refuses every write as SQLite does on a full disk and the store
/// reports that it cannot write. For tests that cannot mount a small file system to fill.
pub fn disk_full() -> bool {
    static FLAG: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    FLAG.get_or_init(|| std::env::var_os("DRIFTLESS_FAULT_DISK_FULL").map(Into::into))
        .as_ref()
        .is_some_and(|flag| flag.exists())
}
