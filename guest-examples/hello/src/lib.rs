//! hello: echoes its JSON input back unchanged, and logs one line.
use driftless_sdk::{Error, context};

fn echo(input: serde_json::Value) -> Result<serde_json::Value, Error> {
    context::info_log("hello from driftless");
    Ok(input)
}

driftless_sdk::export_task!(echo);
