//! The store's promises, exercised through the `Store` trait. Every case is one function over a
//! fresh database, run by `suite!` against each backend: SQLite in a temporary directory and
//! PostgreSQL on one throwaway server per test process (a new database per case). Cases that
//! reopen the store open a second handle on the same database, as a restarted daemon would.
//! PostgreSQL's own promises (concurrent migrations, claims from several nodes, notifications)
//! are in `mod postgres_only` at the end.

use driftless::engine::Limits;
use driftless::lifecycle::schedules::Timetable;
use driftless::store::{
    AttemptEnd, AttemptState, ConcurrencyKey, DeleteOutcome, Firing, Held, Inserted, JobFailure,
    JobStatus, KvEffects, KvObserved, KvValue, KvWrite, NewJob, NewSchedule, NewTaskVersion, Next,
    NodeRegistration, Requirements, ScheduleTick, Store, StoreError, TaskPin, TokenRecord, Turn,
    now_ms,
};
use driftless_tests::stores::TestDb;
use std::collections::HashSet;
use std::sync::Arc;

/// Every case, on every backend: `mod sqlite` and `mod postgres` get one test per case.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            use driftless_tests::stores::{Backend, TestDb};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(TestDb::new(Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            use driftless_tests::stores::{Backend, TestDb};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(TestDb::new(Backend::Postgres).await).await
                }
            )*
        }
    };
}

suite!(
    many_agents_claiming_from_one_queue_never_share_an_attempt,
    finishing_and_claiming_the_next_in_one_step_runs_each_job_once,
    a_stale_attempts_late_writes_are_refused,
    the_reaper_requeues_expired_leases_and_fails_jobs_out_of_attempts,
    a_lost_attempt_of_a_job_being_cancelled_cancels_it_instead_of_running_it_again,
    retries_wait_for_their_backoff_and_requeues_are_not_charged,
    acknowledged_writes_survive_reopening_and_blobs_are_stored_once,
    task_versions_are_immutable_numbered_and_audited,
    a_job_pinned_to_an_unregistered_version_is_refused_and_nothing_is_stored,
    an_identity_has_one_holder_at_a_time,
    every_step_of_a_job_is_told_in_its_events,
    cancelling_stops_a_queued_job_at_once_and_flags_a_running_one,
    jobs_read_back_as_written_listed_newest_first_and_counted,
    an_attempts_kv_writes_commit_with_its_success_only,
    a_success_whose_kv_reads_changed_runs_again_uncharged,
    concurrent_read_modify_writes_never_lose_an_update,
    agents_claim_only_jobs_of_classes_they_satisfy,
    the_node_registry_tracks_processes_and_frees_what_silent_ones_held,
    two_nodes_deploying_at_once_number_versions_without_gaps,
    two_reapers_at_once_lose_each_expired_attempt_once,
    two_takers_of_one_free_identity_get_it_once,
    a_process_that_lost_its_identity_claims_nothing_and_its_attempts_are_fenced_out,
    a_new_holder_recovers_only_what_a_dead_holder_left,
    tokens_are_kept_by_hash_with_unique_names_until_revoked,
    activity_counts_waiting_running_and_ended_jobs_per_bucket,
    jobs_list_by_task_and_node,
    claims_take_the_highest_priority_first_then_the_longest_ready,
    delayed_jobs_wait_for_their_time_and_are_promoted_once,
    a_concurrency_key_never_has_more_jobs_ready_or_running_than_its_limit,
    many_agents_never_run_more_jobs_of_a_key_than_its_limit,
    a_task_versions_limit_is_part_of_the_version,
    retention_deletes_aged_finished_jobs_with_every_row_in_bounded_batches,
    retention_deletes_unreferenced_components_after_the_grace_and_referenced_ones_never,
    two_sweepers_at_once_delete_each_job_once,
    retention_forgets_a_concurrency_key_with_its_last_job,
    schedules_are_put_read_listed_and_deleted,
    a_schedule_tick_fired_by_two_stores_at_once_makes_one_job,
    a_schedule_moves_on_tick_by_tick_and_a_stale_firing_changes_nothing,
    a_schedule_more_than_a_minute_late_skips_the_missed_ticks_and_counts_them,
);

fn new_job(id: &str, max_attempts: u32) -> NewJob {
    NewJob {
        id: id.into(),
        component: "c0ffee".into(),
        input: b"null".to_vec(),
        max_attempts,
        limits: Limits::default(),
        optional_imports: vec![],
        report: "{}".into(),
        kv_scope: id.into(),
        task: None,
        idempotency_key: None,
        request_hash: None,
        requirements: None,
        now_ms: now_ms(),
        turn: Turn::default(),
        schedule: None,
    }
}

/// A job accepted at `now_ms`.
fn job_at(id: &str, max_attempts: u32, now_ms: i64) -> NewJob {
    NewJob {
        now_ms,
        ..new_job(id, max_attempts)
    }
}

fn end(next: Next) -> AttemptEnd {
    let state = match next {
        Next::Succeed(_) => AttemptState::Succeeded,
        _ => AttemptState::Failed,
    };
    AttemptEnd {
        state,
        outcome: serde_json::json!({}),
        log: String::new(),
        next,
        kv: KvEffects::default(),
    }
}

/// A success with kv effects in scope `s`: what it read, and what it writes (`None`: delete).
fn success_with(reads: Vec<KvObserved>, writes: &[(&str, &str, Option<&[u8]>)]) -> AttemptEnd {
    AttemptEnd {
        kv: KvEffects {
            scope: "s".into(),
            reads,
            writes: writes
                .iter()
                .map(|(bucket, key, value)| KvWrite {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    value: value.map(<[u8]>::to_vec),
                })
                .collect(),
        },
        ..end(Next::Succeed(b"ok".to_vec()))
    }
}

/// A read of `bucket/key` at `version`.
fn saw(bucket: &str, key: &str, version: u64) -> KvObserved {
    KvObserved::Key {
        bucket: bucket.into(),
        key: key.into(),
        version,
    }
}

/// Take agent identity `id` for process `holder` from whoever holds it now (the suite plays
/// every process); its hold.
async fn take(store: &dyn Store, id: &str, holder: &str) -> Held {
    let node = id.split('/').next().unwrap();
    let before = store
        .identity_holder(id)
        .await
        .unwrap()
        .and_then(|h| h.holder);
    let hold = store
        .take_identity(id, node, before.as_deref(), holder, 600_000, now_ms())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{holder} takes {id}"));
    Held {
        agent: id.into(),
        hold,
    }
}

/// The agent identities a case claims with, each taken by the process `suite` on first use.
struct Agents {
    store: Arc<dyn Store>,
    held: tokio::sync::Mutex<std::collections::HashMap<String, Held>>,
}

impl Agents {
    fn new(store: &Arc<dyn Store>) -> Agents {
        Agents {
            store: store.clone(),
            held: Default::default(),
        }
    }

    /// Identity `id`, held by `suite`.
    async fn get(&self, id: &str) -> Held {
        let mut held = self.held.lock().await;
        if let Some(h) = held.get(id) {
            return h.clone();
        }
        let h = take(&*self.store, id, "suite").await;
        held.insert(id.into(), h.clone());
        h
    }
}

async fn with_jobs(store: &Arc<dyn Store>, n: usize, max_attempts: u32) -> Vec<String> {
    store.put_blob("c0ffee", b"component").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("job-{i:04}");
        store.insert_job(new_job(&id, max_attempts)).await.unwrap();
        ids.push(id);
    }
    ids
}

async fn many_agents_claiming_from_one_queue_never_share_an_attempt(db: TestDb) {
    let store = db.open().await;
    let ids = with_jobs(&store, 300, 1).await;
    let mut agents = Vec::new();
    for a in 0..16 {
        let store = store.clone();
        let agent = take(&*store, &format!("race/{a}"), "suite").await;
        agents.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(claim) = store.claim(&agent, &[], 60_000, now_ms()).await.unwrap() {
                got.push((
                    claim.job.id.clone(),
                    claim.attempt,
                    claim.lease_token.clone(),
                ));
            }
            got
        }));
    }
    let mut claimed = Vec::new();
    for a in agents {
        claimed.extend(a.await.unwrap());
    }
    assert_eq!(claimed.len(), ids.len(), "every job claimed exactly once");
    let unique: HashSet<&String> = claimed.iter().map(|(id, _, _)| id).collect();
    assert_eq!(unique.len(), ids.len(), "no job claimed twice");
    assert!(claimed.iter().all(|(_, attempt, _)| *attempt == 1));
    let tokens: HashSet<&String> = claimed.iter().map(|(_, _, t)| t).collect();
    assert_eq!(tokens.len(), ids.len(), "lease tokens are unique");
}

/// An agent as the runtime runs one: claim, then finish each attempt and claim the next one in
/// one transaction, until the queue is empty. Returns the claims it ran.
async fn run_agent(store: Arc<dyn Store>, agent: String) -> Vec<driftless::store::Claim> {
    let agent = take(&*store, &agent, "suite").await;
    let mut done = Vec::new();
    let mut next = store.claim(&agent, &[], 60_000, now_ms()).await.unwrap();
    while let Some(claim) = next {
        let (status, claimed) = store
            .finish_and_claim(
                &claim.lease_token,
                end(Next::Succeed(b"1".to_vec())),
                &agent,
                &[],
                60_000,
                now_ms(),
            )
            .await
            .unwrap();
        assert_eq!(status, JobStatus::Succeeded);
        done.push(claim);
        next = claimed;
    }
    done
}

/// As the agents run: each finishes its attempt and claims the next one in one transaction.
async fn finishing_and_claiming_the_next_in_one_step_runs_each_job_once(db: TestDb) {
    let store = db.open().await;
    let ids = with_jobs(&store, 300, 1).await;
    let agents: Vec<_> = (0..8)
        .map(|a| tokio::spawn(run_agent(store.clone(), format!("race/{a}"))))
        .collect();
    let mut finished = Vec::new();
    for a in agents {
        finished.extend(a.await.unwrap().into_iter().map(|c| c.job.id));
    }
    let unique: HashSet<&String> = finished.iter().collect();
    assert_eq!(finished.len(), ids.len(), "every job finished exactly once");
    assert_eq!(unique.len(), ids.len(), "no job finished twice");
    for id in &ids {
        let record = store.get_job(id).await.unwrap().unwrap();
        assert_eq!(record.job.status, JobStatus::Succeeded);
        assert_eq!(record.attempt_list.len(), 1, "{id} ran once");
    }
}

async fn a_stale_attempts_late_writes_are_refused(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    with_jobs(&store, 1, 3).await;
    let first = store
        .claim(&ag.get("node-1/0").await, &[], 60_000, now_ms())
        .await
        .unwrap()
        .unwrap();
    // The process holding the identity dies; a new one takes it and recovers its attempt.
    let back = take(&*store, "node-1/0", "suite-restarted").await;
    assert_eq!(
        store
            .recover_agent(&back, Some("suite"), now_ms())
            .await
            .unwrap(),
        1
    );
    let t = &first.lease_token;
    assert_eq!(
        store.heartbeat(t, 60_000, now_ms()).await,
        Err(StoreError::StaleLease)
    );
    assert_eq!(
        store.set_progress(t, 50, "half").await,
        Err(StoreError::StaleLease)
    );
    assert_eq!(
        store.save_checkpoint(t, b"late").await,
        Err(StoreError::StaleLease)
    );
    assert_eq!(
        store
            .finish_attempt(t, end(Next::Succeed(b"late".to_vec())), now_ms())
            .await,
        Err(StoreError::StaleLease)
    );
    let job = store.get_job("job-0000").await.unwrap().unwrap();
    assert_eq!(
        (
            job.job.status,
            job.job.output.clone(),
            job.job.progress.clone()
        ),
        (JobStatus::Queued, None, None)
    );
    assert_eq!(store.load_checkpoint("job-0000").await.unwrap(), None);

    let second = store
        .claim(&back, &[], 60_000, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.attempt, 2);
    store
        .save_checkpoint(&second.lease_token, b"mine")
        .await
        .unwrap();
    let status = store
        .finish_attempt(
            &second.lease_token,
            end(Next::Succeed(b"\"ok\"".to_vec())),
            now_ms(),
        )
        .await
        .unwrap();
    assert_eq!(status, JobStatus::Succeeded);
    let record = store.get_job("job-0000").await.unwrap().unwrap();
    let states: Vec<AttemptState> = record.attempt_list.iter().map(|a| a.state).collect();
    assert_eq!(states, [AttemptState::Lost, AttemptState::Succeeded]);
    assert_eq!(
        store.load_checkpoint("job-0000").await.unwrap().as_deref(),
        Some(&b"mine"[..])
    );
}

async fn the_reaper_requeues_expired_leases_and_fails_jobs_out_of_attempts(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    with_jobs(&store, 1, 2).await;
    let now = now_ms();
    store
        .claim(&ag.get("gone/0").await, &[], 10, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.reap_expired(now + 5).await.unwrap(),
        0,
        "a live lease is not reaped"
    );
    assert_eq!(store.reap_expired(now + 20).await.unwrap(), 1);
    assert_eq!(
        store.get_job("job-0000").await.unwrap().unwrap().job.status,
        JobStatus::Queued
    );
    store
        .claim(&ag.get("gone/0").await, &[], 10, now + 30)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.reap_expired(now + 100).await.unwrap(), 1);
    let job = store.get_job("job-0000").await.unwrap().unwrap().job;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error.unwrap().code, "lost");
}

async fn a_lost_attempt_of_a_job_being_cancelled_cancels_it_instead_of_running_it_again(
    db: TestDb,
) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    with_jobs(&store, 2, 3).await;
    let now = now_ms();
    // One attempt's agent dies (lease expiry), the other's restarts (identity recovery); both
    // jobs had cancellation requested while running.
    store
        .claim(&ag.get("gone/0").await, &[], 10, now)
        .await
        .unwrap()
        .unwrap();
    store
        .claim(&ag.get("back/0").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    for id in ["job-0000", "job-0001"] {
        let job = store.cancel_job(id, now + 1).await.unwrap();
        assert!(job.cancel_requested && job.status == JobStatus::Running);
    }
    assert_eq!(store.reap_expired(now + 20).await.unwrap(), 1);
    let back = take(&*store, "back/0", "suite-restarted").await;
    assert_eq!(
        store
            .recover_agent(&back, Some("suite"), now + 21)
            .await
            .unwrap(),
        1
    );
    for id in ["job-0000", "job-0001"] {
        let job = store.get_job(id).await.unwrap().unwrap().job;
        assert_eq!(job.status, JobStatus::Cancelled, "{id}");
        assert!(job.finished_ms.is_some());
        let last = store
            .events(id, None, 1000)
            .await
            .unwrap()
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(last.kind, "cancelled", "{last:?}");
        assert!(
            last.message.contains("after cancellation was requested"),
            "{last:?}"
        );
    }
    assert!(
        store
            .claim(&ag.get("any/0").await, &[], 60_000, now + 30)
            .await
            .unwrap()
            .is_none(),
        "a cancelled job was queued again"
    );
}

