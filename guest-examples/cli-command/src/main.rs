//! cli-command: `hello` as a plain WASI command: it reads JSON from stdin, writes it back to
//! stdout and logs one line to stderr. It is what a user scripts with `wasmtime run` without
//! driftless (the load benchmark's baseline). The runtime refuses it at admission because it
//! exports `wasi:cli/run` instead of `run`, and says how to turn it into a task.
use std::io::{Read, Write};

fn main() {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .expect("read stdin");
    let value: serde_json::Value = if input.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&input).expect("stdin is JSON")
    };
    eprintln!("hello from driftless");
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &value).expect("write stdout");
    out.write_all(b"\n").expect("write stdout");
}
