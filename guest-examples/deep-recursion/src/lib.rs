//! deep-recursion: recurses without end. The runtime's stack limit must end the attempt
//! (reason `stack-overflow`).
use driftless_sdk::Error;

#[inline(never)]
#[allow(unconditional_recursion)]
fn descend(depth: u64, pad: [u64; 16]) -> u64 {
    let pad = std::hint::black_box(pad);
    std::hint::black_box(descend(depth + 1, pad)) + pad[(depth % 16) as usize]
}

fn recurse(_input: serde_json::Value) -> Result<serde_json::Value, Error> {
    Ok(serde_json::json!(descend(0, [1; 16])))
}

driftless_sdk::export_task!(recurse);