async fn retries_wait_for_their_backoff_and_requeues_are_not_charged(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    with_jobs(&store, 1, 3).await;
    let now = now_ms();
    let c = store
        .claim(&ag.get("a/0").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let failure = JobFailure {
        code: "timeout".into(),
        message: "slow".into(),
        retryable: true,
    };
    store
        .finish_attempt(
            &c.lease_token,
            end(Next::Retry {
                failure,
                after_ms: 10_000,
            }),
            now,
        )
        .await
        .unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(now + 10_000));
    assert_eq!(store.promote_due(now + 1, 100).await.unwrap(), 0);
    assert!(
        store
            .claim(&ag.get("a/0").await, &[], 60_000, now + 1)
            .await
            .unwrap()
            .is_none(),
        "claimed before its backoff"
    );
    assert_eq!(store.promote_due(now + 10_001, 100).await.unwrap(), 1);
    let c = store
        .claim(&ag.get("a/0").await, &[], 60_000, now + 10_001)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.attempt, 2);
    store
        .finish_attempt(&c.lease_token, end(Next::Requeue), now + 10_002)
        .await
        .unwrap();
    let c = store
        .claim(&ag.get("a/0").await, &[], 60_000, now + 10_003)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.attempt, 3, "the third attempt row");
    assert_eq!(c.job.attempts, 2, "an interrupted attempt is not charged");
}

async fn acknowledged_writes_survive_reopening_and_blobs_are_stored_once(db: TestDb) {
    {
        let store = db.open().await;
        let ag = Agents::new(&store);
        assert!(store.put_blob("c0ffee", b"component").await.unwrap());
        assert!(!store.put_blob("c0ffee", b"component").await.unwrap());
        let mut job = new_job("job-keep", 1);
        job.idempotency_key = Some("k1".into());
        assert!(store.insert_job(job.clone()).await.unwrap().created);
        job.id = "job-other".into();
        let again = store.insert_job(job).await.unwrap();
        assert!(!again.created);
        assert_eq!(again.job.id, "job-keep");
        let c = store
            .claim(&ag.get("a/0").await, &[], 60_000, now_ms())
            .await
            .unwrap()
            .unwrap();
        let wrote = success_with(vec![], &[("", "k", Some(b"v"))]);
        store
            .finish_attempt(&c.lease_token, wrote, now_ms())
            .await
            .unwrap();
    }
    // A restarted daemon: a new handle on the same database.
    let store = db.open().await;
    assert_eq!(
        store.get_job("job-keep").await.unwrap().unwrap().job.status,
        JobStatus::Succeeded
    );
    assert!(store.get_job("job-other").await.unwrap().is_none());
    assert_eq!(
        store.kv_read("s", "", "k").await.unwrap(),
        KvValue {
            value: Some(b"v".to_vec()),
            version: 1
        }
    );
}

fn version(task: &str, component: &str, actor: &str) -> NewTaskVersion {
    NewTaskVersion {
        task: task.into(),
        component: component.into(),
        report: "{}".into(),
        actor: actor.into(),
        request_id: format!("req-{component}"),
        now_ms: now_ms(),
        max_concurrency: None,
    }
}

