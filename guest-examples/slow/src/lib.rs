//! slow: prints `napping MS ms`, sleeps `ms` milliseconds (a host-side wait, not a spin), then
//! echoes `tag`. Used to hold an attempt open while a test kills or restarts the daemon, or
//! reads its live log.
use driftless_sdk::{Error, context};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    ms: u64,
    #[serde(default)]
    tag: serde_json::Value,
}

#[derive(Serialize)]
struct Output {
    tag: serde_json::Value,
    slept_ms: u64,
    attempt: u32,
}

fn nap(input: Input) -> Result<Output, Error> {
    println!("napping {} ms", input.ms);
    std::thread::sleep(std::time::Duration::from_millis(input.ms));
    Ok(Output {
        tag: input.tag,
        slept_ms: input.ms,
        attempt: context::info().attempt,
    })
}

driftless_sdk::export_task!(nap);
