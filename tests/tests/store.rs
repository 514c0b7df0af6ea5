//! The store's promises, exercised through the `Store` trait on a real SQLite file. Each test
//! takes a fresh store from `fresh()`, so the same suite can run against every backend.

use driftless::engine::Limits;
use driftless::store::sqlite::SqliteStore;
use driftless::store::{
    AttemptEnd, AttemptState, DeleteOutcome, JobFailure, JobStatus, NewJob, NewTaskVersion, Next,
    Store, StoreError, now_ms,
};
use std::collections::HashSet;
use std::sync::Arc;

fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("test.db")).unwrap();
    (dir, Arc::new(store))
}

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
        now_ms: now_ms(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_agents_claiming_from_one_queue_never_share_an_attempt() {
    let (_dir, store) = fresh();
    let ids = with_jobs(&store, 300, 1).await;
    let mut agents = Vec::new();
    for a in 0..16 {
        let store = store.clone();
        agents.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(claim) = store
                .claim(&format!("race/{a}"), 60_000, now_ms())
                .await
                .unwrap()
            {
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

/// As the agents run: each finishes its attempt and claims the next one in one transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finishing_and_claiming_the_next_in_one_step_runs_each_job_once() {
    let (_dir, store) = fresh();
    let ids = with_jobs(&store, 300, 1).await;
    let mut agents = Vec::new();
    for a in 0..8 {
        let store = store.clone();
        agents.push(tokio::spawn(async move {
            let agent = format!("race/{a}");
            let mut done = Vec::new();
            let mut next = store.claim(&agent, 60_000, now_ms()).await.unwrap();
            while let Some(claim) = next {
                let (status, claimed) = store
                    .finish_and_claim(
                        &claim.lease_token,
                        end(Next::Succeed(b"1".to_vec())),
                        &agent,
                        60_000,
                        now_ms(),
                    )
                    .await
                    .unwrap();
                assert_eq!(status, JobStatus::Succeeded);
                done.push(claim.job.id);
                next = claimed;
            }
            done
        }));
    }
    let mut finished = Vec::new();
    for a in agents {
        finished.extend(a.await.unwrap());
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

#[tokio::test]
async fn a_stale_attempts_late_writes_are_refused() {
    let (_dir, store) = fresh();
    with_jobs(&store, 1, 3).await;
    let first = store
        .claim("node-1/0", 60_000, now_ms())
        .await
        .unwrap()
        .unwrap();
    // The agent restarts under the same identity and recovers its attempt.
    assert_eq!(
        store
            .recover_agent("node-1/0", "node-1", now_ms())
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
        .claim("node-1/0", 60_000, now_ms())
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

#[tokio::test]
async fn the_reaper_requeues_expired_leases_and_fails_jobs_out_of_attempts() {
    let (_dir, store) = fresh();
    with_jobs(&store, 1, 2).await;
    let now = now_ms();
    store.claim("gone/0", 10, now).await.unwrap().unwrap();
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
    store.claim("gone/0", 10, now + 30).await.unwrap().unwrap();
    assert_eq!(store.reap_expired(now + 100).await.unwrap(), 1);
    let job = store.get_job("job-0000").await.unwrap().unwrap().job;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error.unwrap().code, "lost");
}

#[tokio::test]
async fn retries_wait_for_their_backoff_and_requeues_are_not_charged() {
    let (_dir, store) = fresh();
    with_jobs(&store, 1, 3).await;
    let now = now_ms();
    let c = store.claim("a/0", 60_000, now).await.unwrap().unwrap();
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
    assert!(
        store.claim("a/0", 60_000, now + 1).await.unwrap().is_none(),
        "claimed before its backoff"
    );
    let c = store
        .claim("a/0", 60_000, now + 10_001)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.attempt, 2);
    store
        .finish_attempt(&c.lease_token, end(Next::Requeue), now + 10_002)
        .await
        .unwrap();
    let c = store
        .claim("a/0", 60_000, now + 10_003)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.attempt, 3, "the third attempt row");
    assert_eq!(c.job.attempts, 2, "an interrupted attempt is not charged");
}

#[tokio::test]
async fn acknowledged_writes_survive_reopening_and_blobs_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        assert!(store.put_blob("c0ffee", b"component").await.unwrap());
        assert!(!store.put_blob("c0ffee", b"component").await.unwrap());
        let mut job = new_job("job-keep", 1);
        job.idempotency_key = Some("k1".into());
        assert!(store.insert_job(job.clone()).await.unwrap().created);
        job.id = "job-other".into();
        let again = store.insert_job(job).await.unwrap();
        assert!(!again.created);
        assert_eq!(again.job.id, "job-keep");
        store.kv_set("s", "", "k", b"v").await.unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    assert_eq!(
        store.get_job("job-keep").await.unwrap().unwrap().job.status,
        JobStatus::Queued
    );
    assert!(store.get_job("job-other").await.unwrap().is_none());
    assert_eq!(
        store.kv_get("s", "", "k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(store.kv_increment("s", "", "n", 5).await.unwrap(), Ok(5));
    assert!(
        store.kv_increment("s", "", "k", 1).await.unwrap().is_err(),
        "v is not a number"
    );
    assert_eq!(store.kv_list("s", "", "").await.unwrap(), ["k", "n"]);
}

fn version(task: &str, component: &str, actor: &str) -> NewTaskVersion {
    NewTaskVersion {
        task: task.into(),
        component: component.into(),
        report: "{}".into(),
        actor: actor.into(),
        request_id: format!("req-{component}"),
        now_ms: now_ms(),
    }
}

#[tokio::test]
async fn task_versions_are_immutable_numbered_and_audited() {
    let (_dir, store) = fresh();
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
    job.task = Some("t@2".into());
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
        Err(StoreError::Conflict(_))
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

    let task = store.get_task("t").await.unwrap().unwrap();
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
    let nodes = store.get_task("t").await.unwrap().unwrap().nodes;
    assert_eq!(
        (nodes.len(), nodes[0].version),
        (1, 3),
        "an older report never wins"
    );
}

#[tokio::test]
async fn an_identity_has_one_holder_at_a_time() {
    let (_dir, store) = fresh();
    let now = now_ms();
    assert_eq!(store.identity_holder("n/0").await.unwrap(), None);
    assert!(
        store
            .take_identity("n/0", "n", None, "p1", 10_000, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_identity("n/0", "n", None, "p2", 10_000, now)
            .await
            .unwrap(),
        "held: the compare-and-set fails"
    );
    assert!(
        !store
            .take_identity("n/0", "n", Some("someone-else"), "p2", 10_000, now)
            .await
            .unwrap()
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
    // Taking over from a named (expired or dead) holder, then releasing.
    assert!(
        store
            .take_identity("n/0", "n", Some("p1"), "p2", 10_000, now)
            .await
            .unwrap()
    );
    assert_eq!(store.renew_identities("p1", 20_000, now).await.unwrap(), 0);
    assert_eq!(store.release_identities("p2", now).await.unwrap(), 1);
    assert_eq!(
        store.identity_holder("n/0").await.unwrap().unwrap().holder,
        None
    );
}
