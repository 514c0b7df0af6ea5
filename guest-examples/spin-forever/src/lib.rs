//! spin-forever: never returns. The runtime's wall-clock limit must end the attempt (reason
//! `timeout`) without harming anything else.
use driftless_sdk::Error;

fn spin(_input: serde_json::Value) -> Result<serde_json::Value, Error> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

driftless_sdk::export_task!(spin);
