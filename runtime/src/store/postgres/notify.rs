//! LISTEN/NOTIFY: the wake-ups nodes send each other through PostgreSQL.
//!
//! `driftless_tasks` is notified inside the transaction that moves a task's `current` (so it
//! is delivered exactly when the move commits). `driftless_jobs` is notified by a background
//! task just after inserts commit, coalesced: PostgreSQL serialises the commits of every
//! transaction that notifies (a database-wide lock held through the commit), so notifying
//! inside each insert would make every submission wait for every other's fsync.

use super::{connect_error, pg};
use crate::store::StoreResult;
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel notified when jobs are queued (empty payload).
pub const JOBS_CHANNEL: &str = "driftless_jobs";
/// The channel notified when a task's `current` moves (payload: the task's name).
pub const TASKS_CHANNEL: &str = "driftless_tasks";

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Jobs were queued: claimable work may be waiting. One notice may stand for many jobs.
    Jobs,
    /// The task's `current` moved (deploy or rollback): drop its cached resolution.
    Task(String),
    /// The listening connection dropped and is back: notices may have been missed, so act
    /// as if every job and task changed.
    Reconnected,
}

/// Start the task that sends `NOTIFY driftless_jobs` whenever the returned sender is
/// signalled. A signal while a notification is on its way is folded into one more after it.
/// The task ends when the sender is dropped (with its store).
pub(super) fn job_notifier(pool: Pool) -> mpsc::Sender<()> {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            let sent = match pool.get().await {
                Ok(c) => c.batch_execute("NOTIFY driftless_jobs").await.map_err(pg),
                Err(e) => Err(crate::store::StoreError::Backend(e.to_string())),
            };
            if let Err(e) = sent {
                // Listeners also poll: a lost wake-up delays a claim, it never loses a job.
                tracing::debug!(error = %e, "could not notify driftless_jobs");
            }
        }
    });
    tx
}

/// One listening connection: dropping it closes the connection.
struct Listening {
    _client: tokio_postgres::Client,
    /// Resolves with why the connection ended.
    ended: oneshot::Receiver<String>,
}

/// Connect, start forwarding notifications, and LISTEN on both channels.
async fn open(
    config: &tokio_postgres::Config,
    notices: &broadcast::Sender<Notice>,
) -> Result<Listening, tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (end, ended) = oneshot::channel();
    let forward = notices.clone();
    tokio::spawn(async move {
        let why = loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let notice = match n.channel() {
                        JOBS_CHANNEL => Notice::Jobs,
                        TASKS_CHANNEL => Notice::Task(n.payload().to_string()),
                        _ => continue,
                    };
                    // No receiver right now is fine: the supervisor notices and stops.
                    let _ = forward.send(notice);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => break "the server closed the connection".to_string(),
            }
        };
        let _ = end.send(why);
    });
    client
        .batch_execute(&format!("LISTEN {JOBS_CHANNEL}; LISTEN {TASKS_CHANNEL}"))
        .await?;
    Ok(Listening {
        _client: client,
        ended,
    })
}

/// Open a listening connection and keep it open (see [`super::PostgresStore::listen`]).
pub(super) async fn listen(
    config: &tokio_postgres::Config,
    target: &str,
) -> StoreResult<broadcast::Receiver<Notice>> {
    let mut config = config.clone();
    config.application_name("driftless-listen");
    let (notices, receiver) = broadcast::channel(1024);
    let first = open(&config, &notices)
        .await
        .map_err(|e| connect_error(target, &e))?;
    tokio::spawn(supervise(config, target.to_string(), notices, first));
    Ok(receiver)
}

/// Reopen the listening connection whenever it ends (backoff 100 ms doubling to 5 s), until
/// every receiver is gone.
async fn supervise(
    config: tokio_postgres::Config,
    target: String,
    notices: broadcast::Sender<Notice>,
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
                if notices.receiver_count() == 0 {
                    return;
                }
                continue;
            }
        }
        let mut delay = Duration::from_millis(100);
        current = loop {
            if notices.receiver_count() == 0 {
                return;
            }
            tokio::time::sleep(delay).await;
            match open(&config, &notices).await {
                Ok(listening) => break listening,
                Err(e) => {
                    tracing::warn!(%target, error = %e, retry_in = ?delay * 2, "cannot reopen the PostgreSQL notification connection");
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        tracing::info!(%target, "PostgreSQL notification connection restored");
        let _ = notices.send(Notice::Reconnected);
    }
}
