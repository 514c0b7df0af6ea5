//! Clients waiting for jobs to finish (`?wait=`), keyed by job: a job's end wakes only the
//! clients waiting for that job, so a finish costs one wake-up however many clients wait for
//! other jobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The jobs someone waits for, each with the clients' shared wake-up and how many hold it.
#[derive(Default)]
pub(crate) struct FinishWaits {
    waits: Mutex<HashMap<String, (usize, Arc<Notify>)>>,
}

impl FinishWaits {
    /// Wake whoever waits for `job`.
    pub(crate) fn finished(&self, job: &str) {
        if let Some((_, notify)) = self.waits.lock().expect("finish waits").get(job) {
            notify.notify_waiters();
        }
    }

    /// Start waiting for `job`; the wait ends when the returned watch is dropped.
    pub(crate) fn watch(self: &Arc<Self>, job: &str) -> FinishWatch {
        let notify = {
            let mut waits = self.waits.lock().expect("finish waits");
            let entry = waits
                .entry(job.to_string())
                .or_insert_with(|| (0, Arc::new(Notify::new())));
            entry.0 += 1;
            entry.1.clone()
        };
        FinishWatch {
            waits: self.clone(),
            job: job.to_string(),
            notify,
        }
    }
}

/// One client's wait for one job.
pub struct FinishWatch {
    waits: Arc<FinishWaits>,
    job: String,
    notify: Arc<Notify>,
}

impl FinishWatch {
    /// The job's next end announced from now on: create it (and `enable` it) before reading
    /// the job, so an end between the read and the wait is not missed.
    pub fn next(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for FinishWatch {
    fn drop(&mut self) {
        let mut waits = self.waits.waits.lock().expect("finish waits");
        if let Some(entry) = waits.get_mut(&self.job) {
            entry.0 -= 1;
            if entry.0 == 0 {
                waits.remove(&self.job);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_finish_wakes_only_its_own_jobs_waiters_and_dropped_watches_leave_nothing() {
        let waits = Arc::new(FinishWaits::default());
        let (a, b) = (waits.watch("a"), waits.watch("b"));
        {
            let (next_a, next_b) = (a.next(), b.next());
            tokio::pin!(next_a, next_b);
            next_a.as_mut().enable();
            next_b.as_mut().enable();
            waits.finished("a");
            tokio::time::timeout(Duration::from_secs(5), next_a)
                .await
                .expect("a's waiter is woken");
            assert!(
                tokio::time::timeout(Duration::from_millis(50), next_b)
                    .await
                    .is_err(),
                "b's waiter slept through a's end"
            );
        }
        drop((a, b));
        assert!(waits.waits.lock().unwrap().is_empty());
    }
}
