//! Retention on the real daemon: 100,000 finished jobs older than `--retention` are deleted
//! while new jobs keep completing, and the SQLite file shrinks; a deleted job answers
//! `job-expired`, through the API and the CLI, and its unused component is deleted and
//! forgotten; two nodes on PostgreSQL sweep at once.

use driftless_tests::daemon::{Client, DaemonProcess};
use driftless_tests::poll::until;
use driftless_tests::{bytes, examples::HELLO};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_driftless");
const AGED: i64 = 100_000;

/// A counter or gauge from `/metrics`.
async fn metric(c: &Client, name: &str) -> f64 {
    let text = c
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics:\n{text}"))
}

/// Stop the daemon as an operator would (SIGTERM), and wait for it to exit.
async fn stop(mut daemon: DaemonProcess) {
    daemon.signal("TERM");
    let code = daemon.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(
        code,
        Some(0),
        "the daemon stopped cleanly:\n{}",
        daemon.log()
    );
}

/// Copy the finished job `template` `copies` times in the stopped daemon's SQLite file, each
/// copy finished at `at`: its `jobs` row and its rows in every table with a `job_id` column
/// (attempts, events), with fresh ids and lease tokens. Columns are read from the schema, so
/// the copies follow it.
fn clone_finished(db: &Path, template: &str, copies: i64, at: i64) {
    let mut conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let columns = |table: &str| -> Vec<(String, bool)> {
        let rows: Vec<(String, String, i64)> = conn
            .prepare("SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid")
            .unwrap()
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let pks = rows.iter().filter(|(_, _, pk)| *pk > 0).count();
        rows.into_iter()
            .map(|(name, ty, pk)| {
                let rowid = pk == 1 && pks == 1 && ty.eq_ignore_ascii_case("INTEGER");
                (name, rowid)
            })
            .collect()
    };
    let copy = |table: &str, cols: &[(String, bool)]| -> String {
        let (names, exprs): (Vec<String>, Vec<String>) = cols
            .iter()
            .filter(|(_, rowid)| !rowid)
            .map(|(c, _)| {
                let e = match (table, c.as_str()) {
                    ("jobs", "id") | (_, "job_id") => "'aged-' || n.i".to_string(),
                    ("jobs", "idempotency_key") => "NULL".into(),
                    ("jobs", "run_after_ms" | "created_ms" | "updated_ms" | "finished_ms")
                    | ("attempts", "started_ms" | "finished_ms" | "lease_expires_ms")
                    | ("events", "at_ms") => "?2".into(),
                    ("attempts", "lease_token") => "t.lease_token || '-' || n.i".into(),
                    _ => format!("t.\"{c}\""),
                };
                (format!("\"{c}\""), e)
            })
            .unzip();
        let key = if table == "jobs" { "id" } else { "job_id" };
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)
             INSERT INTO \"{table}\" ({}) SELECT {} FROM n, \"{table}\" t WHERE t.{key} = ?1",
            names.join(", "),
            exprs.join(", ")
        )
    };
    let mut statements = vec![copy("jobs", &columns("jobs"))];
    for table in tables.iter().filter(|t| *t != "jobs") {
        let cols = columns(table);
        if cols.iter().any(|(c, _)| c == "job_id") {
            statements.push(copy(table, &cols));
        }
    }
    let tx = conn.transaction().unwrap();
    for sql in &statements {
        tx.execute(sql, rusqlite::params![template, at, copies])
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.commit().unwrap();
}

fn count(db: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// The database file's size once its log is checkpointed into it (no daemon running).
fn checkpointed_size(db: &Path) -> u64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    std::fs::metadata(db).unwrap().len()
}

