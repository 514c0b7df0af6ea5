//! kv-v2: a counter built against kv 2.0 (byte values in named buckets). Runs only on hosts
//! that provide kv 2.x; a kv 1.x-only host rejects it at admission with "upgrade the runtime".
use driftless_sdk::{Error, kv};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    key: String,
    #[serde(default = "default_bucket")]
    bucket: String,
}

fn default_bucket() -> String {
    "counters".into()
}

#[derive(Serialize)]
struct Output {
    key: String,
    bucket: String,
    count: i64,
    kv: &'static str,
}

fn bump(input: Input) -> Result<Output, Error> {
    let count = kv::v2::increment(&input.bucket, &input.key, 1)?;
    let stored = kv::v2::get(&input.bucket, &input.key)?.unwrap_or_default();
    if stored != count.to_string().into_bytes() {
        return Err(Error::fatal(
            "inconsistent",
            "the stored counter does not match the increment",
        ));
    }
    Ok(Output {
        key: input.key,
        bucket: input.bucket,
        count,
        kv: "2.x",
    })
}

driftless_sdk::export_task!(bump);
