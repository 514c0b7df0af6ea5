//! deep-recursion: recurses (with its frames on the wasm stack, not Rust's shadow stack) until
//! the stack runs out. The runtime's stack limit must end the attempt (reason `stack-overflow`).
use driftless_sdk::Error;
use serde::Deserialize;

#[derive(Deserialize)]
struct Input {
    /// How deep to go; the default is deeper than any stack allows.
    #[serde(default = "forever")]
    depth: u64,
}

fn forever() -> u64 {
    u64::MAX
}

/// Not a tail call: the result is mixed with the arguments after the call returns, and all
/// state lives in wasm locals.
#[inline(never)]
fn descend(depth: u64, limit: u64, acc: u64) -> u64 {
    if depth >= limit {
        return acc;
    }
    descend(depth + 1, limit, acc.rotate_left(7) ^ depth).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (acc >> 3)
}

fn recurse(input: Input) -> Result<u64, Error> {
    Ok(descend(0, input.depth, 1))
}

driftless_sdk::export_task!(recurse);