#[tokio::test]
async fn a_hundred_thousand_aged_jobs_are_deleted_while_new_ones_complete_and_the_file_shrinks() {
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("driftless.db");
    // A real job, finished, as the template of the backlog.
    let daemon = DaemonProcess::start(BIN, dir.path(), &["--agents", "2"]);
    let c = Client::new(&daemon.url);
    let (status, answer) = c
        .submit(
            &bytes(HELLO),
            &[("input", json!({"n": 0}).to_string())],
            None,
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let template = answer["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(c.wait(&template).await["status"], "succeeded");
    stop(daemon).await;

    // 100,000 copies that finished a day ago, with their attempts and events.
    let day_ago = driftless::store::now_ms() - 86_400_000;
    clone_finished(&db, &template, AGED, day_ago);
    let aged = "SELECT COUNT(*) FROM jobs WHERE id LIKE 'aged-%'";
    assert_eq!(count(&db, aged), AGED);
    let aged_rows = "SELECT (SELECT COUNT(*) FROM attempts WHERE job_id LIKE 'aged-%') + (SELECT COUNT(*) FROM events WHERE job_id LIKE 'aged-%')";
    assert!(
        count(&db, aged_rows) >= 2 * AGED,
        "attempts and events were cloned"
    );
    let before = checkpointed_size(&db);
    eprintln!(
        "filled {AGED} aged jobs: {before} bytes, {:.1} s in",
        began.elapsed().as_secs_f64()
    );

    // Kept an hour: the backlog goes at the first sweep, the jobs submitted now stay.
    let daemon = DaemonProcess::start(BIN, dir.path(), &["--agents", "4", "--retention", "1h"]);
    let c = Client::new(&daemon.url);
    let at_first_submission = metric(&c, "driftless_retention_jobs_deleted_total").await;
    let mut ids = Vec::new();
    for n in 1..=50 {
        let (status, answer) = c
            .submit(
                &bytes(HELLO),
                &[("input", json!({"n": n}).to_string())],
                None,
            )
            .await;
        assert_eq!(status, 201, "{answer}");
        ids.push(answer["job"]["id"].as_str().unwrap().to_string());
    }
    for (n, id) in (1..).zip(&ids) {
        let job = c.wait(id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["output"], json!({"n": n}));
    }
    let at_last_completion = metric(&c, "driftless_retention_jobs_deleted_total").await;
    eprintln!(
        "50 jobs submitted and completed while retention had deleted {at_first_submission} then {at_last_completion} aged jobs ({:.1} s in)",
        began.elapsed().as_secs_f64()
    );
    until(
        "every aged job to be deleted",
        Duration::from_secs(60),
        async || metric(&c, "driftless_retention_jobs_deleted_total").await >= AGED as f64,
    )
    .await;
    until(
        "the freed pages to go back",
        Duration::from_secs(30),
        async || metric(&c, "driftless_retention_reclaimed_bytes_total").await > 0.0,
    )
    .await;
    assert!(
        at_first_submission < AGED as f64,
        "the jobs were submitted while the backlog was being deleted (deleted {at_first_submission} by then)"
    );
    stop(daemon).await;

    assert_eq!(count(&db, aged), 0, "every aged job is deleted");
    assert_eq!(count(&db, aged_rows), 0, "with its attempts and events");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'"),
        51,
        "the template and the new jobs finished within the retention are kept"
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM blobs"),
        1,
        "the component the kept jobs run is kept"
    );
    let after = checkpointed_size(&db);
    eprintln!(
        "database file: {before} bytes before, {after} bytes after ({:.1} s in all)",
        began.elapsed().as_secs_f64()
    );
    assert!(after < before, "the file shrank: {before} → {after} bytes");
}

#[tokio::test]
async fn a_job_deleted_by_retention_answers_job_expired_and_the_cli_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = DaemonProcess::start(BIN, dir.path(), &["--agents", "1", "--retention", "1s"]);
    let c = Client::new(&daemon.url);
    let (status, answer) = c
        .submit(
            &bytes(HELLO),
            &[("input", json!({"n": 7}).to_string())],
            None,
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["job"]["id"].as_str().unwrap().to_string();
    // Kept one second after it ends, then deleted at a sweep (every second).
    until(
        "the finished job to be deleted",
        Duration::from_secs(30),
        async || c.get(&format!("/v1/jobs/{id}")).await.0 == 404,
    )
    .await;
    for path in ["", "/output", "/logs", "/events"] {
        let (status, body) = c.get(&format!("/v1/jobs/{id}{path}")).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "job-expired", "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("job {id} is no longer stored"))
                && message.contains("deleted 1s after they end")
                && message.contains("--retention"),
            "{message}"
        );
    }
    let cancel = c.request(reqwest::Method::POST, &format!("/v1/jobs/{id}/cancel"));
    let (status, body) = c.send(cancel).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("job-expired"))
    );
    // An id made just now, or not a job id at all, is simply not found.
    let fresh = format!("job_{}", uuid::Uuid::now_v7().simple());
    for unknown in [fresh.as_str(), "job_nope"] {
        let (status, body) = c.get(&format!("/v1/jobs/{unknown}")).await;
        assert_eq!((status, &body["error"]["code"]), (404, &json!("not-found")));
    }

    // Its component, now used by no job, goes too (it was stored more than a second ago),
    // and the node forgets it: a submission naming it is told to upload it again.
    until(
        "the unused component to be deleted",
        Duration::from_secs(30),
        async || metric(&c, "driftless_retention_components_deleted_total").await >= 1.0,
    )
    .await;
    let hash = answer["job"]["component"].as_str().unwrap();
    let by_hash = c
        .request(reqwest::Method::POST, "/v1/jobs")
        .json(&json!({"component": hash, "input": {"n": 8}}));
    let (status, body) = c.send(by_hash).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("unknown-component")),
        "{body}"
    );
    let (status, again) = c
        .submit(
            &bytes(HELLO),
            &[("input", json!({"n": 9}).to_string())],
            None,
        )
        .await;
    assert_eq!(status, 201, "uploaded again, it is stored again: {again}");
    let job = c.wait(again["job"]["id"].as_str().unwrap()).await;
    assert_eq!(job["output"], json!({"n": 9}));

    let cli = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .args(["--url", &daemon.url])
            .output()
            .unwrap()
    };
    let out = cli(&["status", &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "{id}  expired (deleted by retention)\n  why        job {id} is no longer stored"
        )),
        "{stdout}"
    );
    let out = cli(&["status", &id, "--json"]);
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "job-expired");
    let out = cli(&["status", &fresh]);
    assert_eq!(out.status.code(), Some(2), "not found stays an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-found"));
}

