//! The `driftless` binary.

mod cli;

/// mimalloc: the daemon allocates many small, short-lived buffers per job on several threads,
/// where it spends about half the time glibc's allocator does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    match cli::main() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
