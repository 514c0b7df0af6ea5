//! huge-output: writes `stdout_bytes` to stdout and returns an output of `output_bytes`. The
//! runtime caps the captured log (the job goes on; the log says it was truncated) and refuses
//! an output over the limit (reason `output-too-large`).
use driftless_sdk::Error;
use serde::Deserialize;
use std::io::Write;

#[derive(Deserialize)]
struct Input {
    #[serde(default)]
    stdout_bytes: usize,
    #[serde(default)]
    output_bytes: usize,
}

fn flood(input: Input) -> Result<String, Error> {
    let line = [b'x'; 1023];
    let mut out = std::io::stdout().lock();
    let mut written = 0;
    while written < input.stdout_bytes {
        // A write error (the host stopped reading) must not stop the job: the cap is the host's business.
        let _ = out.write_all(&line).and_then(|_| out.write_all(b"\n"));
        written += 1024;
    }
    let _ = out.flush();
    Ok("y".repeat(input.output_bytes))
}

driftless_sdk::export_task!(flood);
