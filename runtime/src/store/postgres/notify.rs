//! LISTEN/NOTIFY: the wake-ups nodes send each other through PostgreSQL.
//!
//! `driftless_tasks` is notified inside the transaction that moves a task's `current` (so it
//! is delivered exactly when the move commits). `driftless_jobs` (jobs queued) and
//! `driftless_done` (jobs finished, payload: their ids, one per line) are sent by a background
//! task just after the changes commit, coalesced: PostgreSQL serialises the commits of every
//! transaction that notifies (a database-wide lock held through the commit), so notifying
//! inside each insert or finish would make every one wait for every other's fsync. The
//! notifier's own transactions skip the wait for their (worthless) commit flush.

use super::{connect_error, pg};
use crate::store::{StoreError, StoreResult};
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::{AsyncMessage, Notification};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The channel notified when jobs are queued (empty payload).
pub const JOBS_CHANNEL: &str = "driftless_jobs";
/// The channel notified when a task's `current` moves (payload: the task's name).
pub const TASKS_CHANNEL: &str = "driftless_tasks";
/// The channel notified when retention deletes a component (payload: its hash).
pub const COMPONENTS_CHANNEL: &str = crate::store::ops::retention::COMPONENTS_CHANNEL;
/// The channel notified when jobs finish (payload: their ids, one per line).
pub const DONE_CHANNEL: &str = "driftless_done";

/// The most finished job ids waiting to be announced; more are dropped (waiters also poll).
const DONE_BACKLOG: usize = 65_536;
/// Payloads must stay under PostgreSQL's 8000 bytes.
const MAX_PAYLOAD: usize = 7_000;

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Jobs were queued: claimable work may be waiting. One notice may stand for many jobs.
    Jobs,
    /// The task's `current` moved (deploy or rollback): drop its cached resolution.
    Task(String),
    /// Retention deleted the component with this hash: forget what was prepared from it.
    ComponentDeleted(String),
    /// The listening connection dropped and is back: notices may have been missed, so act
    /// as if every job and task changed.
    Reconnected,
}

/// The sending side: a background task, signalled without waiting.
pub(super) struct Notifier {
    jobs: mpsc::Sender<()>,
    done: mpsc::Sender<String>,
}

impl Notifier {
    /// Start the task. It ends when the notifier is dropped (with its store).
    pub(super) fn start(pool: Pool) -> Notifier {
        let (jobs, jobs_rx) = mpsc::channel(1);
        let (done, done_rx) = mpsc::channel(DONE_BACKLOG);
        tokio::spawn(send_notifications(pool, jobs_rx, done_rx));
        Notifier { jobs, done }
    }

    /// Jobs were queued (committed). A signal while a notification is on its way is folded
    /// into one more after it.
    pub(super) fn jobs_queued(&self) {
        let _ = self.jobs.try_send(());
    }

    /// These jobs finished (committed).
    pub(super) fn finished(&self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if self.done.try_send(id).is_err() {
                break;
            }
        }
    }
}

async fn send_notifications(
    pool: Pool,
    mut jobs: mpsc::Receiver<()>,
    mut done: mpsc::Receiver<String>,
) {
    loop {
        let (mut queued, mut finished) = (false, Vec::new());
        tokio::select! {
            signal = jobs.recv() => match signal {
                Some(()) => queued = true,
                None => return,
            },
            id = done.recv() => match id {
                Some(id) => finished.push(id),
                None => return,
            },
        }
        // Fold in whatever else is waiting.
        queued |= jobs.try_recv().is_ok();
        while let Ok(id) = done.try_recv() {
            finished.push(id);
        }
        if let Err(e) = notify(&pool, queued, &finished).await {
            // Listeners also poll: a lost wake-up delays a claim or an answer, it loses nothing.
            tracing::debug!(error = %e, "could not send PostgreSQL notifications");
        }
    }
}

/// One transaction with every notification; its commit need not wait for the disk.
async fn notify(pool: &Pool, queued: bool, finished: &[String]) -> StoreResult<()> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let tx = client.transaction().await.map_err(pg)?;
    tx.batch_execute("SET LOCAL synchronous_commit TO off")
        .await
        .map_err(pg)?;
    if queued {
        tx.batch_execute(&format!("NOTIFY {JOBS_CHANNEL}"))
            .await
            .map_err(pg)?;
    }
    let send = tx
        .prepare_cached("SELECT pg_notify($1, $2)")
        .await
        .map_err(pg)?;
    for payload in payloads(finished) {
        tx.execute(&send, &[&DONE_CHANNEL, &payload])
            .await
            .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)
}

/// Ids joined by newlines, in payloads under [`MAX_PAYLOAD`] bytes.
fn payloads(ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        match out.last_mut() {
            Some(p) if p.len() + 1 + id.len() <= MAX_PAYLOAD => {
                p.push('\n');
                p.push_str(id);
            }
            _ => out.push(id.clone()),
        }
    }
    out
}

