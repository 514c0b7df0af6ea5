//! The database server's clock, as this process reads it: leases, identity holds and the
//! registry's heartbeats are judged by it, so a node whose own clock is wrong can neither
//! expire another node's live lease nor keep its own past its time.
//!
//! A reading pairs the server's `clock_timestamp()` with this process's monotonic clock (at
//! the middle of the round trip that fetched it); [`ServerClock::now`] is the reading plus the
//! monotonic time since, so it needs no round trip and ignores steps of the local wall clock.
//! The reading is taken at connect and again, in the background, once it is a few seconds old
//! (the server's clock may be adjusted, and the two clocks drift apart slowly).

use super::pg;
use crate::store::{StoreResult, now_ms};
use deadpool_postgres::{Object, Pool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How old a reading may get before it is taken again.
const REFRESH: Duration = Duration::from_secs(5);

/// The server's time in milliseconds since the Unix epoch.
const SERVER_NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// The server's clock, read now and then.
pub(super) struct ServerClock {
    pool: Pool,
    reading: Mutex<Reading>,
    refreshing: AtomicBool,
}

/// The server's time at a moment of this process's monotonic clock.
#[derive(Clone, Copy)]
struct Reading {
    server_ms: i64,
    at: Instant,
}

impl ServerClock {
    /// The clock of the server `pool` connects to, not read yet: [`sync`](Self::sync) reads it
    /// (until then it answers this machine's time).
    pub(super) fn new(pool: Pool) -> Arc<ServerClock> {
        Arc::new(ServerClock {
            pool,
            reading: Mutex::new(Reading {
                server_ms: now_ms(),
                at: Instant::now(),
            }),
            refreshing: AtomicBool::new(false),
        })
    }

    /// Read the server's clock now, through `client`.
    pub(super) async fn sync(&self, client: &Object) -> StoreResult<()> {
        *self.reading.lock().expect("clock reading") = read(client).await?;
        Ok(())
    }

    /// Milliseconds since the Unix epoch by the server's clock.
    pub(super) fn now(self: &Arc<Self>) -> i64 {
        let reading = *self.reading.lock().expect("clock reading");
        let age = reading.at.elapsed();
        if age > REFRESH {
            self.refresh();
        }
        reading.server_ms + age.as_millis() as i64
    }

    /// Take a new reading in the background (one at a time; a failed one keeps the old).
    fn refresh(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let clock = self.clone();
        runtime.spawn(async move {
            let synced = match clock.pool.get().await {
                Ok(client) => clock.sync(&client).await,
                Err(e) => Err(crate::store::StoreError::Backend(e.to_string())),
            };
            if let Err(e) = synced {
                tracing::warn!(error = %e, "could not read the database server's clock; leases go by the last reading");
            }
            clock.refreshing.store(false, Ordering::SeqCst);
        });
    }
}

/// One reading: the server's time, placed at the middle of the round trip.
async fn read(client: &Object) -> StoreResult<Reading> {
    let sent = Instant::now();
    let server_ms: i64 = client.query_one(SERVER_NOW, &[]).await.map_err(pg)?.get(0);
    let round_trip = sent.elapsed();
    Ok(Reading {
        server_ms,
        at: sent + round_trip / 2,
    })
}
