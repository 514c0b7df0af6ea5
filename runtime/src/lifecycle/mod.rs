//! lifecycle: the rules of a job's life and of a task's versions, decided once for every
//! backend, with every sentence the store records or answers.
//!
//! The store's backends execute; this module decides. A job is `queued` until an agent claims
//! an attempt (`running`); the attempt ends by succeeding, failing for good, failing with a
//! retry after a backoff, being cancelled, being interrupted by a draining node (queued again,
//! not charged), or being lost (its agent died or its lease expired: queued again, failed when
//! out of attempts, cancelled when cancellation was requested). [`attempts`] turns each of
//! these into a [`attempts::JobMove`] (the job's next state) and an [`attempts::Told`] event.
//! [`tasks`] holds the task-version rules: numbering, the no-op redeploy, rollback targets and
//! unregistering while pinned. [`schedules`] holds when a cron schedule's ticks fall and the
//! missed-tick policy. The shared store suite (`tests/tests/store.rs`) holds both
//! backends to these meanings.

pub mod attempts;
pub mod schedules;
pub mod states;
pub mod tasks;
