//! sandbox-probe: reports what the sandbox lets it see: its environment, its arguments, the
//! filesystem, and the versioning capability. On driftless it sees only
//! `WORKFLOW_VERSIONING=1`, no arguments, and no filesystem.
use driftless_sdk::{Error, versioning};
use serde::Serialize;

#[derive(Serialize)]
struct Seen {
    env: Vec<String>,
    args: Vec<String>,
    fs_root: String,
    fs_tmp: String,
    versioning_enabled: bool,
    versioning_level: u32,
}

fn probe(_input: serde_json::Value) -> Result<Seen, Error> {
    // The error's kind, not its text: the text is the platform's wording.
    let describe = |r: std::io::Result<std::fs::ReadDir>| match r {
        Ok(entries) => format!("readable ({} entries)", entries.count()),
        Err(e) => format!("denied: {:?}", e.kind()),
    };
    Ok(Seen {
        env: std::env::vars().map(|(k, v)| format!("{k}={v}")).collect(),
        args: std::env::args().collect(),
        fs_root: describe(std::fs::read_dir("/")),
        fs_tmp: describe(std::fs::read_dir("/tmp")),
        versioning_enabled: versioning::enabled(),
        versioning_level: versioning::level(),
    })
}

driftless_sdk::export_task!(probe);
