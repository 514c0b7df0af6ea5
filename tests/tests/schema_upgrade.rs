//! Upgrading a database in place keeps every job: a store opened on a database from the
//! previous schema (SQLite 4, PostgreSQL 2) migrates it to the shape both backends share now
//! (a queue table, an attempt counter, task pins as columns, reports only in `reports`), and
//! the jobs read back, claim, recover and answer their idempotency keys as before.

use driftless::store::postgres::PostgresStore;
use driftless::store::sqlite::SqliteStore;
use driftless::store::{Held, JobStatus, Store, TaskPin, now_ms};
use driftless_tests::stores::fresh_database;

const SQLITE_BEFORE: &[&str] = &[
    include_str!("../../runtime/src/store/migrations/sqlite/0001_init.sql"),
    include_str!("../../runtime/src/store/migrations/sqlite/0002_tasks.sql"),
    include_str!("../../runtime/src/store/migrations/sqlite/0003_identities.sql"),
    include_str!("../../runtime/src/store/migrations/sqlite/0004_cluster.sql"),
];

const POSTGRES_BEFORE: &[&str] = &[
    include_str!("../../runtime/src/store/migrations/postgres/0001_init.sql"),
    include_str!("../../runtime/src/store/migrations/postgres/0002_cluster.sql"),
];

/// Agent identity `id`, taken by this test's process.
async fn held(store: &dyn Store, id: &str) -> Held {
    let hold = store
        .take_identity(id, "n", None, "upgrade-test", 60_000, now_ms())
        .await
        .unwrap()
        .expect("a free identity");
    Held {
        agent: id.into(),
        hold,
    }
}

/// What both old databases hold: a queued job pinned to task `t` version 1, a job whose only
/// attempt is running with an expired lease, and (SQLite) a schema-1 job with its report inline.
async fn check_upgraded(store: &dyn Store, legacy_report: Option<&str>) {
    let queued = store.get_job("queued-task").await.unwrap().unwrap().job;
    assert_eq!(queued.task, Some(TaskPin::new("t", 1)));
    assert_eq!(queued.status, JobStatus::Queued);
    let task = store.get_task("t", 100).await.unwrap().unwrap();
    assert_eq!(task.versions[0].jobs.queued, 1, "{task:?}");

    let n0 = held(store, "n/0").await;
    let claim = store.claim(&n0, &[], 60_000, now_ms()).await.unwrap();
    let claim = claim.expect("the queued job is in the queue after the upgrade");
    assert_eq!((claim.job.id.as_str(), claim.attempt), ("queued-task", 1));

    assert_eq!(store.reap_expired(now_ms()).await.unwrap(), 1);
    let n1 = held(store, "n/1").await;
    let again = store.claim(&n1, &[], 60_000, now_ms()).await.unwrap();
    let again = again.expect("the lost attempt's job is queued again");
    assert_eq!(
        (again.job.id.as_str(), again.attempt),
        ("running", 2),
        "attempts are numbered after the ones the old schema counted"
    );

    if let Some(report) = legacy_report {
        let (job, stored) = store
            .job_by_idempotency_key("legacy-key")
            .await
            .unwrap()
            .expect("the schema-1 job answers its key");
        assert_eq!((job.id.as_str(), stored.as_str()), ("legacy", report));
        assert_eq!(job.output.as_deref(), Some(&b"out"[..]));
    }
}

#[tokio::test]
async fn a_sqlite_database_of_schema_4_keeps_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for (i, sql) in SQLITE_BEFORE.iter().enumerate() {
            c.execute_batch(&format!(
                "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))
            .unwrap();
        }
        c.execute_batch(
            r#"INSERT INTO blobs VALUES ('c1', x'00', 1, 0);
               INSERT INTO reports VALUES ('h1', '{"r":1}');
               INSERT INTO task_versions (task, version, component, report, created_ms, deployed_by) VALUES ('t', 1, 'c1', '{}', 0, 'ops');
               INSERT INTO tasks VALUES ('t', 1, 0, 0);
               INSERT INTO jobs (id, component, input, status, max_attempts, attempts, limits, optional, report, report_hash, kv_scope, task, run_after_ms, created_ms, updated_ms)
                   VALUES ('queued-task', 'c1', x'', 'queued', 3, 0, '{}', '[]', '', 'h1', 't', 't@1', 0, 1, 1);
               INSERT INTO jobs (id, component, input, status, max_attempts, attempts, limits, optional, report, report_hash, kv_scope, run_after_ms, created_ms, updated_ms)
                   VALUES ('running', 'c1', x'', 'running', 3, 1, '{}', '[]', '', 'h1', 'running', 0, 2, 2);
               INSERT INTO attempts (job_id, number, agent, lease_token, lease_expires_ms, state, started_ms)
                   VALUES ('running', 1, 'old/0', 'tok', 0, 'running', 2);
               INSERT INTO jobs (id, component, input, status, max_attempts, attempts, limits, optional, report, kv_scope, idempotency_key, run_after_ms, created_ms, updated_ms, finished_ms, output)
                   VALUES ('legacy', 'c1', x'', 'succeeded', 1, 1, '{}', '[]', '{"legacy":true}', 'legacy', 'legacy-key', 0, 3, 3, 3, CAST('out' AS BLOB));"#,
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    check_upgraded(&store, Some(r#"{"legacy":true}"#)).await;
}

#[tokio::test]
async fn a_postgres_database_of_schema_2_keeps_its_jobs() {
    let url = fresh_database().await;
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)")
        .await
        .unwrap();
    for (i, sql) in POSTGRES_BEFORE.iter().enumerate() {
        client.batch_execute(sql).await.unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations VALUES ($1, 0)",
                &[&(i as i32 + 1)],
            )
            .await
            .unwrap();
    }
    client
        .batch_execute(
            r#"INSERT INTO blobs VALUES ('c1', '\x00', 1, 0);
               INSERT INTO reports VALUES ('h1', '{"r":1}');
               INSERT INTO task_versions (task, version, component, report, created_ms, deployed_by) VALUES ('t', 1, 'c1', '{}', 0, 'ops');
               INSERT INTO tasks VALUES ('t', 1, 0, 0);
               INSERT INTO jobs (id, component, input, status, max_attempts, attempts, limits, optional, report_hash, kv_scope, task, run_after_ms, created_ms, updated_ms)
                   VALUES ('queued-task', 'c1', '', 'queued', 3, 0, '{}', '[]', 'h1', 't', 't@1', 0, 1, 1);
               INSERT INTO queue (job_id, run_after_ms, seq) SELECT id, run_after_ms, seq FROM jobs WHERE id = 'queued-task';
               INSERT INTO jobs (id, component, input, status, max_attempts, attempts, attempt_rows, limits, optional, report_hash, kv_scope, run_after_ms, created_ms, updated_ms)
                   VALUES ('running', 'c1', '', 'running', 3, 1, 1, '{}', '[]', 'h1', 'running', 0, 2, 2);
               INSERT INTO attempts (job_id, number, agent, lease_token, lease_expires_ms, state, started_ms)
                   VALUES ('running', 1, 'old/0', 'tok', 0, 'running', 2);"#,
        )
        .await
        .unwrap();
    let store = PostgresStore::connect(&url).await.unwrap();
    check_upgraded(&store, None).await;
}
