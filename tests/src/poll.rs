//! Waiting for something the system reports: the one polling helper of the tests. A test
//! names what it waits for and how long it may take; the check runs every 20 ms until it
//! holds, and a timeout panics with that name.

use std::time::Duration;

/// How often a condition is checked.
const EVERY: Duration = Duration::from_millis(20);

/// Run `check` every 20 ms until it returns a value, for at most `within`; `None` when it
/// never did.
pub async fn poll<T>(within: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// [`poll`] until `check` returns a value, and return it; panic naming `what` when none came
/// within `within`.
pub async fn until_some<T>(
    what: &str,
    within: Duration,
    check: impl AsyncFnMut() -> Option<T>,
) -> T {
    poll(within, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {within:?} waiting for {what}"))
}

/// Run `check` every 20 ms until it holds; panic naming `what` when it did not within
/// `within`.
pub async fn until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    until_some(what, within, async || check().await.then_some(())).await
}

/// [`until`] for tests that are not async (the CLI's): the same schedule, on a runtime of its
/// own.
pub fn until_blocking(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime for polling")
        .block_on(until(what, within, async || check()))
}
