//! The node registry and compatibility classes in PostgreSQL (schema 2).

use super::{GenericClient, col, exec, int, one, opt, pg, rows, uint};
use crate::store::*;

/// How long rows of gone processes are kept for `GET /v1/nodes` history.
const KEEP_GONE_MS: i64 = 24 * 3600 * 1000;

/// The advisory lock that orders class inserts (see `postgres_0002_cluster.sql`).
const CLASS_LOCK: i64 = 0x6472_6966_7463_6c73;

pub(super) async fn classes_after(
    c: &impl GenericClient,
    after: i64,
) -> StoreResult<Vec<RequirementClass>> {
    rows(
        c,
        "SELECT seq, class, spec FROM requirement_classes WHERE seq > $1 ORDER BY seq",
        &[&after],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(RequirementClass {
            seq: col(r, 0)?,
            class: col(r, 1)?,
            spec: col(r, 2)?,
        })
    })
    .collect()
}

pub(super) async fn class_spec(c: &impl GenericClient, class: &str) -> StoreResult<Option<String>> {
    opt(
        c,
        "SELECT spec FROM requirement_classes WHERE class = $1",
        &[&class],
    )
    .await?
    .map(|r| col(&r, 0))
    .transpose()
}

/// Store a class unless it is stored, in its own transaction: under the class lock, so each
/// new class takes the next `seq` and commits before another class can take one.
pub(super) async fn ensure_class(
    c: &mut deadpool_postgres::Object,
    r: &Requirements,
    now: i64,
) -> StoreResult<()> {
    let tx = c.transaction().await.map_err(pg)?;
    exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&CLASS_LOCK]).await?;
    let spec: &str = &r.spec;
    exec(
        &tx,
        "INSERT INTO requirement_classes (seq, class, spec, created_ms)
         SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3 FROM requirement_classes
         ON CONFLICT (class) DO NOTHING",
        &[&r.class, &spec, &now],
    )
    .await?;
    tx.commit().await.map_err(pg)
}

pub(super) async fn register(c: &impl GenericClient, n: &NodeRegistration) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO nodes (process, node, address, version, catalog, agents, started_ms, heartbeat_ms, draining, inflight, gone_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, FALSE, 0, NULL)
         ON CONFLICT (process) DO UPDATE SET node = EXCLUDED.node, address = EXCLUDED.address, version = EXCLUDED.version,
             catalog = EXCLUDED.catalog, agents = EXCLUDED.agents, heartbeat_ms = EXCLUDED.heartbeat_ms, gone_ms = NULL",
        &[&n.process, &n.node, &n.address, &n.version, &n.catalog, &int(n.agents), &n.now_ms],
    )
    .await?;
    Ok(())
}

pub(super) async fn heartbeat(
    c: &impl GenericClient,
    process: &str,
    draining: bool,
    inflight: u32,
    now: i64,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "UPDATE nodes SET heartbeat_ms = $2, draining = $3, inflight = $4 WHERE process = $1 AND gone_ms IS NULL",
        &[&process, &now, &draining, &int(inflight)],
    )
    .await?;
    Ok(n == 1)
}

pub(super) async fn leave(c: &impl GenericClient, process: &str, now: i64) -> StoreResult<()> {
    exec(
        c,
        "UPDATE nodes SET gone_ms = $2, inflight = 0 WHERE process = $1 AND gone_ms IS NULL",
        &[&process, &now],
    )
    .await?;
    Ok(())
}

pub(super) async fn list(c: &impl GenericClient, gone_since: i64) -> StoreResult<Vec<NodeRecord>> {
    rows(
        c,
        "SELECT n.process, n.node, n.address, n.version, n.catalog, n.agents, n.started_ms, n.heartbeat_ms, n.draining, n.inflight, n.gone_ms,
                ARRAY(SELECT a.id FROM agents a WHERE a.holder = n.process ORDER BY a.id)
         FROM nodes n WHERE n.gone_ms IS NULL OR n.gone_ms >= $1 ORDER BY n.started_ms, n.process",
        &[&gone_since],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(NodeRecord {
            process: col(r, 0)?,
            node: col(r, 1)?,
            address: col(r, 2)?,
            version: col(r, 3)?,
            catalog: col(r, 4)?,
            agents: uint(col(r, 5)?),
            started_ms: col(r, 6)?,
            heartbeat_ms: col(r, 7)?,
            draining: col(r, 8)?,
            inflight: uint(col(r, 9)?),
            gone_ms: col(r, 10)?,
            identities: col(r, 11)?,
        })
    })
    .collect()
}

/// Mark silent processes gone, expire their agents' leases and free their identities, and
/// forget processes gone for a day: one statement (all its parts see the same snapshot, so the
/// leases expired are those of the identities the gone processes held).
pub(super) async fn reap_gone(
    c: &impl GenericClient,
    ttl_ms: i64,
    now: i64,
) -> StoreResult<Vec<String>> {
    let gone = one(
        c,
        "WITH gone AS (
             UPDATE nodes SET gone_ms = $2, inflight = 0 WHERE gone_ms IS NULL AND heartbeat_ms < $1
             RETURNING process
         ),
         expired AS (
             UPDATE attempts SET lease_expires_ms = $2 - 1
             WHERE state = 'running' AND agent IN (SELECT id FROM agents WHERE holder IN (SELECT process FROM gone))
         ),
         released AS (
             UPDATE agents SET holder = NULL, lease_expires_ms = 0 WHERE holder IN (SELECT process FROM gone)
         ),
         forgotten AS (
             DELETE FROM nodes WHERE gone_ms < $3
         )
         SELECT ARRAY(SELECT process FROM gone ORDER BY process)",
        &[&(now - ttl_ms), &now, &(now - KEEP_GONE_MS)],
    )
    .await?;
    col(&gone, 0)
}
