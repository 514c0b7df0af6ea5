//! The guest examples' own unit tests, run natively against the SDK's in-memory test host
//! (`driftless_sdk::testing`): what a guest author gets from `cargo test` in their job crate.

use std::process::Command;

#[test]
fn guest_examples_unit_tests_pass_natively() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-examples");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(examples)
        .args(["test", "--workspace", "--quiet"]);
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS" {
            cmd.env_remove(&key);
        }
    }
    let out = cmd.output().expect("run cargo test in guest-examples");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "guest example unit tests failed:\n{text}"
    );
    // wordcount (2) and kv-adaptive (3) carry tests; make sure they ran.
    let passed: usize = text
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(
        passed >= 5,
        "expected at least 5 guest tests to run:\n{text}"
    );
}
