//! memory-bomb: allocates (and touches) memory until something stops it. The runtime's
//! per-attempt memory limit must end the attempt (reason `memory-limit`).
use driftless_sdk::Error;

fn bomb(_input: serde_json::Value) -> Result<serde_json::Value, Error> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![0xA5; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

driftless_sdk::export_task!(bomb);
