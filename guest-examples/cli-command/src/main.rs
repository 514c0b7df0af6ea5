//! cli-command: a WASI command, not a driftless task. The runtime refuses it at admission
//! because it does not export `run`, and says how to turn it into a task.
fn main() {
    println!("hello from a WASI command");
}