#[tokio::test]
async fn two_nodes_on_postgres_sweep_at_once_and_both_forget_a_deleted_component() {
    let pg = driftless_tests::postgres::PgServer::start();
    let store = pg.url();
    let root = tempfile::tempdir().unwrap();
    let args = |node: &'static str| {
        [
            "--store",
            &store,
            "--node",
            node,
            "--agents",
            "2",
            "--retention",
            "1s",
        ]
        .map(str::to_string)
    };
    let start = |node: &'static str| {
        let a = args(node);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        DaemonProcess::start(BIN, &root.path().join(node), &a)
    };
    let (a, b) = (start("node-a"), start("node-b"));
    let (ca, cb) = (Client::new(&a.url), Client::new(&b.url));
    // Each node prepares the component: one from the upload, one from the hash.
    let (status, first) = ca
        .submit(
            &bytes(HELLO),
            &[("input", json!({"n": 1}).to_string())],
            None,
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let hash = first["job"]["component"].as_str().unwrap().to_string();
    let by_hash = |c: &Client, n: i64| {
        c.request(reqwest::Method::POST, "/v1/jobs")
            .json(&json!({"component": hash, "input": {"n": n}}))
    };
    let mut ids = vec![first["job"]["id"].as_str().unwrap().to_string()];
    for n in 2..=20 {
        let c = if n % 2 == 0 { &cb } else { &ca };
        let (status, body) = c.send(by_hash(c, n)).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["job"]["id"].as_str().unwrap().to_string());
    }
    // Both nodes sweep every second: every job goes once it has been finished a second,
    // each deleted by one node, then the component.
    until(
        "every job and the component to be deleted",
        Duration::from_secs(60),
        async || {
            let jobs = metric(&ca, "driftless_retention_jobs_deleted_total").await
                + metric(&cb, "driftless_retention_jobs_deleted_total").await;
            let components = metric(&ca, "driftless_retention_components_deleted_total").await
                + metric(&cb, "driftless_retention_components_deleted_total").await;
            assert!(
                jobs <= 20.0 && components <= 1.0,
                "deleted once: {jobs}, {components}"
            );
            jobs == 20.0 && components == 1.0
        },
    )
    .await;
    for id in &ids {
        let (status, body) = ca.get(&format!("/v1/jobs/{id}")).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("job-expired"))
        );
    }
    // Whichever node deleted it, both forgot it (the other through the notification).
    for c in [&ca, &cb] {
        until(
            "the node to forget the component",
            Duration::from_secs(10),
            async || c.send(by_hash(c, 0)).await.0 == 404,
        )
        .await;
        let (_, body) = c.send(by_hash(c, 0)).await;
        assert_eq!(body["error"]["code"], "unknown-component", "{body}");
    }
    for d in [&a, &b] {
        assert!(
            !d.log().contains("retention: could not"),
            "no sweep failed:\n{}",
            d.log()
        );
    }
}
