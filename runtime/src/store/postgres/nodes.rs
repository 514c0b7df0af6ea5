//! The node registry, agent identities and compatibility classes in PostgreSQL.

use super::{GenericClient, col, exec, int, jobs, one, opt, pg, rows, uint};
use crate::store::*;
use deadpool_postgres::Object;

/// How long rows of gone processes are kept for `GET /v1/nodes` history.
const KEEP_GONE_MS: i64 = 24 * 3600 * 1000;

/// The advisory lock that orders class inserts (see `postgres_0002_cluster.sql`).
const CLASS_LOCK: i64 = 0x6472_6966_7463_6c73;

/// Classes stored after `after`, in the order they were stored.
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

/// One class's requirements.
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

/// Register a process (a re-registration keeps its start time).
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

/// A live process's heartbeat; false when it was marked gone.
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

/// Mark a process gone (a clean exit).
pub(super) async fn leave(c: &impl GenericClient, process: &str, now: i64) -> StoreResult<()> {
    exec(
        c,
        "UPDATE nodes SET gone_ms = $2, inflight = 0 WHERE process = $1 AND gone_ms IS NULL",
        &[&process, &now],
    )
    .await?;
    Ok(())
}

/// Live processes, and those gone since `gone_since`, oldest first.
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

/// Who holds an agent identity.
pub(super) async fn identity_holder(
    c: &impl GenericClient,
    id: &str,
) -> StoreResult<Option<IdentityHold>> {
    opt(
        c,
        "SELECT holder, lease_expires_ms FROM agents WHERE id = $1",
        &[&id],
    )
    .await?
    .map(|r| {
        Ok(IdentityHold {
            holder: col(&r, 0)?,
            lease_expires_ms: col(&r, 1)?,
        })
    })
    .transpose()
}

/// Extend every identity `holder` holds.
pub(super) async fn renew_identities(
    c: &impl GenericClient,
    holder: &str,
    lease_ms: i64,
    now: i64,
) -> StoreResult<u64> {
    exec(
        c,
        "UPDATE agents SET lease_expires_ms = $2, heartbeat_ms = $3 WHERE holder = $1",
        &[&holder, &(now + lease_ms), &now],
    )
    .await
}

/// Give up every identity `holder` holds.
pub(super) async fn release_identities(
    c: &impl GenericClient,
    holder: &str,
    now: i64,
) -> StoreResult<u64> {
    exec(
        c,
        "UPDATE agents SET holder = NULL, lease_expires_ms = 0, heartbeat_ms = $2 WHERE holder = $1",
        &[&holder, &now],
    )
    .await
}

/// Take an identity if its holder is still `expected` (compare-and-set).
pub(super) async fn take_identity(
    c: &mut Object,
    id: &str,
    node: &str,
    expected: Option<&str>,
    holder: &str,
    lease_ms: i64,
    now: i64,
) -> StoreResult<bool> {
    let tx = c.transaction().await.map_err(pg)?;
    exec(
        &tx,
        "INSERT INTO agents (id, node, started_ms, heartbeat_ms, holder, lease_expires_ms) VALUES ($1, $2, $3, $3, NULL, 0)
         ON CONFLICT (id) DO NOTHING",
        &[&id, &node, &now],
    )
    .await?;
    // The compare-and-set: a concurrent taker waits for this row lock, then finds the
    // holder changed and takes nothing.
    let n = exec(
        &tx,
        "UPDATE agents SET holder = $3, lease_expires_ms = $4, node = $5, started_ms = $6, heartbeat_ms = $6
         WHERE id = $1 AND holder IS NOT DISTINCT FROM $2",
        &[&id, &expected, &holder, &(now + lease_ms), &node, &now],
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    Ok(n == 1)
}

/// Record the agent's new incarnation and lose the attempts its earlier one left running.
/// Returns how many, and the jobs that failed for it.
pub(super) async fn recover_agent(
    c: &mut Object,
    agent: &str,
    node: &str,
    now: i64,
) -> StoreResult<(u64, Vec<String>)> {
    let tx = c.transaction().await.map_err(pg)?;
    exec(
        &tx,
        "INSERT INTO agents (id, node, started_ms, heartbeat_ms) VALUES ($1, $2, $3, $3)
         ON CONFLICT (id) DO UPDATE SET node = EXCLUDED.node, started_ms = EXCLUDED.started_ms, heartbeat_ms = EXCLUDED.heartbeat_ms",
        &[&agent, &node, &now],
    )
    .await?;
    let lost = jobs::lose_attempts(
        &tx,
        jobs::Lose::OfAgent(agent),
        now,
        "its agent restarted under the same identity",
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    Ok(lost)
}
