//! kv-counter: counts how often it ran for `{"key": "...", "hold_ms": N}`, with kv 1.0 calls only
//! (get + set), then holds the attempt open for `hold_ms` (default 0) after its write, so a test
//! can kill or cancel it between its write and its end: the write must then never count.
//! It imports `driftless:kv/store@1.1.0` (the SDK's kv 1.x level) but calls only functions that
//! exist since 1.0, so it runs on a kv 1.0 host too; a host that dropped kv 1.x rejects it.
use driftless_sdk::{Error, kv};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    key: String,
    #[serde(default)]
    hold_ms: u64,
}

#[derive(Serialize)]
struct Output {
    key: String,
    count: i64,
}

fn bump(input: Input) -> Result<Output, Error> {
    let count = match kv::v1::get(&input.key) {
        None => 0,
        Some(v) => v.parse::<i64>().map_err(|_| {
            Error::fatal(
                "corrupt-counter",
                format!("`{}` holds {v:?}, not a number", input.key),
            )
        })?,
    } + 1;
    kv::v1::set(&input.key, &count.to_string())?;
    std::thread::sleep(std::time::Duration::from_millis(input.hold_ms));
    Ok(Output {
        key: input.key,
        count,
    })
}

driftless_sdk::export_task!(bump);