async fn task_versions_are_immutable_numbered_and_audited(db: TestDb) {
    let store = db.open().await;
    for c in ["c1", "c2"] {
        store.put_blob(c, c.as_bytes()).await.unwrap();
    }
    let g0 = store.task_generation().await.unwrap();
    let v1 = store.deploy_task(version("t", "c1", "ann")).await.unwrap();
    assert_eq!((v1.version, v1.previous, v1.changed), (1, None, true));
    let v2 = store.deploy_task(version("t", "c2", "bob")).await.unwrap();
    assert_eq!((v2.version, v2.previous, v2.changed), (2, Some(1), true));
    assert!(v2.generation > v1.generation && v1.generation > g0);
    let same = store.deploy_task(version("t", "c1", "cy")).await.unwrap();
    assert_eq!(
        (same.version, same.changed),
        (1, false),
        "same bytes: no-op"
    );
    assert_eq!(store.task_generation().await.unwrap(), v2.generation);

    let current = store.resolve_task("t", None).await.unwrap();
    assert_eq!((current.version, current.component.as_str()), (2, "c2"));
    assert_eq!(
        store.resolve_task("t", Some(1)).await.unwrap().component,
        "c1"
    );
    assert!(matches!(
        store.resolve_task("nope", None).await,
        Err(StoreError::NotFound(_))
    ));

    let back = store
        .rollback_task("t", None, "dee", "r3", now_ms())
        .await
        .unwrap();
    assert_eq!((back.version, back.previous), (1, Some(2)));
    assert!(
        matches!(
            store.rollback_task("t", None, "dee", "r4", now_ms()).await,
            Err(StoreError::Conflict(_))
        ),
        "nothing below version 1"
    );

    // A pinned version cannot go; the current one never can.
    let mut job = new_job("pinned", 1);
    job.component = "c2".into();
    job.task = Some(TaskPin::new("t", 2));
    store.insert_job(job).await.unwrap();
    assert_eq!(
        store
            .delete_task_version("t", 2, "eve", "r5", now_ms())
            .await
            .unwrap(),
        DeleteOutcome::Pinned {
            count: 1,
            jobs: vec!["pinned".into()]
        }
    );
    assert!(matches!(
        store
            .delete_task_version("t", 1, "eve", "r6", now_ms())
            .await,
        Err(StoreError::Conflict(_))
    ));
    store.cancel_job("pinned", now_ms()).await.unwrap();
    assert_eq!(
        store
            .delete_task_version("t", 2, "eve", "r7", now_ms())
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(matches!(
        store.resolve_task("t", Some(2)).await,
        Err(StoreError::TaskVersionGone { version: 2, .. })
    ));
    store.put_blob("c3", b"c3").await.unwrap();
    assert_eq!(
        store
            .deploy_task(version("t", "c3", "fay"))
            .await
            .unwrap()
            .version,
        3
    );

    let task = store.get_task("t", 1000).await.unwrap().unwrap();
    assert_eq!(task.current, 3);
    assert_eq!(task.versions.len(), 3);
    assert!(task.versions[1].deleted_ms.is_some());
    assert_eq!(task.versions[1].jobs.cancelled, 1);
    let audit: Vec<(&str, &str, Option<u32>, Option<u32>)> = task
        .audit
        .iter()
        .map(|a| {
            (
                a.action.as_str(),
                a.actor.as_str(),
                a.old_version,
                a.new_version,
            )
        })
        .collect();
    assert_eq!(
        audit,
        [
            ("deploy", "ann", None, Some(1)),
            ("deploy", "bob", Some(1), Some(2)),
            ("rollback", "dee", Some(2), Some(1)),
            ("delete-version", "eve", Some(2), None),
            ("deploy", "fay", Some(1), Some(3)),
        ]
    );
    store
        .report_resolution("node-x", "t", 3, task.generation, now_ms())
        .await
        .unwrap();
    store
        .report_resolution("node-x", "t", 1, task.generation - 1, now_ms())
        .await
        .unwrap();
    let nodes = store.get_task("t", 1000).await.unwrap().unwrap().nodes;
    assert_eq!(
        (nodes.len(), nodes[0].version),
        (1, 3),
        "an older report never wins"
    );
}

/// A job pinned (`name@version`) to a version that is not registered — unregistered after the
/// submitter resolved it, or never deployed — is refused, and nothing of it is stored.
async fn a_job_pinned_to_an_unregistered_version_is_refused_and_nothing_is_stored(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    for c in ["c1", "c2"] {
        store.put_blob(c, c.as_bytes()).await.unwrap();
    }
    store.deploy_task(version("t", "c1", "ann")).await.unwrap();
    store.deploy_task(version("t", "c2", "ann")).await.unwrap();
    // A submitter resolved `current` to 1 here; then 2 was deployed and 1 unregistered.
    assert_eq!(
        store
            .delete_task_version("t", 1, "bob", "r1", now_ms())
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    let pinned = |id: &str, pin: &str| {
        let mut job = new_job(id, 1);
        job.component = "c1".into();
        let (task, version) = pin.split_once('@').unwrap();
        job.task = Some(TaskPin::new(task, version.parse().unwrap()));
        job.idempotency_key = Some(format!("key-{id}"));
        job.report = format!(r#"{{"only":"{id}"}}"#).into();
        job.requirements = Some(Requirements::from_spec(format!(r#"{{"needs":"{id}"}}"#)));
        job
    };
    for (id, pin, task, version) in [
        ("late", "t@1", "t", 1),
        ("never", "t@9", "t", 9),
        ("nameless", "nope@1", "nope", 1),
    ] {
        let refused = store.insert_job(pinned(id, pin)).await.unwrap_err();
        assert_eq!(
            refused,
            StoreError::TaskVersionGone {
                task: task.into(),
                version
            },
            "{pin}"
        );
        let message = refused.to_string();
        assert!(
            message.contains(&format!("version {version} of task {task}"))
                && message.contains("not stored"),
            "{message}"
        );
        assert_eq!(store.get_job(id).await.unwrap(), None, "{pin}");
        assert!(
            store
                .job_by_idempotency_key(&format!("key-{id}"))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.events(id, None, 1000).await.unwrap(), None);
    }
    assert!(store.list_jobs(None, None, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .claim(&ag.get("w/0").await, &[], 10_000, now_ms())
            .await
            .unwrap(),
        None
    );
    let task = store.get_task("t", 1000).await.unwrap().unwrap();
    assert_eq!(task.versions[0].jobs, Default::default());

    // The registered version takes the job; its idempotency key answers a replay even after
    // the version is gone (nothing new is stored then either).
    let mut job = pinned("ok", "t@2");
    job.component = "c2".into();
    let inserted = store.insert_job(job.clone()).await.unwrap();
    assert!(inserted.created);
    store.cancel_job("ok", now_ms()).await.unwrap();
    store.deploy_task(version("t", "c1", "ann")).await.unwrap();
    assert_eq!(
        store
            .delete_task_version("t", 2, "bob", "r2", now_ms())
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    job.id = "ok-again".into();
    let replay = store.insert_job(job).await.unwrap();
    assert_eq!((replay.created, replay.job.id.as_str()), (false, "ok"));
    assert_eq!(store.list_jobs(None, None, 10).await.unwrap().len(), 1);
}

async fn an_identity_has_one_holder_at_a_time(db: TestDb) {
    let store = db.open().await;
    with_jobs(&store, 1, 1).await;
    let now = now_ms();
    assert_eq!(store.identity_holder("n/0").await.unwrap(), None);
    let first = store
        .take_identity("n/0", "n", None, "p1", 10_000, now)
        .await
        .unwrap()
        .expect("a free identity is taken");
    assert_eq!(
        store
            .take_identity("n/0", "n", None, "p2", 10_000, now)
            .await
            .unwrap(),
        None,
        "held: the compare-and-set fails"
    );
    assert_eq!(
        store
            .take_identity("n/0", "n", Some("someone-else"), "p2", 10_000, now)
            .await
            .unwrap(),
        None
    );
    let hold = store.identity_holder("n/0").await.unwrap().unwrap();
    assert_eq!(
        (hold.holder.as_deref(), hold.lease_expires_ms),
        (Some("p1"), now + 10_000)
    );
    assert_eq!(
        store.renew_identities("p1", 20_000, now + 1).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .identity_holder("n/0")
            .await
            .unwrap()
            .unwrap()
            .lease_expires_ms,
        now + 20_001
    );
    // Taking over from a named (expired or dead) holder: a fresh hold, and the old one claims
    // nothing any more.
    let second = store
        .take_identity("n/0", "n", Some("p1"), "p2", 10_000, now)
        .await
        .unwrap()
        .expect("taken over");
    assert_ne!(first, second, "every take gets a fresh hold");
    let old = Held {
        agent: "n/0".into(),
        hold: first,
    };
    assert_eq!(
        store.claim(&old, &[], 60_000, now).await,
        Err(StoreError::IdentityLost("n/0".into()))
    );
    assert_eq!(store.renew_identities("p1", 20_000, now).await.unwrap(), 0);
    // Released, the identity claims nothing under any hold until it is taken again.
    assert_eq!(store.release_identities("p2", now).await.unwrap(), 1);
    assert_eq!(
        store.identity_holder("n/0").await.unwrap().unwrap().holder,
        None
    );
    let released = Held {
        agent: "n/0".into(),
        hold: second,
    };
    assert_eq!(
        store.claim(&released, &[], 60_000, now).await,
        Err(StoreError::IdentityLost("n/0".into()))
    );
    let third = take(&*store, "n/0", "p3").await;
    let claim = store.claim(&third, &[], 60_000, now).await.unwrap();
    assert!(claim.is_some(), "the new holder claims");
    let record = store.get_job("job-0000").await.unwrap().unwrap();
    assert_eq!(record.attempt_list[0].holder.as_deref(), Some("p3"));
}

fn failure(code: &str, message: &str) -> JobFailure {
    JobFailure {
        code: code.into(),
        message: message.into(),
        retryable: true,
    }
}

async fn events_of(store: &Arc<dyn Store>, id: &str) -> Vec<(Option<u32>, String, String)> {
    store
        .events(id, None, 1000)
        .await
        .unwrap()
        .expect("the job exists")
        .into_iter()
        .map(|e| (e.attempt, e.kind, e.message))
        .collect()
}

fn told(steps: &[(Option<u32>, &str, &str)]) -> Vec<(Option<u32>, String, String)> {
    steps
        .iter()
        .map(|(a, k, m)| (*a, k.to_string(), m.to_string()))
        .collect()
}

async fn every_step_of_a_job_is_told_in_its_events(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    store.put_blob("c0ffee", b"component").await.unwrap();
    let now = now_ms();

    // Retried once, then succeeded.
    store.insert_job(job_at("a", 2, now)).await.unwrap();
    let c = store
        .claim(&ag.get("w/0").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let retry = Next::Retry {
        failure: failure("boom", "it broke"),
        after_ms: 0,
    };
    store
        .finish_attempt(&c.lease_token, end(retry), now)
        .await
        .unwrap();
    let c = store
        .claim(&ag.get("w/0").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.job.id.as_str(), c.attempt, c.job.attempts), ("a", 2, 2));
    assert_eq!(c.lease_expires_ms, now + 60_000);
    store
        .set_progress(&c.lease_token, 50, "half")
        .await
        .unwrap();
    assert!(
        !store.heartbeat(&c.lease_token, 60_000, now).await.unwrap(),
        "no cancellation requested"
    );
    let outcome = serde_json::json!({"kind": "succeeded", "fuel": 7});
    let success = AttemptEnd {
        state: AttemptState::Succeeded,
        outcome: outcome.clone(),
        log: "hello\n".into(),
        next: Next::Succeed(b"42".to_vec()),
        kv: KvEffects::default(),
    };
    assert_eq!(
        store
            .finish_attempt(&c.lease_token, success, now + 5)
            .await
            .unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(
        events_of(&store, "a").await,
        told(&[
            (None, "queued", "accepted and queued"),
            (Some(1), "claimed", "attempt 1 claimed by w/0"),
            (
                Some(1),
                "retry",
                "attempt 1 failed (boom: it broke); retrying in 0 ms"
            ),
            (Some(2), "claimed", "attempt 2 claimed by w/0"),
            (Some(2), "succeeded", "attempt 2 succeeded"),
        ])
    );
    let record = store.get_job("a").await.unwrap().unwrap();
    assert_eq!(
        (
            record.job.status,
            record.job.output.as_deref(),
            record.job.error.clone(),
            record.job.finished_ms,
            record.job.progress.clone()
        ),
        (
            JobStatus::Succeeded,
            Some(&b"42"[..]),
            None,
            Some(now + 5),
            Some((50, "half".to_string()))
        )
    );
    let (first, last) = (&record.attempt_list[0], &record.attempt_list[1]);
    assert_eq!((first.number, first.state), (1, AttemptState::Failed));
    assert_eq!(
        (
            last.number,
            last.agent.as_str(),
            last.state,
            last.outcome.clone(),
            last.log.is_none(),
            last.started_ms,
            last.finished_ms
        ),
        (
            2,
            "w/0",
            AttemptState::Succeeded,
            Some(outcome),
            true,
            now,
            Some(now + 5)
        ),
        "get_job reads no logs"
    );
    let logs = store.job_logs("a", 1).await.unwrap().unwrap();
    assert_eq!(
        logs.iter()
            .map(|a| (a.number, a.log.as_deref()))
            .collect::<Vec<_>>(),
        [(2, Some("hello\n"))],
        "the newest attempt's log"
    );
    assert_eq!(store.job_logs("a", 10).await.unwrap().unwrap().len(), 2);
    assert_eq!(store.job_logs("nope", 10).await.unwrap(), None);
    let summary = store.list_jobs(None, None, 1).await.unwrap().remove(0);
    assert_eq!(
        (
            summary.id.as_str(),
            summary.input_bytes,
            summary.output_bytes,
            summary.error_code
        ),
        ("a", 4, Some(2), None),
        "a summary has the sizes of the input and output"
    );

    // Failed for good.
    store.insert_job(job_at("b", 3, now)).await.unwrap();
    let c = store
        .claim(&ag.get("w/1").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let fail = Next::Fail(failure("bad", "no"));
    assert_eq!(
        store
            .finish_attempt(&c.lease_token, end(fail), now)
            .await
            .unwrap(),
        JobStatus::Failed
    );
    let failed = store
        .list_jobs(Some(JobStatus::Failed), None, 10)
        .await
        .unwrap();
    assert_eq!(
        failed
            .iter()
            .map(|j| (j.id.as_str(), j.output_bytes, j.error_code.as_deref()))
            .collect::<Vec<_>>(),
        [("b", None, Some("bad"))],
        "a failed job's summary has its error code"
    );
    let job = store.get_job("b").await.unwrap().unwrap().job;
    assert_eq!(
        (job.status, job.error, job.finished_ms),
        (JobStatus::Failed, Some(failure("bad", "no")), Some(now))
    );
    assert_eq!(
        events_of(&store, "b").await[2..],
        told(&[(Some(1), "failed", "attempt 1 failed: bad: no")])
    );

    // Interrupted by a draining node (not charged), lost by a restarted agent (charged, then
    // queued again), and lost to an expired lease with no attempts left.
    store.insert_job(job_at("c", 2, now)).await.unwrap();
    let c = store
        .claim(&ag.get("w/2").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let requeue = AttemptEnd {
        state: AttemptState::Interrupted,
        ..end(Next::Requeue)
    };
    assert_eq!(
        store
            .finish_attempt(&c.lease_token, requeue, now)
            .await
            .unwrap(),
        JobStatus::Queued
    );
    let c = store
        .claim(&ag.get("x/1").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.attempt, c.job.attempts), (2, 1));
    let x1 = take(&*store, "x/1", "suite-restarted").await;
    assert_eq!(
        store.recover_agent(&x1, Some("suite"), now).await.unwrap(),
        1
    );
    assert_eq!(
        store.get_job("c").await.unwrap().unwrap().job.status,
        JobStatus::Queued
    );
    let c = store.claim(&x1, &[], 10, now).await.unwrap().unwrap();
    assert_eq!((c.attempt, c.job.attempts), (3, 2));
    assert_eq!(store.reap_expired(now + 100).await.unwrap(), 1);
    let lost =
        "attempt 3 was lost (its lease expired) and the job has no attempts left (2 allowed)";
    assert_eq!(
        events_of(&store, "c").await,
        told(&[
            (None, "queued", "accepted and queued"),
            (Some(1), "claimed", "attempt 1 claimed by w/2"),
            (
                Some(1),
                "interrupted",
                "attempt 1 was interrupted by a draining node and queued again; it is not charged"
            ),
            (Some(2), "claimed", "attempt 2 claimed by x/1"),
            (
                Some(2),
                "lost",
                "attempt 2 on x/1 was lost (its agent restarted under the same identity); the job is queued again"
            ),
            (Some(3), "claimed", "attempt 3 claimed by x/1"),
            (Some(3), "failed", lost),
        ])
    );
    let record = store.get_job("c").await.unwrap().unwrap();
    assert_eq!(
        (
            record.job.status,
            record.job.error.clone(),
            record.job.finished_ms
        ),
        (
            JobStatus::Failed,
            Some(JobFailure {
                code: "lost".into(),
                message: lost.into(),
                retryable: true
            }),
            Some(now + 100)
        )
    );
    let states: Vec<AttemptState> = record.attempt_list.iter().map(|a| a.state).collect();
    assert_eq!(
        states,
        [
            AttemptState::Interrupted,
            AttemptState::Lost,
            AttemptState::Lost
        ]
    );
    assert_eq!(
        record.attempt_list[2].outcome,
        Some(serde_json::json!({"kind": "lost", "message": "its lease expired"}))
    );
}

async fn cancelling_stops_a_queued_job_at_once_and_flags_a_running_one(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    store.put_blob("c0ffee", b"component").await.unwrap();
    let now = now_ms();
    store.insert_job(job_at("r", 1, now)).await.unwrap();
    let c = store
        .claim(&ag.get("w/0").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    store.insert_job(job_at("q", 1, now)).await.unwrap();

    let q = store.cancel_job("q", now + 1).await.unwrap();
    assert_eq!(
        (q.status, q.cancel_requested, q.finished_ms),
        (JobStatus::Cancelled, true, Some(now + 1))
    );
    assert_eq!(
        events_of(&store, "q").await[1..],
        told(&[(None, "cancelled", "cancelled before it ran")])
    );
    assert!(
        store
            .claim(&ag.get("w/1").await, &[], 60_000, now + 2)
            .await
            .unwrap()
            .is_none(),
        "a cancelled job is never claimed"
    );

    let r = store.cancel_job("r", now + 3).await.unwrap();
    assert_eq!(
        (r.status, r.cancel_requested, r.finished_ms, r.updated_ms),
        (JobStatus::Running, true, None, now + 3)
    );
    assert!(
        store
            .heartbeat(&c.lease_token, 60_000, now + 4)
            .await
            .unwrap(),
        "the agent learns of the cancellation"
    );
    let stop = AttemptEnd {
        state: AttemptState::Cancelled,
        ..end(Next::Cancel)
    };
    assert_eq!(
        store
            .finish_attempt(&c.lease_token, stop, now + 5)
            .await
            .unwrap(),
        JobStatus::Cancelled
    );
    assert_eq!(
        events_of(&store, "r").await[2..],
        told(&[
            (
                None,
                "cancel-requested",
                "cancellation requested; the running attempt is being stopped"
            ),
            (
                Some(1),
                "cancelled",
                "attempt 1 was stopped by cancellation"
            ),
        ])
    );
    // Cancelling a finished job changes nothing.
    let again = store.cancel_job("r", now + 6).await.unwrap();
    assert_eq!(
        (again.status, again.finished_ms),
        (JobStatus::Cancelled, Some(now + 5))
    );
    assert_eq!(
        store.events("r", None, 1000).await.unwrap().unwrap().len(),
        4
    );
    assert!(matches!(
        store.cancel_job("nope", now).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn jobs_read_back_as_written_listed_newest_first_and_counted(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    store.put_blob("c0ffee", b"component").await.unwrap();
    assert_eq!(
        store.get_blob("c0ffee").await.unwrap().as_deref(),
        Some(&b"component"[..])
    );
    assert_eq!(store.get_blob("nope").await.unwrap(), None);
    let limits = Limits {
        timeout_ms: 1234,
        memory_bytes: 1 << 20,
        ..Limits::default()
    };
    let mut job = new_job("full", 4);
    job.input = br#"{"n":1}"#.to_vec();
    job.limits = limits;
    job.optional_imports = vec!["wasi:http/*".into()];
    job.report = r#"{"verdict":"ok"}"#.into();
    job.kv_scope = "scope-x".into();
    store
        .deploy_task(version("t", "c0ffee", "ann"))
        .await
        .unwrap();
    job.task = Some(TaskPin::new("t", 1));
    job.idempotency_key = Some("idem-1".into());
    let at = job.now_ms;
    let inserted = store.insert_job(job).await.unwrap();
    assert!(inserted.created);
    let read = store.get_job("full").await.unwrap().unwrap();
    assert_eq!(read.job, inserted.job, "insert answers with the stored job");
    assert!(read.attempt_list.is_empty());
    let j = read.job;
    assert_eq!(
        (
            j.component.as_str(),
            j.input.as_slice(),
            j.max_attempts,
            j.attempts,
            j.status,
            j.limits,
            j.optional_imports.clone(),
            j.kv_scope.as_str(),
            j.task.as_ref().map(ToString::to_string).as_deref(),
            j.class.as_deref(),
        ),
        (
            "c0ffee",
            &br#"{"n":1}"#[..],
            4,
            0,
            JobStatus::Queued,
            limits,
            vec!["wasi:http/*".to_string()],
            "scope-x",
            Some("t@1"),
            None,
        )
    );
    assert_eq!(
        (j.run_after_ms, j.created_ms, j.updated_ms, j.finished_ms),
        (at, at, at, None)
    );
    assert_eq!(
        (j.output, j.error, j.progress, j.cancel_requested),
        (None, None, None, false)
    );
    let (by_key, report) = store
        .job_by_idempotency_key("idem-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (by_key.id.as_str(), report.as_str()),
        ("full", r#"{"verdict":"ok"}"#)
    );
    assert_eq!(store.job_by_idempotency_key("idem-2").await.unwrap(), None);

    let mut ids = vec!["full".to_string()];
    for i in 0..4 {
        let id = format!("j{i}");
        store.insert_job(new_job(&id, 1)).await.unwrap();
        ids.push(id);
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    let listed = |jobs: Vec<driftless::store::JobSummary>| -> Vec<String> {
        jobs.into_iter().map(|j| j.id).collect()
    };
    assert_eq!(
        listed(store.list_jobs(None, None, 10).await.unwrap()),
        newest_first
    );
    assert_eq!(
        listed(store.list_jobs(None, None, 2).await.unwrap()),
        newest_first[..2]
    );
    let j1 = store.get_job("j1").await.unwrap().unwrap().job;
    assert_eq!(
        listed(store.list_jobs(None, Some(j1.seq), 10).await.unwrap()),
        ["j0", "full"],
        "the page after j1"
    );
    let claimed = store
        .claim(&ag.get("w/0").await, &[], 60_000, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.job.id, "full", "the oldest job first");
    assert_eq!(
        listed(
            store
                .list_jobs(Some(JobStatus::Running), None, 10)
                .await
                .unwrap()
        ),
        ["full"]
    );
    assert_eq!(
        listed(
            store
                .list_jobs(Some(JobStatus::Queued), Some(j1.seq), 10)
                .await
                .unwrap()
        ),
        ["j0"]
    );
    let stats = store.stats().await.unwrap().jobs;
    assert_eq!(
        stats,
        [
            (JobStatus::Queued, 4),
            (JobStatus::Running, 1),
            (JobStatus::Succeeded, 0),
            (JobStatus::Failed, 0),
            (JobStatus::Cancelled, 0),
        ]
    );

    assert_eq!(store.get_job("nope").await.unwrap(), None);
    assert_eq!(store.events("nope", None, 1000).await.unwrap(), None);
    assert_eq!(store.load_checkpoint("nope").await.unwrap(), None);
    assert!(
        matches!(
            store.insert_job(new_job("j0", 1)).await,
            Err(StoreError::Conflict(_))
        ),
        "a job id is used once"
    );
    let mut orphan = new_job("orphan", 1);
    orphan.component = "not-stored".into();
    assert!(
        matches!(store.insert_job(orphan).await, Err(StoreError::Conflict(_))),
        "the component must be stored first"
    );
    assert_eq!(store.get_job("orphan").await.unwrap(), None);
}

async fn an_attempts_kv_writes_commit_with_its_success_only(db: TestDb) {
    let store = db.open().await;
    with_jobs(&store, 4, 1).await;
    let now = now_ms();
    let claim = |agent: &'static str| {
        let store = store.clone();
        async move {
            let held = take(&*store, agent, "suite").await;
            store.claim(&held, &[], 60_000, now).await.unwrap().unwrap()
        }
    };
    let writes: &[(&str, &str, Option<&[u8]>)] = &[
        ("b", "a2", Some(b"2")),
        ("b", "a10", Some(b"10")),
        ("b", "z", Some(b"z")),
    ];
    // A failure, a stale token and a lost attempt write nothing.
    let failed = claim("w/0").await;
    let fail = AttemptEnd {
        next: Next::Fail(failure("boom", "no")),
        state: AttemptState::Failed,
        ..success_with(vec![], writes)
    };
    store
        .finish_attempt(&failed.lease_token, fail, now)
        .await
        .unwrap();
    let lost = claim("w/1").await;
    let back = take(&*store, "w/1", "suite-restarted").await;
    assert_eq!(
        store
            .recover_agent(&back, Some("suite"), now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .finish_attempt(&lost.lease_token, success_with(vec![], writes), now)
            .await,
        Err(StoreError::StaleLease),
        "a fenced-out attempt's success is refused, and its writes with it"
    );
    assert_eq!(store.kv_keys("s", "b", "").await.unwrap(), []);
    assert_eq!(
        store.kv_read("s", "b", "a2").await.unwrap(),
        KvValue::default()
    );

    // A success commits them, and each write moves its key one version up.
    let ok = claim("w/2").await;
    let status = store
        .finish_attempt(&ok.lease_token, success_with(vec![], writes), now)
        .await;
    assert_eq!(status, Ok(JobStatus::Succeeded));
    assert_eq!(
        store.kv_keys("s", "b", "a").await.unwrap(),
        [("a10".to_string(), 1), ("a2".to_string(), 1)],
        "keys list in byte order"
    );
    let next = claim("w/3").await;
    let end = success_with(
        vec![saw("b", "z", 1)],
        &[("b", "z", None), ("b", "a2", Some(b"3"))],
    );
    store
        .finish_attempt(&next.lease_token, end, now)
        .await
        .unwrap();
    assert_eq!(
        store.kv_read("s", "b", "z").await.unwrap(),
        KvValue {
            value: None,
            version: 2
        },
        "a deleted key keeps its version"
    );
    assert_eq!(
        store.kv_keys("s", "b", "").await.unwrap(),
        [("a10".to_string(), 1), ("a2".to_string(), 2)]
    );
}

async fn a_success_whose_kv_reads_changed_runs_again_uncharged(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    with_jobs(&store, 3, 1).await;
    let now = now_ms();
    let first = store
        .claim(&ag.get("w/0").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let second = store
        .claim(&ag.get("w/1").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let third = store
        .claim(&ag.get("w/2").await, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    // All three read `n` absent and `b/*` empty; the first commits n = 1.
    let rmw = |value: &'static [u8], version| {
        success_with(vec![saw("", "n", version)], &[("", "n", Some(value))])
    };
    store
        .finish_attempt(&first.lease_token, rmw(b"1", 0), now)
        .await
        .unwrap();
    let status = store
        .finish_attempt(&second.lease_token, rmw(b"1", 0), now + 1)
        .await;
    assert_eq!(
        status,
        Ok(JobStatus::Queued),
        "the lost update is run again"
    );
    let listed = KvObserved::Keys {
        bucket: "".into(),
        prefix: "".into(),
        seen: vec![],
    };
    let phantom = success_with(vec![listed], &[("", "other", Some(b"x"))]);
    let status = store
        .finish_attempt(&third.lease_token, phantom, now + 1)
        .await;
    assert_eq!(
        status,
        Ok(JobStatus::Queued),
        "a key that appeared under a listed prefix is a change"
    );
    assert_eq!(
        store.kv_read("s", "", "n").await.unwrap(),
        KvValue {
            value: Some(b"1".to_vec()),
            version: 1
        },
        "the conflicting writes were discarded"
    );
    assert_eq!(store.kv_read("s", "", "other").await.unwrap().version, 0);
    let job = store.get_job(&second.job.id).await.unwrap().unwrap();
    assert_eq!(job.job.attempts, 0, "a conflict is not charged");
    assert_eq!(job.attempt_list[0].state, AttemptState::Interrupted);
    let events = events_of(&store, &second.job.id).await;
    let (_, kind, message) = events.last().unwrap();
    assert_eq!(kind, "kv-conflict");
    assert!(
        message.contains("/n") && message.contains("not charged"),
        "{message}"
    );

    // Run again, it reads the committed value and commits on top of it.
    let again = store
        .claim(&ag.get("w/1").await, &[], 60_000, now + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.job.id.as_str(), again.attempt),
        (second.job.id.as_str(), 2)
    );
    store
        .finish_attempt(&again.lease_token, rmw(b"2", 1), now + 2)
        .await
        .unwrap();
    assert_eq!(
        store.kv_read("s", "", "n").await.unwrap().value.as_deref(),
        Some(&b"2"[..])
    );
}

/// Agents that read `n`, pause, and commit `n + 1`: however they interleave, no update is lost.
async fn concurrent_read_modify_writes_never_lose_an_update(db: TestDb) {
    let handles = [db.open().await, db.open().await];
    with_jobs(&handles[0], 40, 3).await;
    let mut agents = Vec::new();
    for i in 0..4 {
        let store = handles[i % 2].clone();
        agents.push(tokio::spawn(async move {
            let agent = take(&*store, &format!("w/{i}"), "suite").await;
            while let Some(c) = store.claim(&agent, &[], 60_000, now_ms()).await.unwrap() {
                let read = store.kv_read("s", "", "n").await.unwrap();
                let n: u64 = read
                    .value
                    .map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap());
                tokio::task::yield_now().await;
                let value = (n + 1).to_string();
                let end = success_with(
                    vec![saw("", "n", read.version)],
                    &[("", "n", Some(value.as_bytes()))],
                );
                store
                    .finish_attempt(&c.lease_token, end, now_ms())
                    .await
                    .unwrap();
            }
        }));
    }
    for a in agents {
        a.await.unwrap();
    }
    let store = &handles[0];
    assert_eq!(
        store.kv_read("s", "", "n").await.unwrap().value.as_deref(),
        Some(&b"40"[..])
    );
    let jobs = store
        .list_jobs(Some(JobStatus::Succeeded), None, 100)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 40, "every job succeeded once");
}

async fn agents_claim_only_jobs_of_classes_they_satisfy(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    store.put_blob("c0ffee", b"component").await.unwrap();
    let x = Requirements::from_spec(r#"{"imports":["x"]}"#.into());
    let y = Requirements::from_spec(r#"{"imports":["y"]}"#.into());
    for (id, class) in [
        ("jx", Some(&x)),
        ("jy", Some(&y)),
        ("jn", None),
        ("jx2", Some(&x)),
    ] {
        let mut job = new_job(id, 1);
        job.requirements = class.cloned();
        let stored = store.insert_job(job).await.unwrap().job;
        assert_eq!(stored.class.as_ref(), class.map(|c| &c.class));
    }
    let classes = store.requirement_classes(0).await.unwrap();
    let names: Vec<(&str, &str)> = classes
        .iter()
        .map(|c| (c.class.as_str(), c.spec.as_str()))
        .collect();
    assert_eq!(names, [(&*x.class, &*x.spec), (&*y.class, &*y.spec)]);
    assert!(classes[0].seq < classes[1].seq);
    let after_x = store.requirement_classes(classes[0].seq).await.unwrap();
    assert_eq!(after_x.len(), 1);
    assert_eq!(after_x[0].class, y.class);
    assert!(
        store
            .requirement_classes(classes[1].seq)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.requirement_class(&x.class).await.unwrap().as_deref(),
        Some(&*x.spec)
    );
    assert_eq!(store.requirement_class("nope").await.unwrap(), None);

    let now = now_ms();
    let only_x = [x.class.clone()];
    let c = store
        .claim(&ag.get("w/0").await, &only_x, 60_000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.job.id.as_str(), c.job.class.as_ref()),
        ("jx", Some(&x.class))
    );
    let (_, next) = store
        .finish_and_claim(
            &c.lease_token,
            end(Next::Succeed(b"1".to_vec())),
            &ag.get("w/0").await,
            &only_x,
            60_000,
            now,
        )
        .await
        .unwrap();
    let c = next.unwrap();
    assert_eq!(c.job.id, "jn", "a job without a class runs anywhere");
    let c = store
        .claim(&ag.get("w/0").await, &only_x, 60_000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.job.id, "jx2", "jy was skipped, not claimed");
    assert!(
        store
            .claim(&ag.get("w/0").await, &only_x, 60_000, now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .claim(&ag.get("w/1").await, &[], 60_000, now)
            .await
            .unwrap()
            .is_none()
    );
    let c = store
        .claim(
            &ag.get("w/1").await,
            &[y.class.clone(), "other".into()],
            60_000,
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.job.id.as_str(), c.attempt), ("jy", 1));
}

fn registration(process: &str, node: &str, now_ms: i64) -> NodeRegistration {
    NodeRegistration {
        process: process.into(),
        node: node.into(),
        address: format!("{node}.local:7878"),
        version: "0.1.0".into(),
        catalog: r#"[{"module":"driftless:kv@1.1.0"}]"#.into(),
        agents: 2,
        now_ms,
    }
}

async fn the_node_registry_tracks_processes_and_frees_what_silent_ones_held(db: TestDb) {
    let store = db.open().await;
    let now = now_ms();
    store
        .register_node(registration("h:1:1", "n1", now - 10))
        .await
        .unwrap();
    store
        .register_node(registration("h:2:2", "n2", now))
        .await
        .unwrap();
    let mut holds = std::collections::HashMap::new();
    for (id, holder) in [("n1/1", "h:1:1"), ("n1/0", "h:1:1"), ("n2/0", "h:2:2")] {
        holds.insert(id, take(&*store, id, holder).await);
    }
    let nodes = store.list_nodes(0).await.unwrap();
    assert_eq!(nodes.len(), 2);
    let n1 = &nodes[0];
    assert_eq!(
        (
            n1.process.as_str(),
            n1.node.as_str(),
            n1.address.as_str(),
            n1.version.as_str(),
            n1.catalog.as_str(),
            n1.agents,
            n1.started_ms,
            n1.heartbeat_ms,
            n1.draining,
            n1.inflight,
            n1.gone_ms,
        ),
        (
            "h:1:1",
            "n1",
            "n1.local:7878",
            "0.1.0",
            r#"[{"module":"driftless:kv@1.1.0"}]"#,
            2,
            now - 10,
            now - 10,
            false,
            0,
            None
        )
    );
    assert_eq!(n1.identities, ["n1/0", "n1/1"]);
    assert_eq!(nodes[1].identities, ["n2/0"]);
    assert!(
        store
            .node_heartbeat("h:1:1", true, 3, now + 1)
            .await
            .unwrap()
            .live
    );
    let n1 = store.list_nodes(0).await.unwrap().remove(0);
    assert_eq!(
        (n1.heartbeat_ms, n1.draining, n1.inflight),
        (now + 1, true, 3)
    );

    // A resume asked of n1 through the registry reaches its next heartbeat, and stays asked
    // until n1 follows it.
    assert_eq!(store.request_drain("n1", false).await.unwrap(), 1);
    assert_eq!(store.request_drain("nobody", true).await.unwrap(), 0);
    for _ in 0..2 {
        let beat = store
            .node_heartbeat("h:1:1", true, 3, now + 2)
            .await
            .unwrap();
        assert_eq!(beat.drain_request, Some(false));
    }
    let beat = store
        .node_heartbeat("h:1:1", false, 3, now + 3)
        .await
        .unwrap();
    assert_eq!(
        (beat.live, beat.drain_request),
        (true, None),
        "done: cleared"
    );

    // n1 runs an attempt, then falls silent while n2 keeps heartbeating.
    store.put_blob("c0ffee", b"component").await.unwrap();
    store.insert_job(job_at("j", 2, now)).await.unwrap();
    let c = store
        .claim(&holds["n1/0"], &[], 600_000, now)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .node_heartbeat("h:2:2", false, 0, now + 4_500)
            .await
            .unwrap()
            .live
    );
    assert_eq!(
        store.reap_gone_nodes(1_000, now + 5_000).await.unwrap(),
        ["h:1:1"]
    );
    assert_eq!(
        store.identity_holder("n1/0").await.unwrap().unwrap().holder,
        None
    );
    assert_eq!(
        store
            .identity_holder("n2/0")
            .await
            .unwrap()
            .unwrap()
            .holder
            .as_deref(),
        Some("h:2:2")
    );
    assert_eq!(
        store.reap_expired(now + 5_000).await.unwrap(),
        1,
        "its attempt's lease expired at once"
    );
    assert_eq!(
        store.heartbeat(&c.lease_token, 60_000, now + 5_000).await,
        Err(StoreError::StaleLease)
    );
    assert_eq!(
        store.claim(&holds["n1/1"], &[], 60_000, now + 5_001).await,
        Err(StoreError::IdentityLost("n1/1".into())),
        "a process marked gone claims nothing with the identities it held"
    );
    assert!(
        !store
            .node_heartbeat("h:1:1", false, 0, now + 5_001)
            .await
            .unwrap()
            .live,
        "a gone process must register again"
    );
    let gone = store.list_nodes(now + 5_000).await.unwrap();
    assert_eq!(gone.len(), 2);
    assert_eq!(
        (gone[0].gone_ms, gone[0].inflight, gone[0].identities.len()),
        (Some(now + 5_000), 0, 0)
    );
    let live = store.list_nodes(now + 5_001).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].process, "h:2:2");

    store.leave_node("h:2:2", now + 6_000).await.unwrap();
    assert!(store.list_nodes(now + 7_000).await.unwrap().is_empty());
    store
        .register_node(registration("h:1:1", "n1", now + 8_000))
        .await
        .unwrap();
    let back = store.list_nodes(now + 7_000).await.unwrap();
    assert_eq!(
        (
            back.len(),
            back[0].gone_ms,
            back[0].started_ms,
            back[0].heartbeat_ms
        ),
        (1, None, now - 10, now + 8_000),
        "registering again revives the row and keeps its start"
    );
    // A day later: h:1:1 is marked gone, h:2:2 (gone for over a day) is forgotten.
    let day = 24 * 3600 * 1000;
    assert_eq!(
        store
            .reap_gone_nodes(1_000, now + 6_000 + day + 1)
            .await
            .unwrap(),
        ["h:1:1"]
    );
    let all = store.list_nodes(0).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].process, "h:1:1");
}

/// Two handles on one database (two nodes), each deploying new bytes to one task at once.
async fn two_nodes_deploying_at_once_number_versions_without_gaps(db: TestDb) {
    let nodes = [db.open().await, db.open().await];
    let mut deploys = Vec::new();
    for i in 0..12 {
        let store = nodes[i % 2].clone();
        deploys.push(tokio::spawn(async move {
            let component = format!("c{i}");
            store
                .put_blob(&component, component.as_bytes())
                .await
                .unwrap();
            store
                .deploy_task(version("t", &component, &format!("node-{}", i % 2)))
                .await
                .unwrap()
        }));
    }
    let mut moved = Vec::new();
    for d in deploys {
        moved.push(d.await.unwrap());
    }
    let mut versions: Vec<u32> = moved.iter().map(|m| m.version).collect();
    versions.sort();
    assert_eq!(versions, (1..=12).collect::<Vec<u32>>());
    let mut generations: Vec<i64> = moved.iter().map(|m| m.generation).collect();
    generations.sort();
    generations.dedup();
    assert_eq!(
        generations.len(),
        12,
        "each deploy bumped the generation once"
    );
    let task = nodes[1].get_task("t", 1000).await.unwrap().unwrap();
    assert_eq!(task.generation, *generations.last().unwrap());
    assert_eq!(task.audit.len(), 12);
    // The audit trail chains: each deploy's previous is the one before it.
    for pair in task.audit.windows(2) {
        assert_eq!(pair[1].old_version, pair[0].new_version);
    }
    assert_eq!(task.current, task.audit[11].new_version.unwrap());
}

async fn two_reapers_at_once_lose_each_expired_attempt_once(db: TestDb) {
    let nodes = [db.open().await, db.open().await];
    let ids = with_jobs(&nodes[0], 60, 3).await;
    let now = now_ms() + 1_000;
    let w0 = take(&*nodes[0], "w/0", "suite").await;
    for _ in &ids {
        nodes[0].claim(&w0, &[], 10, now).await.unwrap().unwrap();
    }
    let reapers: Vec<_> = (0..4)
        .map(|i| {
            let store = nodes[i % 2].clone();
            tokio::spawn(async move { store.reap_expired(now + 100).await.unwrap() })
        })
        .collect();
    let mut lost = 0;
    for r in reapers {
        lost += r.await.unwrap();
    }
    assert_eq!(lost, 60, "each expired attempt is lost by one reaper");
    for id in &ids {
        let record = nodes[1].get_job(id).await.unwrap().unwrap();
        assert_eq!(record.job.status, JobStatus::Queued);
        let kinds: Vec<String> = events_of(&nodes[1], id)
            .await
            .into_iter()
            .map(|(_, kind, _)| kind)
            .collect();
        assert_eq!(kinds, ["queued", "claimed", "lost"], "{id}");
    }
}

async fn two_takers_of_one_free_identity_get_it_once(db: TestDb) {
    let nodes = [db.open().await, db.open().await];
    let now = now_ms();
    for round in 0..10 {
        let id = format!("n/{round}");
        let takers: Vec<_> = (0..4)
            .map(|p| {
                let (store, id) = (nodes[p % 2].clone(), id.clone());
                tokio::spawn(async move {
                    store
                        .take_identity(&id, "n", None, &format!("p{p}"), 10_000, now)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut won = 0;
        for t in takers {
            won += usize::from(t.await.unwrap().is_some());
        }
        assert_eq!(won, 1, "{id} has one holder");
    }
}

/// A process frozen past its hold (p1) and the process that took its identity over (p2): p1's
/// claims are refused, and every write about the attempt it claimed under its old hold too;
/// the attempt keeps its lease (p1 may still run it) until the lease expires, then the job
/// runs again under p2's hold.
async fn a_process_that_lost_its_identity_claims_nothing_and_its_attempts_are_fenced_out(
    db: TestDb,
) {
    let store = db.open().await;
    with_jobs(&store, 2, 3).await;
    let now = now_ms();
    let old = take(&*store, "n/0", "p1").await;
    let c = store.claim(&old, &[], 60_000, now).await.unwrap().unwrap();
    let new = take(&*store, "n/0", "p2").await;
    assert_eq!(store.recover_agent(&new, None, now).await.unwrap(), 0);

    assert_eq!(
        store.claim(&old, &[], 60_000, now).await,
        Err(StoreError::IdentityLost("n/0".into()))
    );
    let t = &c.lease_token;
    let stale = Err(StoreError::StaleLease);
    assert_eq!(store.heartbeat(t, 60_000, now).await.map(|_| ()), stale);
    assert_eq!(store.set_progress(t, 50, "half").await, stale);
    assert_eq!(store.save_checkpoint(t, b"late").await, stale);
    let wrote = success_with(vec![], &[("", "k", Some(b"v"))]);
    assert_eq!(
        store
            .finish_attempt(t, wrote.clone(), now)
            .await
            .map(|_| ()),
        stale
    );
    assert_eq!(
        store
            .finish_and_claim(t, wrote, &old, &[], 60_000, now)
            .await
            .map(|_| ()),
        stale
    );
    assert_eq!(
        store.kv_read("s", "", "k").await.unwrap(),
        KvValue::default()
    );
    let job = store.get_job(&c.job.id).await.unwrap().unwrap();
    assert_eq!(
        (job.job.status, job.job.progress, job.job.output),
        (JobStatus::Running, None, None)
    );
    assert_eq!(job.attempt_list[0].holder.as_deref(), Some("p1"));
    assert_eq!(
        store.reap_expired(now + 1_000).await.unwrap(),
        0,
        "a fenced-out attempt keeps its lease: its process may still run it"
    );

    // The new holder claims the next job meanwhile, and the first once its lease expired.
    let next = store.claim(&new, &[], 600_000, now).await.unwrap().unwrap();
    assert_ne!(next.job.id, c.job.id);
    assert_eq!(store.reap_expired(now + 60_001).await.unwrap(), 1);
    let again = store
        .claim(&new, &[], 600_000, now + 60_002)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.job.id.as_str(), again.attempt),
        (c.job.id.as_str(), 2)
    );
    store
        .finish_attempt(&again.lease_token, end(Next::Succeed(b"1".to_vec())), now)
        .await
        .unwrap();
    let job = store.get_job(&c.job.id).await.unwrap().unwrap();
    let runs: Vec<_> = job
        .attempt_list
        .iter()
        .map(|a| (a.state, a.holder.as_deref()))
        .collect();
    assert_eq!(
        runs,
        [
            (AttemptState::Lost, Some("p1")),
            (AttemptState::Succeeded, Some("p2"))
        ]
    );
}

/// Recovery by an identity's new holder loses the attempts a dead previous holder left under
/// it at once, and nothing else: not those of a holder not known dead, not those of other
/// identities, not its own.
async fn a_new_holder_recovers_only_what_a_dead_holder_left(db: TestDb) {
    let store = db.open().await;
    with_jobs(&store, 3, 3).await;
    let now = now_ms();
    let (p1_n0, p1_n1) = (
        take(&*store, "n/0", "p1").await,
        take(&*store, "n/1", "p1").await,
    );
    let left = store
        .claim(&p1_n0, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let other = store
        .claim(&p1_n1, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let p2 = take(&*store, "n/0", "p2").await;
    assert_eq!(
        store.recover_agent(&p2, Some("p9"), now).await.unwrap(),
        0,
        "another process's death says nothing about p1"
    );
    let mine = store.claim(&p2, &[], 60_000, now).await.unwrap().unwrap();
    assert_eq!(
        store.recover_agent(&p2, Some("p1"), now).await.unwrap(),
        1,
        "p1 died: what it left under n/0 is lost at once"
    );
    assert_eq!(
        store.recover_agent(&p2, Some("p2"), now).await.unwrap(),
        0,
        "attempts under the recovering hold are its own"
    );
    let state = async |id: &str| {
        let job = store.get_job(id).await.unwrap().unwrap();
        (job.job.status, job.attempt_list[0].state)
    };
    assert_eq!(
        state(&left.job.id).await,
        (JobStatus::Queued, AttemptState::Lost)
    );
    for c in [&other, &mine] {
        assert_eq!(
            state(&c.job.id).await,
            (JobStatus::Running, AttemptState::Running)
        );
    }
    let last = store
        .events(&left.job.id, None, 1000)
        .await
        .unwrap()
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        last.message,
        "attempt 1 on n/0 was lost (its agent restarted under the same identity); the job is queued again"
    );
}

fn token(name: &str, hash: &str, scopes: &[&str]) -> TokenRecord {
    TokenRecord {
        name: name.into(),
        hash: hash.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        created_ms: 1_000,
        created_by: "admin".into(),
        last_used_ms: None,
    }
}

async fn tokens_are_kept_by_hash_with_unique_names_until_revoked(db: TestDb) {
    {
        let store = db.open().await;
        assert!(store.list_tokens().await.unwrap().is_empty());
        store
            .create_token(token("ci", &"a".repeat(64), &["read", "submit"]))
            .await
            .unwrap();
        store
            .create_token(token("ops", &"b".repeat(64), &["admin"]))
            .await
            .unwrap();
        // A name is taken once; the first token is unchanged.
        let taken = store
            .create_token(token("ci", &"c".repeat(64), &["deploy"]))
            .await
            .unwrap_err();
        assert!(
            matches!(&taken, StoreError::Conflict(m) if m.contains("ci")),
            "{taken:?}"
        );
        store.touch_token("ops", 5_000).await.unwrap();
    }
    // Another handle (a restarted daemon, or another node of the cluster) sees the same.
    let store = db.open().await;
    let mut ops = token("ops", &"b".repeat(64), &["admin"]);
    ops.last_used_ms = Some(5_000);
    assert_eq!(
        store.list_tokens().await.unwrap(),
        vec![
            token("ci", &"a".repeat(64), &["read", "submit"]),
            ops.clone()
        ]
    );
    assert!(store.revoke_token("ci").await.unwrap());
    assert!(!store.revoke_token("ci").await.unwrap());
    assert_eq!(store.list_tokens().await.unwrap(), vec![ops]);
    // A revoked name can be used again.
    store
        .create_token(token("ci", &"d".repeat(64), &["read"]))
        .await
        .unwrap();
    assert_eq!(store.list_tokens().await.unwrap().len(), 2);
}

/// PostgreSQL's own promises: several nodes on one database.
mod postgres_only {
    use super::{Agents, end, new_job, run_agent, take, version, with_jobs};
    use driftless::store::postgres::{Notice, PostgresStore};
    use driftless::store::{
        AttemptStore, BlobStore, DeleteOutcome, JobStatus, JobStore, Next, RetentionStore, Store,
        StoreError, TaskStore, now_ms,
    };
    use driftless_tests::stores::{Backend, TestDb, fresh_database};
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::broadcast;

    async fn admin(url: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    }

    fn message(e: StoreError) -> String {
        match e {
            StoreError::Backend(m) => m,
            other => panic!("expected a backend error, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn nodes_starting_together_apply_each_migration_once() {
        let url = fresh_database().await;
        let starts: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { PostgresStore::connect(&url).await })
            })
            .collect();
        let mut stores = Vec::new();
        for s in starts {
            stores.push(s.await.unwrap().expect("every node starts"));
        }
        let applied: Vec<(i32, i64)> = admin(&url)
            .await
            .query(
                "SELECT version, COUNT(*) FROM schema_migrations GROUP BY version ORDER BY version",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert!(applied.len() >= 2, "{applied:?}");
        for (i, (version, count)) in applied.iter().enumerate() {
            assert_eq!((*version, *count), (i as i32 + 1, 1), "{applied:?}");
        }
        // And the schema works from every node.
        stores[3].put_blob("c0ffee", b"component").await.unwrap();
        stores[0].insert_job(new_job("j", 1)).await.unwrap();
        assert!(stores[2].get_job("j").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_database_from_a_newer_driftless_is_refused_naming_both_versions() {
        let url = fresh_database().await;
        drop(PostgresStore::connect(&url).await.unwrap());
        admin(&url)
            .await
            .execute("INSERT INTO schema_migrations VALUES (99, 0)", &[])
            .await
            .unwrap();
        let m = message(PostgresStore::connect(&url).await.unwrap_err());
        assert!(
            m.contains("schema version 99")
                && m.contains("versions 1 to")
                && m.contains("upgrade driftless"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_says_where_and_what_to_do_without_the_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://driftless:hunter2@127.0.0.1:{port}/jobs");
        let m = message(PostgresStore::connect(&url).await.unwrap_err());
        assert!(
            m.contains(&format!("driftless@127.0.0.1:{port}/jobs"))
                && m.contains("DRIFTLESS_STORE")
                && !m.contains("hunter2"),
            "{m}"
        );
        let m = message(
            PostgresStore::connect("postgres://driftless:hunter2@127.0.0.1:port/jobs")
                .await
                .unwrap_err(),
        );
        assert!(m.contains("not valid") && !m.contains("hunter2"), "{m}");
    }

    /// Two nodes (two stores on one database), eight agents each, every agent finishing its
    /// attempt and claiming the next in one transaction.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn claims_from_two_nodes_never_share_an_attempt() {
        let db = TestDb::new(Backend::Postgres).await;
        let nodes: [Arc<dyn Store>; 2] = [db.open().await, db.open().await];
        let ids = with_jobs(&nodes[0], 400, 1).await;
        let mut agents = Vec::new();
        for (n, store) in nodes.iter().enumerate() {
            for a in 0..8 {
                let run = run_agent(store.clone(), format!("node-{n}/{a}"));
                agents.push(tokio::spawn(async move {
                    let claims = run.await;
                    claims
                        .into_iter()
                        .map(|c| (n, c.job.id, c.attempt, c.lease_token))
                        .collect::<Vec<_>>()
                }));
            }
        }
        let mut done = Vec::new();
        for a in agents {
            done.extend(a.await.unwrap());
        }
        assert_eq!(done.len(), ids.len(), "every job claimed exactly once");
        let unique: HashSet<&String> = done.iter().map(|(_, id, _, _)| id).collect();
        assert_eq!(unique.len(), ids.len(), "no job claimed twice");
        let tokens: HashSet<&String> = done.iter().map(|(_, _, _, t)| t).collect();
        assert_eq!(tokens.len(), ids.len(), "lease tokens are unique");
        assert!(done.iter().all(|(_, _, attempt, _)| *attempt == 1));
        for n in 0..2 {
            assert!(
                done.iter().any(|(node, ..)| *node == n),
                "node {n} claimed nothing: claimers must not wait for each other"
            );
        }
        for id in &ids {
            let record = nodes[1].get_job(id).await.unwrap().unwrap();
            assert_eq!(record.job.status, JobStatus::Succeeded);
            assert_eq!(record.attempt_list.len(), 1, "{id} ran once");
        }
    }

    /// Claims take rows from the `queue` table: it must hold exactly the queued jobs, whatever
    /// moved them (insert, claim, retry, interruption, lost attempts, cancellation).
    #[tokio::test]
    async fn the_queue_table_holds_exactly_the_queued_jobs() {
        let db = TestDb::new(Backend::Postgres).await;
        let store = db.open().await;
        let ag = Agents::new(&store);
        let ids = with_jobs(&store, 8, 2).await;
        let now = now_ms() + 1_000;
        let mut claims = Vec::new();
        for _ in 0..6 {
            claims.push(
                store
                    .claim(&ag.get("w/0").await, &[], 10, now)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        let retry = Next::Retry {
            failure: driftless::store::JobFailure {
                code: "x".into(),
                message: "y".into(),
                retryable: true,
            },
            after_ms: 60_000,
        };
        store
            .finish_attempt(&claims[0].lease_token, end(retry), now)
            .await
            .unwrap();
        store
            .finish_attempt(&claims[1].lease_token, end(Next::Requeue), now)
            .await
            .unwrap();
        store
            .finish_attempt(
                &claims[2].lease_token,
                end(Next::Succeed(b"1".to_vec())),
                now,
            )
            .await
            .unwrap();
        store.cancel_job(&claims[3].job.id, now).await.unwrap();
        store.cancel_job(&ids[7], now).await.unwrap();
        // Claims 3 (cancel requested), 4 and 5 expire: 4 and 5 go back to the queue, and 3 is
        // cancelled, not queued again.
        assert_eq!(store.reap_expired(now + 100).await.unwrap(), 3);

        let client = admin(db.url().unwrap()).await;
        let set = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
            rows.iter().map(|r| r.get(0)).collect()
        };
        let queued = set(client
            .query(
                "SELECT id FROM jobs WHERE status = 'queued' ORDER BY id",
                &[],
            )
            .await
            .unwrap());
        let in_queue = set(client
            .query("SELECT job_id FROM queue ORDER BY job_id", &[])
            .await
            .unwrap());
        assert_eq!(
            queued,
            ["job-0000", "job-0001", "job-0004", "job-0005", "job-0006"]
        );
        assert_eq!(in_queue, queued);
    }

    /// Another node holds the head of the queue locked (mid-claim): a claim takes the next
    /// job at once instead of waiting for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_skips_a_job_another_node_holds_locked() {
        let db = TestDb::new(Backend::Postgres).await;
        let store = db.open().await;
        let ag = Agents::new(&store);
        with_jobs(&store, 2, 1).await;
        let mut other = admin(db.url().unwrap()).await;
        let tx = other.transaction().await.unwrap();
        tx.execute(
            "SELECT 1 FROM queue WHERE job_id = 'job-0000' FOR UPDATE",
            &[],
        )
        .await
        .unwrap();
        let claim = tokio::time::timeout(
            Duration::from_secs(5),
            store.claim(&ag.get("w/0").await, &[], 60_000, now_ms() + 1_000),
        )
        .await
        .expect("the claim does not wait for the locked job")
        .unwrap()
        .unwrap();
        assert_eq!(claim.job.id, "job-0001");
        tx.rollback().await.unwrap();
        let claim = store
            .claim(&ag.get("w/0").await, &[], 60_000, now_ms() + 1_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claim.job.id, "job-0000", "released, it is claimable again");
    }

    /// Jobs pinned to a version race the version's removal from another node: whichever
    /// commits second sees the other, so no queued job ever pins an unregistered version.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn inserts_pinned_to_a_version_racing_its_removal_never_leave_it_pinned_and_gone() {
        let db = TestDb::new(Backend::Postgres).await;
        let nodes: [Arc<dyn Store>; 2] = [db.open().await, db.open().await];
        let (mut deleted, mut pinned) = (0, 0);
        for round in 0..40 {
            let (old, new) = (format!("c{round}-old"), format!("c{round}-new"));
            for c in [&old, &new] {
                nodes[0].put_blob(c, c.as_bytes()).await.unwrap();
            }
            let v = nodes[0]
                .deploy_task(version("t", &old, "ann"))
                .await
                .unwrap();
            nodes[0]
                .deploy_task(version("t", &new, "ann"))
                .await
                .unwrap();
            // Some rounds give the delete a head start: both orders are raced.
            let head_start = Duration::from_millis(round % 3);
            let start = Arc::new(tokio::sync::Barrier::new(9));
            let inserts: Vec<_> = (0..8)
                .map(|i| {
                    let (store, start) = (nodes[0].clone(), start.clone());
                    let mut job = new_job(&format!("r{round}-{i}"), 1);
                    job.component = old.clone();
                    job.task = Some(driftless::store::TaskPin::new("t", v.version));
                    tokio::spawn(async move {
                        start.wait().await;
                        if !head_start.is_zero() {
                            tokio::time::sleep(head_start).await;
                        }
                        store.insert_job(job).await
                    })
                })
                .collect();
            let (store, go) = (nodes[1].clone(), start.clone());
            let delete = tokio::spawn(async move {
                go.wait().await;
                store
                    .delete_task_version("t", v.version, "bob", "r", now_ms())
                    .await
                    .unwrap()
            });
            let (mut stored, mut refused) = (0, 0);
            for insert in inserts {
                match insert.await.unwrap() {
                    Ok(inserted) => stored += u64::from(inserted.created),
                    Err(StoreError::TaskVersionGone { version, .. }) if version == v.version => {
                        refused += 1
                    }
                    Err(other) => panic!("round {round}: {other:?}"),
                }
            }
            let outcome = delete.await.unwrap();
            let task = nodes[1].get_task("t", 1000).await.unwrap().unwrap();
            let row = &task.versions[v.version as usize - 1];
            let live = row.jobs.queued + row.jobs.running;
            match outcome {
                DeleteOutcome::Deleted => {
                    deleted += 1;
                    assert!(row.deleted_ms.is_some());
                    assert_eq!(
                        (live, stored),
                        (0, 0),
                        "round {round}: version {} was removed while jobs pinned it",
                        v.version
                    );
                    assert_eq!(refused, 8, "round {round}");
                }
                DeleteOutcome::Pinned { count, .. } => {
                    pinned += 1;
                    assert!(row.deleted_ms.is_none(), "round {round}");
                    assert!(count >= 1 && count <= stored, "round {round}");
                    assert_eq!((live, stored, refused), (8, 8, 0), "round {round}");
                }
            }
        }
        eprintln!("40 rounds: the delete won {deleted}, the pinning jobs won {pinned}");
    }

    /// The next message a listener hears, within 10 s.
    async fn heard<T: Clone>(rx: &mut broadcast::Receiver<T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a notification within 10 s")
            .expect("the listener is open")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notifications_reach_a_listener_after_queueing_and_moving_a_task() {
        let db = TestDb::new(Backend::Postgres).await;
        let url = db.url().unwrap();
        let node_a = PostgresStore::connect(url).await.unwrap();
        let node_b = PostgresStore::connect(url).await.unwrap();
        let mut rx = node_b.listen().await.unwrap();

        node_a.put_blob("c0ffee", b"component").await.unwrap();
        node_a.insert_job(new_job("j1", 1)).await.unwrap();
        assert_eq!(heard(&mut rx).await, Notice::Jobs);

        for c in ["c1", "c2"] {
            node_a.put_blob(c, c.as_bytes()).await.unwrap();
            node_a.deploy_task(version("t", c, "ann")).await.unwrap();
            assert_eq!(heard(&mut rx).await, Notice::Task("t".into()));
        }
        node_a
            .rollback_task("t", None, "bob", "r1", now_ms())
            .await
            .unwrap();
        assert_eq!(heard(&mut rx).await, Notice::Task("t".into()));
        // A component retention deletes is told (its hash), so nodes forget it.
        node_a.put_blob("loose", b"loose").await.unwrap();
        let deleted = node_a.expire_blobs(now_ms() + 1, 10).await.unwrap();
        assert_eq!(deleted.hashes, ["loose"]);
        assert_eq!(
            heard(&mut rx).await,
            Notice::ComponentDeleted("loose".into())
        );
        // Deploying the same bytes changes nothing and tells nobody: the next notice is the
        // job queued after it.
        let same = node_a.deploy_task(version("t", "c2", "cy")).await.unwrap();
        assert!(!same.changed);
        node_a.insert_job(new_job("j2", 1)).await.unwrap();
        assert_eq!(heard(&mut rx).await, Notice::Jobs);
        // A refused rollback commits nothing and tells nobody either.
        assert!(
            node_a
                .rollback_task("t", Some(9), "dee", "r2", now_ms())
                .await
                .is_err()
        );
        node_a.insert_job(new_job("j3", 1)).await.unwrap();
        assert_eq!(heard(&mut rx).await, Notice::Jobs);
    }

    /// A job waited for on one node and run on another: the waiting node hears it finished.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finished_jobs_are_announced_to_every_node() {
        let db = TestDb::new(Backend::Postgres).await;
        let url = db.url().unwrap();
        let runner = PostgresStore::connect(url).await.unwrap();
        let waiter = PostgresStore::connect(url).await.unwrap();
        let mut done = waiter.listen_finished().await.unwrap();
        runner.put_blob("c0ffee", b"component").await.unwrap();
        let now = now_ms() + 1_000;
        for id in ["ok", "next", "retried", "cancelled", "lost"] {
            runner.insert_job(new_job(id, 1)).await.unwrap();
        }
        let w0 = take(&runner, "w/0", "suite").await;
        let ok = runner.claim(&w0, &[], 60_000, now).await.unwrap().unwrap();
        let (_, next) = runner
            .finish_and_claim(
                &ok.lease_token,
                end(Next::Succeed(b"1".to_vec())),
                &w0,
                &[],
                60_000,
                now,
            )
            .await
            .unwrap();
        assert_eq!(heard(&mut done).await, "ok");
        let next = next.unwrap();
        assert_eq!(next.job.id, "next");
        let retry = Next::Retry {
            failure: driftless::store::JobFailure {
                code: "x".into(),
                message: "y".into(),
                retryable: true,
            },
            after_ms: 60_000,
        };
        let (_, retried) = runner
            .finish_and_claim(&next.lease_token, end(retry), &w0, &[], 60_000, now)
            .await
            .unwrap();
        // "next" was queued again, not finished: the next announcement is another job's.
        let retried = retried.unwrap();
        assert_eq!(retried.job.id, "retried");
        runner
            .finish_attempt(
                &retried.lease_token,
                end(Next::Fail(super::failure("bad", "no"))),
                now,
            )
            .await
            .unwrap();
        assert_eq!(heard(&mut done).await, "retried");
        runner.cancel_job("cancelled", now).await.unwrap();
        assert_eq!(heard(&mut done).await, "cancelled");
        let w1 = take(&runner, "w/1", "suite").await;
        runner.claim(&w1, &[], 10, now).await.unwrap().unwrap();
        assert_eq!(runner.reap_expired(now + 100).await.unwrap(), 1);
        assert_eq!(heard(&mut done).await, "lost", "out of attempts");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_listener_reconnects_and_says_so_when_its_connection_drops() {
        let db = TestDb::new(Backend::Postgres).await;
        let url = db.url().unwrap();
        let store = PostgresStore::connect(url).await.unwrap();
        let mut rx = store.listen().await.unwrap();
        let killed = admin(url)
            .await
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE application_name = 'driftless-listen' AND datname = current_database()",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(killed.len(), 1, "one listening connection");
        assert_eq!(heard(&mut rx).await, Notice::Reconnected);
        store.put_blob("c0ffee", b"component").await.unwrap();
        store.insert_job(new_job("j", 1)).await.unwrap();
        assert_eq!(heard(&mut rx).await, Notice::Jobs);
    }
}

/// `activity`: the queue depth and running attempts at each bucket's end, and the jobs that
/// ended within it, from the rows' own times (a job open before the window counts from the
/// first bucket).
async fn activity_counts_waiting_running_and_ended_jobs_per_bucket(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    store.put_blob("c0ffee", b"component").await.unwrap();
    let base = now_ms();
    // a: accepted before the window, runs in bucket 1, succeeds in bucket 2.
    // b: accepted in bucket 0, runs in bucket 3, fails in bucket 4.
    // c: accepted in bucket 0, cancelled while queued in bucket 5.
    store.insert_job(job_at("a", 1, base - 500)).await.unwrap();
    store.insert_job(job_at("b", 1, base + 600)).await.unwrap();
    store.insert_job(job_at("c", 1, base + 700)).await.unwrap();
    let agent = ag.get("node-1/0").await;
    let a = store
        .claim(&agent, &[], 60_000, base + 1500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.job.id, "a");
    store
        .finish_attempt(
            &a.lease_token,
            end(Next::Succeed(b"1".to_vec())),
            base + 2500,
        )
        .await
        .unwrap();
    let b = store
        .claim(&agent, &[], 60_000, base + 3500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.job.id, "b");
    let failure = JobFailure {
        code: "boom".into(),
        message: "it broke".into(),
        retryable: false,
    };
    store
        .finish_attempt(&b.lease_token, end(Next::Fail(failure)), base + 4500)
        .await
        .unwrap();
    store.cancel_job("c", base + 5500).await.unwrap();

    let buckets = store.activity(base, 1000, 7).await.unwrap();
    let got: Vec<(u64, u64, u64, u64, u64)> = buckets
        .iter()
        .map(|b| (b.queued, b.running, b.succeeded, b.failed, b.cancelled))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, 0, 0, 0, 0), // a (from before), b, c wait
            (2, 1, 0, 0, 0), // a runs
            (2, 0, 1, 0, 0), // a succeeded
            (1, 1, 0, 0, 0), // b runs
            (1, 0, 0, 1, 0), // b failed
            (0, 0, 0, 0, 1), // c cancelled
            (0, 0, 0, 0, 0),
        ]
    );
}

/// `list_jobs_where`: by status, task, version and node (a job is on a node when one of its
/// attempts ran under the node's agents), newest first, paged by `seq`.
async fn jobs_list_by_task_and_node(db: TestDb) {
    use driftless::store::JobFilter;
    let store = db.open().await;
    let ag = Agents::new(&store);
    store.put_blob("c0ffee", b"component").await.unwrap();
    store
        .deploy_task(version("t", "c0ffee", "ann"))
        .await
        .unwrap();
    for (id, task) in [("t1", true), ("raw", false), ("t2", true)] {
        let mut job = new_job(id, 1);
        job.task = task.then(|| TaskPin::new("t", 1));
        store.insert_job(job).await.unwrap();
    }
    // t1 runs on node-a, raw on node-ab (a prefix of no other node's agents).
    let on_a = store
        .claim(&ag.get("node-a/0").await, &[], 60_000, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on_a.job.id, "t1");
    let on_ab = store
        .claim(&ag.get("node-ab/0").await, &[], 60_000, now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on_ab.job.id, "raw");
    let ids = |jobs: Vec<driftless::store::JobSummary>| {
        jobs.into_iter().map(|j| j.id).collect::<Vec<_>>()
    };
    let list = |filter: JobFilter| {
        let store = store.clone();
        async move { ids(store.list_jobs_where(filter, None, 10).await.unwrap()) }
    };
    let by_task = JobFilter {
        task: Some("t".into()),
        ..JobFilter::default()
    };
    assert_eq!(list(by_task.clone()).await, ["t2", "t1"]);
    assert_eq!(
        list(JobFilter {
            version: Some(1),
            ..by_task.clone()
        })
        .await,
        ["t2", "t1"]
    );
    assert!(
        list(JobFilter {
            version: Some(2),
            ..by_task.clone()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(JobFilter {
            node: Some("node-a".into()),
            ..JobFilter::default()
        })
        .await,
        ["t1"]
    );
    assert_eq!(
        list(JobFilter {
            node: Some("node-ab".into()),
            ..JobFilter::default()
        })
        .await,
        ["raw"]
    );
    assert!(
        list(JobFilter {
            node: Some("node".into()),
            ..JobFilter::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(JobFilter {
            status: Some(JobStatus::Queued),
            ..by_task.clone()
        })
        .await,
        ["t2"]
    );
    let first = store
        .list_jobs_where(by_task.clone(), None, 1)
        .await
        .unwrap();
    assert_eq!(
        ids(store
            .list_jobs_where(by_task, Some(first[0].seq), 10)
            .await
            .unwrap()),
        ["t1"]
    );
}

/// A job with a place in the queue: `turn` on top of [`job_at`].
fn job_with(id: &str, now_ms: i64, turn: Turn) -> NewJob {
    NewJob {
        turn,
        ..job_at(id, 3, now_ms)
    }
}

fn keyed(key: &str, limit: u32) -> Turn {
    Turn {
        concurrency: Some(ConcurrencyKey {
            key: key.into(),
            limit,
        }),
        ..Turn::default()
    }
}

/// Claim everything claimable at `now` with agent `a/0`: the jobs' ids in claim order, with
/// their lease tokens.
async fn claim_all(store: &Arc<dyn Store>, ag: &Agents, now: i64) -> Vec<(String, String)> {
    let mut got = Vec::new();
    while let Some(c) = store
        .claim(&ag.get("a/0").await, &[], 60_000, now)
        .await
        .unwrap()
    {
        got.push((c.job.id, c.lease_token));
    }
    got
}

fn ids(claims: &[(String, String)]) -> Vec<&str> {
    claims.iter().map(|(id, _)| id.as_str()).collect()
}

async fn claims_take_the_highest_priority_first_then_the_longest_ready(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    store.put_blob("c0ffee", b"component").await.unwrap();
    let now = now_ms();
    for (i, (id, priority)) in [("a0", 0), ("b5", 5), ("c-1", -1), ("d5", 5), ("e0", 0)]
        .into_iter()
        .enumerate()
    {
        let turn = Turn {
            priority,
            ..Turn::default()
        };
        let inserted = store
            .insert_job(job_with(id, now + i as i64, turn))
            .await
            .unwrap();
        assert_eq!(inserted.job.priority, priority, "read back as written");
    }
    let order = claim_all(&store, &ag, now + 10).await;
    assert_eq!(ids(&order), ["b5", "d5", "a0", "e0", "c-1"]);
}

async fn delayed_jobs_wait_for_their_time_and_are_promoted_once(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    store.put_blob("c0ffee", b"component").await.unwrap();
    let now = now_ms();
    let later = |ms: i64| Turn {
        not_before_ms: Some(now + ms),
        ..Turn::default()
    };
    let stored = store
        .insert_job(job_with("late", now, later(5_000)))
        .await
        .unwrap();
    assert_eq!(stored.job.run_after_ms, now + 5_000);
    store
        .insert_job(job_with("past", now, later(-5_000)))
        .await
        .unwrap();
    store
        .insert_job(job_with(
            "urgent-but-late",
            now,
            Turn {
                priority: 9,
                ..later(5_000)
            },
        ))
        .await
        .unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(now + 5_000));
    // A time already past runs at once; nothing else is claimable before its time.
    assert_eq!(ids(&claim_all(&store, &ag, now + 4_999).await), ["past"]);
    assert_eq!(store.promote_due(now + 4_999, 100).await.unwrap(), 0);
    // Two nodes promoting at once promote each job once.
    let other = db.open().await;
    let (a, b) = tokio::join!(
        store.promote_due(now + 5_000, 100),
        other.promote_due(now + 5_000, 100)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 2);
    assert_eq!(store.next_due().await.unwrap(), None);
    assert_eq!(
        ids(&claim_all(&store, &ag, now + 5_000).await),
        ["urgent-but-late", "late"],
        "once ready, priority orders them"
    );
}

async fn a_concurrency_key_never_has_more_jobs_ready_or_running_than_its_limit(db: TestDb) {
    let store = db.open().await;
    let ag = Agents::new(&store);
    store.put_blob("c0ffee", b"component").await.unwrap();
    let now = now_ms();
    for i in 0..5 {
        store
            .insert_job(job_with(&format!("k{i}"), now + i, keyed("acme", 2)))
            .await
            .unwrap();
    }
    store
        .insert_job(job_with("free", now + 5, Turn::default()))
        .await
        .unwrap();
    store
        .insert_job(job_with("other", now + 6, keyed("globex", 1)))
        .await
        .unwrap();
    let first = claim_all(&store, &ag, now + 10).await;
    assert_eq!(
        ids(&first),
        ["k0", "k1", "free", "other"],
        "two of acme's five"
    );
    let record = store.get_job("k0").await.unwrap().unwrap();
    assert_eq!(
        record.job.concurrency,
        Some(ConcurrencyKey {
            key: "acme".into(),
            limit: 2
        })
    );

    // A finish frees its slot for the longest waiting.
    store
        .finish_attempt(&first[0].1, end(Next::Succeed(b"1".to_vec())), now + 11)
        .await
        .unwrap();
    let second = claim_all(&store, &ag, now + 12).await;
    assert_eq!(ids(&second), ["k2"]);

    // A retry waiting out its backoff holds no slot; once due it waits for one again.
    let failure = JobFailure {
        code: "flaky".into(),
        message: "try again".into(),
        retryable: true,
    };
    store
        .finish_attempt(
            &first[1].1,
            end(Next::Retry {
                failure,
                after_ms: 1_000,
            }),
            now + 13,
        )
        .await
        .unwrap();
    let third = claim_all(&store, &ag, now + 14).await;
    assert_eq!(ids(&third), ["k3"]);
    assert_eq!(store.promote_due(now + 1_013, 100).await.unwrap(), 1);
    assert!(
        claim_all(&store, &ag, now + 1_014).await.is_empty(),
        "k1's retry is due, but acme's two slots are held (k2, k3)"
    );

    // Cancelling a parked job frees nothing and takes it out; cancelling a ready one frees
    // its slot.
    let k4 = store.cancel_job("k4", now + 1_015).await.unwrap();
    assert_eq!(k4.status, JobStatus::Cancelled);
    store
        .finish_attempt(&second[0].1, end(Next::Succeed(b"1".to_vec())), now + 1_016)
        .await
        .unwrap();
    // k1 (ready again) is cancelled before any agent claims it: k3 alone holds a slot.
    store.cancel_job("k1", now + 1_017).await.unwrap();
    store
        .insert_job(job_with("k5", now + 1_018, keyed("acme", 2)))
        .await
        .unwrap();
    let fourth = claim_all(&store, &ag, now + 1_019).await;
    assert_eq!(ids(&fourth), ["k5"]);
}

/// Agents on two store handles (as on two nodes) run jobs sharing a key with limit 2: at no
/// time do more than two of them run, and every job runs once.
async fn many_agents_never_run_more_jobs_of_a_key_than_its_limit(db: TestDb) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let stores = [db.open().await, db.open().await];
    stores[0].put_blob("c0ffee", b"component").await.unwrap();
    let now = now_ms();
    for i in 0..40 {
        stores[0]
            .insert_job(job_with(&format!("j{i:02}"), now + i, keyed("acme", 2)))
            .await
            .unwrap();
    }
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut agents = Vec::new();
    for a in 0..8 {
        let store = stores[a % 2].clone();
        let (running, most) = (running.clone(), most.clone());
        agents.push(tokio::spawn(async move {
            let agent = take(&*store, &format!("race/{a}"), "suite").await;
            let mut ran = Vec::new();
            let mut idle = 0;
            while idle < 50 {
                let Some(c) = store.claim(&agent, &[], 60_000, now_ms()).await.unwrap() else {
                    idle += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    continue;
                };
                idle = 0;
                let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now_running, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                store
                    .finish_attempt(&c.lease_token, end(Next::Succeed(b"1".to_vec())), now_ms())
                    .await
                    .unwrap();
                ran.push(c.job.id);
            }
            ran
        }));
    }
    let mut ran = Vec::new();
    for a in agents {
        ran.extend(a.await.unwrap());
    }
    let unique: HashSet<&String> = ran.iter().collect();
    assert_eq!((ran.len(), unique.len()), (40, 40), "each job ran once");
    // Without the key, eight agents holding each job 20 ms would run up to eight at once.
    assert!(
        most.load(Ordering::SeqCst) <= 2,
        "more than two ran at once: {}",
        most.load(Ordering::SeqCst)
    );
}

async fn a_task_versions_limit_is_part_of_the_version(db: TestDb) {
    let store = db.open().await;
    store.put_blob("c1", b"one").await.unwrap();
    let limited = |n| NewTaskVersion {
        max_concurrency: n,
        ..version("t", "c1", "ana")
    };
    assert_eq!(
        store.deploy_task(limited(Some(2))).await.unwrap().version,
        1
    );
    let resolved = store.resolve_task("t", None).await.unwrap();
    assert_eq!(resolved.max_concurrency, Some(2));
    assert_eq!(
        resolved.concurrency(),
        Some(ConcurrencyKey {
            key: "task:t".into(),
            limit: 2
        })
    );
    let again = store.deploy_task(limited(Some(2))).await.unwrap();
    assert_eq!(
        (again.version, again.changed),
        (1, false),
        "the same version"
    );
    let other = store.deploy_task(limited(Some(5))).await.unwrap();
    assert_eq!(
        (other.version, other.changed),
        (2, true),
        "the same bytes with another limit are a new version"
    );
    let unlimited = store.deploy_task(limited(None)).await.unwrap();
    assert_eq!(unlimited.version, 3);
    assert_eq!(
        store.resolve_task("t", None).await.unwrap().concurrency(),
        None
    );
    assert_eq!(
        store
            .resolve_task("t", Some(2))
            .await
            .unwrap()
            .max_concurrency,
        Some(5)
    );
    let task = store.get_task("t", 10).await.unwrap().unwrap();
    let limits: Vec<Option<u32>> = task.versions.iter().map(|v| v.max_concurrency).collect();
    assert_eq!(limits, [Some(2), Some(5), None], "oldest first");
}

const DAY_MS: i64 = 86_400_000;

/// Claim the head of the queue with `agent` and end its attempt with `end` at `at`; the job's id.
async fn run_once(store: &Arc<dyn Store>, agent: &Held, end: AttemptEnd, at: i64) -> String {
    let claim = store
        .claim(agent, &[], 60_000, at)
        .await
        .unwrap()
        .expect("a job to claim");
    store
        .finish_attempt(&claim.lease_token, end, at)
        .await
        .unwrap();
    claim.job.id
}

async fn retention_deletes_aged_finished_jobs_with_every_row_in_bounded_batches(db: TestDb) {
    let store = db.open().await;
    store.put_blob("c0ffee", b"component").await.unwrap();
    let now = now_ms();
    let old = now - 10 * DAY_MS;
    let agent = take(&*store, "r/0", "suite").await;
    // Five jobs that finished ten days ago, each way a job finishes: succeeded (one with kv
    // data of its own scope), failed, cancelled while queued.
    for id in [
        "old-ok-1",
        "old-ok-2",
        "old-ok-3",
        "old-failed",
        "old-cancelled",
    ] {
        store.insert_job(job_at(id, 1, old)).await.unwrap();
    }
    store.cancel_job("old-cancelled", old).await.unwrap();
    let kv_success = AttemptEnd {
        kv: KvEffects {
            scope: "old-ok-1".into(),
            reads: vec![],
            writes: vec![KvWrite {
                bucket: "b".into(),
                key: "k".into(),
                value: Some(b"v".to_vec()),
            }],
        },
        log: "a log line\n".into(),
        ..end(Next::Succeed(b"out".to_vec()))
    };
    assert_eq!(run_once(&store, &agent, kv_success, old).await, "old-ok-1");
    for _ in 0..2 {
        run_once(&store, &agent, end(Next::Succeed(b"out".to_vec())), old).await;
    }
    let failed = AttemptEnd {
        next: Next::Fail(JobFailure {
            retryable: false,
            ..failure("boom", "no")
        }),
        state: AttemptState::Failed,
        ..end(Next::Cancel)
    };
    assert_eq!(run_once(&store, &agent, failed, old).await, "old-failed");
    assert_eq!(
        store.kv_read("old-ok-1", "b", "k").await.unwrap().value,
        Some(b"v".to_vec())
    );
    // Submitted as long ago but not finished: one running, one queued. And one that finished
    // just now.
    store
        .insert_job(job_at("old-running", 1, old))
        .await
        .unwrap();
    let running = store
        .claim(&agent, &[], 600_000, old)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(running.job.id, "old-running");
    store.insert_job(job_at("new-ok", 1, now)).await.unwrap();
    let other = take(&*store, "r/1", "suite").await;
    assert_eq!(
        run_once(&store, &other, end(Next::Succeed(b"new".to_vec())), now).await,
        "new-ok"
    );
    store
        .insert_job(job_at("old-queued", 1, old))
        .await
        .unwrap();

    // Kept seven days: every batch deletes at most two, oldest first, until none is left.
    let before = now - 7 * DAY_MS;
    let mut batches = Vec::new();
    loop {
        let done = store.expire_jobs(before, 2).await.unwrap();
        assert!(
            done.rows > done.jobs || done.jobs == 0,
            "each job goes with its attempts and events: {done:?}"
        );
        batches.push(done.jobs);
        if done.jobs == 0 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 1, 0], "bounded batches");
    for id in [
        "old-ok-1",
        "old-ok-2",
        "old-ok-3",
        "old-failed",
        "old-cancelled",
    ] {
        assert!(
            store.get_job(id).await.unwrap().is_none(),
            "{id} is deleted"
        );
        assert!(
            store.events(id, None, 10).await.unwrap().is_none(),
            "{id}'s events"
        );
        assert!(
            store.job_logs(id, 10).await.unwrap().is_none(),
            "{id}'s logs"
        );
    }
    assert_eq!(
        store.kv_read("old-ok-1", "b", "k").await.unwrap(),
        KvValue::default(),
        "a job's own kv scope goes with it"
    );
    // Never a running or queued job, however old, nor one that finished within the retention.
    let status = |id: &'static str| {
        let store = store.clone();
        async move { store.get_job(id).await.unwrap().expect(id).job.status }
    };
    assert_eq!(status("old-running").await, JobStatus::Running);
    assert_eq!(status("old-queued").await, JobStatus::Queued);
    assert_eq!(status("new-ok").await, JobStatus::Succeeded);
    assert_eq!(
        events_of(&store, "new-ok").await.len(),
        3,
        "queued, claimed, succeeded"
    );
    // The running attempt still ends normally, and the queued job is still claimed.
    store
        .finish_attempt(
            &running.lease_token,
            end(Next::Succeed(b"late".to_vec())),
            now,
        )
        .await
        .unwrap();
    let claim = store
        .claim(&other, &[], 60_000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.job.id, "old-queued");
    // Once they finished, they are kept the retention from then.
    assert_eq!(store.expire_jobs(before, 10).await.unwrap().jobs, 0);
    assert_eq!(
        store.expire_jobs(now + 1, 10).await.unwrap().jobs,
        2,
        "old-running and new-ok, once finished before the cutoff"
    );
}

async fn retention_deletes_unreferenced_components_after_the_grace_and_referenced_ones_never(
    db: TestDb,
) {
    let store = db.open().await;
    let start = now_ms();
    for c in [
        "queued-c",
        "running-c",
        "pinned-c",
        "unregistered-c",
        "expired-c",
        "loose-c",
    ] {
        assert!(store.put_blob(c, c.as_bytes()).await.unwrap());
    }
    let agent = take(&*store, "b/0", "suite").await;
    let old = start - 10 * DAY_MS;
    let job = |id: &str, component: &str, at: i64| NewJob {
        component: component.into(),
        ..job_at(id, 1, at)
    };
    store
        .insert_job(job("expired", "expired-c", old))
        .await
        .unwrap();
    run_once(&store, &agent, end(Next::Succeed(b"x".to_vec())), old).await;
    store
        .insert_job(job("running", "running-c", old))
        .await
        .unwrap();
    store
        .claim(&agent, &[], 600_000, old)
        .await
        .unwrap()
        .unwrap();
    store
        .insert_job(job("queued", "queued-c", old))
        .await
        .unwrap();
    // A task whose current version pins one component, and a version unregistered since.
    store
        .deploy_task(version("t", "pinned-c", "ann"))
        .await
        .unwrap();
    store
        .deploy_task(version("t", "unregistered-c", "ann"))
        .await
        .unwrap();
    store
        .rollback_task("t", Some(1), "ann", "r1", now_ms())
        .await
        .unwrap();
    store
        .delete_task_version("t", 2, "ann", "r2", now_ms())
        .await
        .unwrap();

    // Within the grace (used since `start`), nothing goes, referenced or not.
    assert!(
        store
            .expire_blobs(start, 10)
            .await
            .unwrap()
            .hashes
            .is_empty()
    );
    // Past it, the unreferenced ones go, one batch at a time; the finished job's once it is
    // deleted.
    let later = now_ms() + 1;
    let first = store.expire_blobs(later, 1).await.unwrap();
    assert_eq!(
        first.hashes,
        ["loose-c"],
        "bounded, and the expired job still holds its own"
    );
    assert_eq!(first.bytes, "loose-c".len() as u64);
    assert!(
        store
            .expire_blobs(later, 10)
            .await
            .unwrap()
            .hashes
            .is_empty()
    );
    assert_eq!(
        store
            .expire_jobs(start - 7 * DAY_MS, 10)
            .await
            .unwrap()
            .jobs,
        1
    );
    let second = store.expire_blobs(later, 10).await.unwrap();
    assert_eq!(second.hashes, ["expired-c"]);
    assert!(
        store
            .expire_blobs(later, 10)
            .await
            .unwrap()
            .hashes
            .is_empty()
    );
    for gone in ["loose-c", "expired-c"] {
        assert_eq!(store.get_blob(gone).await.unwrap(), None, "{gone}");
    }
    for kept in ["queued-c", "running-c", "pinned-c", "unregistered-c"] {
        assert_eq!(
            store.get_blob(kept).await.unwrap().as_deref(),
            Some(kept.as_bytes()),
            "{kept} is referenced and kept"
        );
    }
    // A deleted component uploaded again is stored again.
    assert!(store.put_blob("loose-c", b"loose-c").await.unwrap());
    assert_eq!(
        store.resolve_task("t", None).await.unwrap().component,
        "pinned-c"
    );
}

async fn two_sweepers_at_once_delete_each_job_once(db: TestDb) {
    let store = db.open().await;
    store.put_blob("c0ffee", b"component").await.unwrap();
    let old = now_ms() - 10 * DAY_MS;
    for i in 0..60 {
        let id = format!("old-{i:02}");
        store.insert_job(job_at(&id, 1, old)).await.unwrap();
        store.cancel_job(&id, old).await.unwrap();
    }
    let before = now_ms() - 7 * DAY_MS;
    let sweeper = |store: Arc<dyn Store>| async move {
        let mut deleted = 0;
        loop {
            let n = store.expire_jobs(before, 4).await.unwrap().jobs;
            assert!(n <= 4);
            deleted += n;
            if n == 0 {
                return deleted;
            }
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(sweeper(store.clone())),
        tokio::spawn(sweeper(db.open().await))
    );
    let rest = store.expire_jobs(before, 100).await.unwrap().jobs;
    assert_eq!(a.unwrap() + b.unwrap() + rest, 60, "each job deleted once");
    assert_eq!(store.list_jobs(None, None, 100).await.unwrap().len(), 0);
}

/// A concurrency key's row goes with the last job of the key that retention deletes, never
/// while a job of the key waits: counted in the rows a batch deletes (one job each, each with
/// one attempt and three events).
async fn retention_forgets_a_concurrency_key_with_its_last_job(db: TestDb) {
    let store = db.open().await;
    store.put_blob("c0ffee", b"component").await.unwrap();
    let old = now_ms() - 10 * DAY_MS;
    let agent = take(&*store, "r/0", "suite").await;
    for (i, (id, turn)) in [
        ("plain", Turn::default()),
        ("last-of-gone", keyed("gone", 1)),
        ("one-of-kept", keyed("kept", 1)),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .insert_job(job_with(id, old + i as i64, turn))
            .await
            .unwrap();
        run_once(
            &store,
            &agent,
            end(Next::Succeed(b"1".to_vec())),
            old + i as i64,
        )
        .await;
    }
    store
        .insert_job(job_with("waiting", now_ms(), keyed("kept", 1)))
        .await
        .unwrap();
    let before = now_ms() - DAY_MS;
    let mut deleted = Vec::new();
    for _ in 0..3 {
        let done = store.expire_jobs(before, 1).await.unwrap();
        assert_eq!(done.jobs, 1);
        deleted.push(done.rows);
    }
    let plain = deleted[0];
    assert_eq!(
        deleted,
        [plain, plain + 1, plain],
        "gone's row went with its last job; kept's stays while a job of it waits"
    );
    assert_eq!(store.expire_jobs(before, 1).await.unwrap().jobs, 0);
}

/// A schedule of task `t` ticking every second, its next tick at `next_ms`.
fn every_second(name: &str, next_ms: i64, now: i64) -> NewSchedule {
    NewSchedule {
        name: name.into(),
        task: "t".into(),
        cron: "* * * * * *".into(),
        timezone: "UTC".into(),
        input: br#"{"n": 1}"#.to_vec(),
        next_tick_ms: next_ms,
        now_ms: now,
    }
}

/// A schedule's job `id` for the tick due at `now` (as read from `store`, decided by the
/// lifecycle's missed-tick policy), fired through `store`; `None` when nothing was due.
async fn fire_at(store: &Arc<dyn Store>, name: &str, now: i64, id: &str) -> Option<NewJob> {
    let s = store.get_schedule(name).await.unwrap()?;
    let due = Timetable::parse(&s.cron, Some(&s.timezone), now)
        .unwrap()
        .due(s.next_tick_ms, now)?;
    Some(NewJob {
        input: s.input.clone(),
        schedule: Some(Firing {
            schedule: s.name.clone(),
            revision: s.revision,
            due_ms: s.next_tick_ms,
            tick_ms: due.tick_ms,
            skipped: due.skipped,
            next_ms: due.next_ms,
        }),
        ..job_at(id, 3, now)
    })
}

/// The jobs a schedule made, oldest tick first: (id, tick).
async fn made_by(store: &Arc<dyn Store>, name: &str) -> Vec<(String, i64)> {
    let mut jobs: Vec<(String, i64)> = store
        .schedule_jobs(name, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.id, j.tick_ms))
        .collect();
    jobs.reverse();
    jobs
}

async fn schedules_are_put_read_listed_and_deleted(db: TestDb) {
    let store = db.open().await;
    let now = 1_000_000;
    assert!(
        store
            .put_schedule(every_second("b", now + 1000, now))
            .await
            .unwrap()
    );
    assert!(
        store
            .put_schedule(every_second("a", now + 1000, now))
            .await
            .unwrap()
    );
    let b = store.get_schedule("b").await.unwrap().unwrap();
    assert_eq!(
        (b.task.as_str(), b.cron.as_str(), b.timezone.as_str()),
        ("t", "* * * * * *", "UTC")
    );
    assert_eq!(b.input, br#"{"n": 1}"#);
    assert_eq!((b.created_ms, b.updated_ms, b.revision), (now, now, 1));
    assert_eq!(
        (b.next_tick_ms, b.last_tick_ms, b.last_job.as_deref()),
        (now + 1000, None, None)
    );
    assert_eq!((b.fired, b.skipped), (0, 0));

    // A put of an existing name replaces it: a new revision, the same creation time.
    let replaced = NewSchedule {
        task: "u".into(),
        cron: "0 30 2 * * *".into(),
        timezone: "Europe/Berlin".into(),
        input: b"null".to_vec(),
        ..every_second("b", now + 9_000, now + 5)
    };
    assert!(!store.put_schedule(replaced).await.unwrap());
    let b = store.get_schedule("b").await.unwrap().unwrap();
    assert_eq!(
        (b.task.as_str(), b.cron.as_str(), b.timezone.as_str()),
        ("u", "0 30 2 * * *", "Europe/Berlin")
    );
    assert_eq!((b.created_ms, b.updated_ms, b.revision), (now, now + 5, 2));
    assert_eq!(
        (b.next_tick_ms, b.input.as_slice()),
        (now + 9_000, b"null".as_slice())
    );

    let names =
        |l: Vec<driftless::store::Schedule>| l.into_iter().map(|s| s.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list_schedules(None, 10).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(names(store.list_schedules(None, 1).await.unwrap()), ["a"]);
    assert_eq!(
        names(store.list_schedules(Some("a"), 10).await.unwrap()),
        ["b"]
    );
    assert_eq!(store.next_schedule_tick().await.unwrap(), Some(now + 1000));

    assert!(store.delete_schedule("a").await.unwrap());
    assert!(!store.delete_schedule("a").await.unwrap(), "already gone");
    assert_eq!(store.get_schedule("a").await.unwrap(), None);
    assert_eq!(names(store.list_schedules(None, 10).await.unwrap()), ["b"]);
    assert_eq!(store.next_schedule_tick().await.unwrap(), Some(now + 9_000));
    // A deleted schedule's due tick fires nothing.
    let job = NewJob {
        schedule: Some(Firing {
            schedule: "a".into(),
            revision: 1,
            due_ms: now + 1000,
            tick_ms: now + 1000,
            skipped: 0,
            next_ms: now + 2000,
        }),
        ..job_at("j-a", 3, now + 1000)
    };
    store.put_blob("c0ffee", b"component").await.unwrap();
    assert_eq!(store.fire_schedule(job).await.unwrap(), None);
    assert!(store.get_job("j-a").await.unwrap().is_none());
    assert!(store.delete_schedule("b").await.unwrap());
    assert_eq!(store.next_schedule_tick().await.unwrap(), None);
}

async fn a_schedule_tick_fired_by_two_stores_at_once_makes_one_job(db: TestDb) {
    let nodes = [db.open().await, db.open().await];
    nodes[0].put_blob("c0ffee", b"component").await.unwrap();
    let start = 2_000_000;
    nodes[0]
        .put_schedule(every_second("s", start + 1000, start))
        .await
        .unwrap();
    for round in 1..=8i64 {
        let now = start + round * 1000 + 10;
        // Four firers on two store handles read the same due tick, then fire it at once.
        let mut read = Vec::new();
        for p in 0..4 {
            let store = nodes[p % 2].clone();
            let job = fire_at(&store, "s", now, &format!("j{round}-{p}"))
                .await
                .expect("due");
            read.push((store, job));
        }
        let firings: Vec<_> = read
            .into_iter()
            .map(|(store, job)| {
                tokio::spawn(async move { (job.id.clone(), store.fire_schedule(job).await) })
            })
            .collect();
        let mut stored: Vec<Inserted> = Vec::new();
        for f in firings {
            let (id, fired) = f.await.unwrap();
            match fired
                .unwrap_or_else(|e| panic!("round {round}: {id}'s firing failed loudly: {e}"))
            {
                Some(inserted) => stored.push(inserted),
                None => assert!(
                    nodes[1].get_job(&id).await.unwrap().is_none(),
                    "round {round}: the losing firing {id} left its job behind"
                ),
            }
        }
        assert_eq!(stored.len(), 1, "round {round}: one job per tick");
        let job = &stored[0].job;
        assert_eq!(
            job.schedule,
            Some(ScheduleTick {
                name: "s".into(),
                tick_ms: start + round * 1000
            })
        );
        let s = nodes[1].get_schedule("s").await.unwrap().unwrap();
        assert_eq!(s.next_tick_ms, start + (round + 1) * 1000);
        assert_eq!((s.fired, s.skipped), (round as u64, 0));
        assert_eq!(s.last_job.as_deref(), Some(job.id.as_str()));
    }
    let ticks: Vec<i64> = made_by(&nodes[0], "s")
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(ticks, (1..=8).map(|r| start + r * 1000).collect::<Vec<_>>());
    let all = nodes[0].list_jobs(None, None, 100).await.unwrap();
    assert_eq!(all.len(), 8, "no job of a losing firing was stored");
}

async fn a_schedule_moves_on_tick_by_tick_and_a_stale_firing_changes_nothing(db: TestDb) {
    let store = db.open().await;
    store.put_blob("c0ffee", b"component").await.unwrap();
    let t = 3_000_000;
    store
        .put_schedule(every_second("s", t, t - 400))
        .await
        .unwrap();
    assert!(
        store.due_schedules(t - 1, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(store.next_schedule_tick().await.unwrap(), Some(t));
    assert!(fire_at(&store, "s", t - 1, "early").await.is_none());

    let first = fire_at(&store, "s", t + 5, "first").await.unwrap();
    let stale = NewJob {
        id: "stale".into(),
        ..first.clone()
    };
    let inserted = store.fire_schedule(first).await.unwrap().unwrap();
    assert!(inserted.created);
    assert_eq!(inserted.job.input, br#"{"n": 1}"#);
    assert_eq!(store.next_schedule_tick().await.unwrap(), Some(t + 1000));
    assert!(store.due_schedules(t + 999, 10).await.unwrap().is_empty());
    let due = store.due_schedules(t + 1000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].last_tick_ms, Some(t));
    // The same tick fired again (a node that read it before the move) stores nothing.
    assert_eq!(store.fire_schedule(stale).await.unwrap(), None);
    assert!(store.get_job("stale").await.unwrap().is_none());

    let second = fire_at(&store, "s", t + 1000, "second").await.unwrap();
    let of_old_revision = NewJob {
        id: "old-revision".into(),
        ..second.clone()
    };
    store.fire_schedule(second).await.unwrap().unwrap();
    assert_eq!(
        made_by(&store, "s").await,
        [("first".into(), t), ("second".into(), t + 1000)]
    );

    // A replaced schedule's firings read before the put change nothing; a put that steps the
    // schedule back onto a tick that already has its job (a clock stepped back) moves it on
    // and stores nothing: one job per schedule and tick.
    store
        .put_schedule(every_second("s", t + 1000, t + 1000))
        .await
        .unwrap();
    assert_eq!(store.fire_schedule(of_old_revision).await.unwrap(), None);
    let again = fire_at(&store, "s", t + 1000, "again").await.unwrap();
    assert_eq!(store.fire_schedule(again).await.unwrap(), None);
    assert!(store.get_job("again").await.unwrap().is_none());
    assert_eq!(store.next_schedule_tick().await.unwrap(), Some(t + 2000));
    let third = fire_at(&store, "s", t + 2000, "third").await.unwrap();
    store.fire_schedule(third).await.unwrap().unwrap();
    assert_eq!(
        made_by(&store, "s").await,
        [
            ("first".into(), t),
            ("second".into(), t + 1000),
            ("third".into(), t + 2000)
        ]
    );
}

async fn a_schedule_more_than_a_minute_late_skips_the_missed_ticks_and_counts_them(db: TestDb) {
    let store = db.open().await;
    store.put_blob("c0ffee", b"component").await.unwrap();
    let t = 4_000_000;
    store
        .put_schedule(every_second("s", t, t - 500))
        .await
        .unwrap();
    // Every node was down from before tick t until t + 65.5 s: ticks t .. t+5s are more than a
    // minute late, missed; t+6s is the first within the minute.
    let late = fire_at(&store, "s", t + 65_500, "late").await.unwrap();
    let inserted = store.fire_schedule(late).await.unwrap().unwrap();
    assert_eq!(
        inserted.job.schedule,
        Some(ScheduleTick {
            name: "s".into(),
            tick_ms: t + 6_000
        })
    );
    assert_eq!(made_by(&store, "s").await, [("late".into(), t + 6_000)]);
    let s = store.get_schedule("s").await.unwrap().unwrap();
    assert_eq!((s.fired, s.skipped, s.next_tick_ms), (1, 6, t + 7_000));
    let queued = &events_of(&store, "late").await[0];
    assert_eq!(queued.1, "queued");
    assert!(
        queued
            .2
            .contains("made by schedule s for its tick at 1970-01-01T01:06:46Z")
            && queued.2.contains("skipped 6 earlier missed tick(s)"),
        "{queued:?}"
    );
    // The ticks within the minute fire next, in order, nothing more skipped.
    let next = fire_at(&store, "s", t + 65_520, "next").await.unwrap();
    store.fire_schedule(next).await.unwrap().unwrap();
    let queued = &events_of(&store, "next").await[0];
    assert!(!queued.2.contains("skipped"), "{queued:?}");
    let s = store.get_schedule("s").await.unwrap().unwrap();
    assert_eq!((s.fired, s.skipped, s.next_tick_ms), (2, 6, t + 8_000));
}
