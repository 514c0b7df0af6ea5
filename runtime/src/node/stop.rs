//! The signal that stops a node's background loops: one sender, held by `Loops` (`loops.rs`),
//! and a receiver per loop that it checks wherever it would otherwise wait.

use std::time::Duration;
use tokio::sync::watch;

/// Asks every loop holding a [`Stopping`] of it to stop.
pub struct StopSignal(watch::Sender<bool>);

/// A loop's view of the [`StopSignal`]: wait on it, or pause unless it fires.
#[derive(Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl StopSignal {
    /// A signal not yet given.
    pub fn new() -> StopSignal {
        StopSignal(watch::channel(false).0)
    }

    /// A receiver for one loop.
    pub fn subscribe(&self) -> Stopping {
        Stopping(self.0.subscribe())
    }

    /// Ask every loop to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Stopping {
    /// Resolves once the loops are asked to stop (or the signal is dropped).
    pub async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Sleep for `d`; false when asked to stop first, so a loop reads
    /// `while stop.pause(every).await { … }`.
    pub async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.requested() => false,
        }
    }
}