/// What one kind of listener listens to and hands on.
pub(super) struct Subscription<T> {
    /// The channels to LISTEN on.
    pub channels: &'static [&'static str],
    /// What each notification becomes.
    pub parse: fn(&Notification) -> Vec<T>,
    /// What to send once the connection is back after a drop, if anything.
    pub reconnected: Option<T>,
}

/// [`Notice`]s from `driftless_jobs`, `driftless_tasks` and `driftless_components`.
pub(super) fn notices() -> Subscription<Notice> {
    Subscription {
        channels: &[JOBS_CHANNEL, TASKS_CHANNEL, COMPONENTS_CHANNEL],
        parse: |n| match n.channel() {
            JOBS_CHANNEL => vec![Notice::Jobs],
            TASKS_CHANNEL => vec![Notice::Task(n.payload().to_string())],
            COMPONENTS_CHANNEL => vec![Notice::ComponentDeleted(n.payload().to_string())],
            _ => vec![],
        },
        reconnected: Some(Notice::Reconnected),
    }
}

/// Finished job ids from `driftless_done`.
pub(super) fn finished() -> Subscription<String> {
    Subscription {
        channels: &[DONE_CHANNEL],
        parse: |n| n.payload().lines().map(str::to_string).collect(),
        reconnected: None,
    }
}

/// One listening connection: dropping it closes the connection.
struct Listening {
    _client: tokio_postgres::Client,
    /// Resolves with why the connection ended.
    ended: oneshot::Receiver<String>,
}

/// Connect, start forwarding notifications, and LISTEN.
async fn open<T: Clone + Send + 'static>(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    what: &Subscription<T>,
    out: &broadcast::Sender<T>,
) -> Result<Listening, tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let (end, ended) = oneshot::channel();
    let (parse, out) = (what.parse, out.clone());
    tokio::spawn(async move {
        let why = loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    for item in parse(&n) {
                        // No receiver right now is fine: the supervisor notices and stops.
                        let _ = out.send(item);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "the server closed the connection".to_string(),
            }
        };
        let _ = end.send(why);
    });
    let listen: String = what
        .channels
        .iter()
        .map(|c| format!("LISTEN {c};"))
        .collect();
    client.batch_execute(&listen).await?;
    Ok(Listening {
        _client: client,
        ended,
    })
}

/// Open a listening connection and keep it open (see [`super::PostgresStore::listen`]).
pub(super) async fn listen<T: Clone + Send + Sync + 'static>(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    target: &str,
    what: Subscription<T>,
) -> StoreResult<broadcast::Receiver<T>> {
    let mut config = config.clone();
    config.application_name("driftless-listen");
    let (out, receiver) = broadcast::channel(1024);
    let first = open(&config, tls, &what, &out)
        .await
        .map_err(|e| connect_error(target, &e))?;
    tokio::spawn(supervise(
        config,
        tls.clone(),
        target.to_string(),
        what,
        out,
        first,
    ));
    Ok(receiver)
}

/// Reopen the listening connection whenever it ends (backoff 100 ms doubling to 5 s), until
/// every receiver is gone.
async fn supervise<T: Clone + Send + 'static>(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    target: String,
    what: Subscription<T>,
    out: broadcast::Sender<T>,
    mut current: Listening,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            why = &mut current.ended => {
                let why = why.unwrap_or_else(|_| "the connection task stopped".into());
                tracing::warn!(%target, %why, "lost the PostgreSQL notification connection; reconnecting");
            }
            _ = tick.tick() => {
                if out.receiver_count() == 0 {
                    return;
                }
                continue;
            }
        }
        let mut delay = Duration::from_millis(100);
        current = loop {
            if out.receiver_count() == 0 {
                return;
            }
            tokio::time::sleep(delay).await;
            match open(&config, &tls, &what, &out).await {
                Ok(listening) => break listening,
                Err(e) => {
                    tracing::warn!(%target, error = %e, retry_in = ?delay * 2, "cannot reopen the PostgreSQL notification connection");
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        tracing::info!(%target, "PostgreSQL notification connection restored");
        if let Some(notice) = &what.reconnected {
            let _ = out.send(notice.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_ids_are_packed_into_payloads_under_the_limit() {
        let ids: Vec<String> = (0..1000).map(|i| format!("job-{i:020}")).collect();
        let packed = payloads(&ids);
        assert!(packed.len() > 1);
        assert!(packed.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let unpacked: Vec<&str> = packed.iter().flat_map(|p| p.lines()).collect();
        assert_eq!(unpacked, ids);
        assert!(payloads(&[]).is_empty());
    }
}
