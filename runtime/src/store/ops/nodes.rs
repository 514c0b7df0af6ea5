//! The node registry, agent identities and compatibility classes.

use crate::store::sql::{Dialect, Sql, params};
use crate::store::*;

/// How long rows of gone processes are kept for `GET /v1/nodes` history.
const KEEP_GONE_MS: i64 = 24 * 3600 * 1000;

/// The advisory lock that orders class inserts on PostgreSQL (see `postgres_0002_cluster.sql`).
const CLASS_LOCK: i64 = 0x6472_6966_7463_6c73;

/// Classes stored after `after`, in the order they were stored.
pub(crate) async fn classes_after(
    s: &mut impl Sql,
    after: i64,
) -> StoreResult<Vec<RequirementClass>> {
    s.rows(
        "SELECT seq, class, spec FROM requirement_classes WHERE seq > $1 ORDER BY seq",
        params![after],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(RequirementClass {
            seq: r.get("seq")?,
            class: r.get("class")?,
            spec: r.get("spec")?,
        })
    })
    .collect()
}

/// One class's requirements.
pub(crate) async fn class_spec(s: &mut impl Sql, class: &str) -> StoreResult<Option<String>> {
    s.row(
        "SELECT spec FROM requirement_classes WHERE class = $1",
        params![class],
    )
    .await?
    .map(|r| r.get("spec"))
    .transpose()
}

/// Store a class unless it is stored. Each new class takes the next `seq`; on PostgreSQL
/// under the class lock, in a transaction of its own, so it commits before another class can
/// take a later `seq` (nodes catch up by `seq`).
pub(crate) async fn ensure_class(s: &mut impl Sql, r: &Requirements, now: i64) -> StoreResult<()> {
    if s.dialect() == Dialect::Postgres {
        s.exec("SELECT pg_advisory_xact_lock($1)", params![CLASS_LOCK])
            .await?;
    }
    s.exec(
        "INSERT INTO requirement_classes (seq, class, spec, created_ms)
         SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3 FROM requirement_classes WHERE TRUE
         ON CONFLICT (class) DO NOTHING",
        params![&r.class, &*r.spec, now],
    )
    .await?;
    Ok(())
}

/// Register a process (a re-registration keeps its start time).
pub(crate) async fn register(s: &mut impl Sql, n: &NodeRegistration) -> StoreResult<()> {
    s.exec(
        "INSERT INTO nodes (process, node, address, version, catalog, agents, started_ms, heartbeat_ms, draining, inflight, gone_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, FALSE, 0, NULL)
         ON CONFLICT (process) DO UPDATE SET node = excluded.node, address = excluded.address, version = excluded.version,
             catalog = excluded.catalog, agents = excluded.agents, heartbeat_ms = excluded.heartbeat_ms, gone_ms = NULL",
        params![&n.process, &n.node, &n.address, &n.version, &n.catalog, n.agents, n.now_ms],
    )
    .await?;
    Ok(())
}

/// A live process's heartbeat; false when it was marked gone.
pub(crate) async fn heartbeat(
    s: &mut impl Sql,
    process: &str,
    draining: bool,
    inflight: u32,
    now: i64,
) -> StoreResult<Beat> {
    // A drain request the node already follows is done: cleared here.
    let row = s
        .row(
            "UPDATE nodes SET heartbeat_ms = $2, draining = $3, inflight = $4, drain_request = CASE WHEN drain_request = $3 THEN NULL ELSE drain_request END WHERE process = $1 AND gone_ms IS NULL RETURNING drain_request",
            params![process, now, draining, inflight],
        )
        .await?;
    Ok(match row {
        None => Beat {
            live: false,
            drain_request: None,
        },
        Some(r) => Beat {
            live: true,
            drain_request: r.get("drain_request")?,
        },
    })
}

/// Ask every live process of `node` to drain (`true`) or resume (`false`) at its next
/// heartbeat. Returns how many processes were asked.
pub(crate) async fn request_drain(s: &mut impl Sql, node: &str, drain: bool) -> StoreResult<u64> {
    s.exec(
        "UPDATE nodes SET drain_request = $2 WHERE node = $1 AND gone_ms IS NULL",
        params![node, drain],
    )
    .await
}

/// Mark a process gone (a clean exit).
pub(crate) async fn leave(s: &mut impl Sql, process: &str, now: i64) -> StoreResult<()> {
    s.exec(
        "UPDATE nodes SET gone_ms = $2, inflight = 0 WHERE process = $1 AND gone_ms IS NULL",
        params![process, now],
    )
    .await?;
    Ok(())
}

/// Live processes, and those gone since `gone_since`, oldest first, with the identities each
/// holds.
pub(crate) async fn list(s: &mut impl Sql, gone_since: i64) -> StoreResult<Vec<NodeRecord>> {
    let held = s
        .rows(
            "SELECT id, holder FROM agents WHERE holder IS NOT NULL ORDER BY id",
            &[],
        )
        .await?;
    let mut identities: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in &held {
        identities
            .entry(r.get("holder")?)
            .or_default()
            .push(r.get("id")?);
    }
    s.rows(
        "SELECT process, node, address, version, catalog, agents, started_ms, heartbeat_ms, draining, inflight, gone_ms
         FROM nodes WHERE gone_ms IS NULL OR gone_ms >= $1 ORDER BY started_ms, process",
        params![gone_since],
    )
    .await?
    .iter()
    .map(|r| {
        let process: String = r.get("process")?;
        Ok(NodeRecord {
            identities: identities.remove(&process).unwrap_or_default(),
            process,
            node: r.get("node")?,
            address: r.get("address")?,
            version: r.get("version")?,
            catalog: r.get("catalog")?,
            agents: r.get("agents")?,
            started_ms: r.get("started_ms")?,
            heartbeat_ms: r.get("heartbeat_ms")?,
            draining: r.get("draining")?,
            inflight: r.get("inflight")?,
            gone_ms: r.get("gone_ms")?,
        })
    })
    .collect()
}

/// Mark silent processes gone, expire their agents' leases (so the reaper requeues those
/// attempts at once) and free their identities, and forget processes gone for a day.
pub(crate) async fn reap_gone(s: &mut impl Sql, ttl_ms: i64, now: i64) -> StoreResult<Vec<String>> {
    let silent = s
        .rows(
            "SELECT process FROM nodes WHERE gone_ms IS NULL AND heartbeat_ms < $1 ORDER BY process",
            params![now - ttl_ms],
        )
        .await?;
    let mut gone = Vec::with_capacity(silent.len());
    for r in &silent {
        let process: String = r.get("process")?;
        // Another node may have reaped it meanwhile: only the one that marks it goes on.
        let marked = s
            .exec(
                "UPDATE nodes SET gone_ms = $2, inflight = 0 WHERE process = $1 AND gone_ms IS NULL",
                params![&process, now],
            )
            .await?;
        if marked == 0 {
            continue;
        }
        s.exec(
            "UPDATE attempts SET lease_expires_ms = $2 WHERE state = 'running' AND agent IN (SELECT id FROM agents WHERE holder = $1)",
            params![&process, now - 1],
        )
        .await?;
        s.exec(
            "UPDATE agents SET holder = NULL, hold = NULL, lease_expires_ms = 0 WHERE holder = $1",
            params![&process],
        )
        .await?;
        gone.push(process);
    }
    s.exec(
        "DELETE FROM nodes WHERE gone_ms < $1",
        params![now - KEEP_GONE_MS],
    )
    .await?;
    Ok(gone)
}

/// Who holds an agent identity.
pub(crate) async fn identity_holder(
    s: &mut impl Sql,
    id: &str,
) -> StoreResult<Option<IdentityHold>> {
    s.row(
        "SELECT holder, lease_expires_ms FROM agents WHERE id = $1",
        params![id],
    )
    .await?
    .map(|r| {
        Ok(IdentityHold {
            holder: r.get("holder")?,
            lease_expires_ms: r.get("lease_expires_ms")?,
        })
    })
    .transpose()
}

/// Take an identity if its holder is still `expected` (compare-and-set: on PostgreSQL a
/// concurrent taker waits for the row lock, then finds the holder changed and takes nothing);
/// the fresh hold token when taken.
pub(crate) async fn take_identity(
    s: &mut impl Sql,
    (id, node): (&str, &str),
    expected: Option<&str>,
    holder: &str,
    lease_ms: i64,
    now: i64,
) -> StoreResult<Option<String>> {
    s.exec(
        "INSERT INTO agents (id, node, started_ms, heartbeat_ms, holder, lease_expires_ms) VALUES ($1, $2, $3, $3, NULL, 0)
         ON CONFLICT (id) DO NOTHING",
        params![id, node, now],
    )
    .await?;
    let hold = crate::lifecycle::attempts::new_token();
    let n = s
        .exec(
            "UPDATE agents SET holder = $3, hold = $7, lease_expires_ms = $4, node = $5, started_ms = $6, heartbeat_ms = $6
             WHERE id = $1 AND holder IS NOT DISTINCT FROM $2",
            params![id, expected, holder, now + lease_ms, node, now, &hold],
        )
        .await?;
    Ok((n == 1).then_some(hold))
}

/// Extend every identity `holder` holds; how many.
pub(crate) async fn renew_identities(
    s: &mut impl Sql,
    holder: &str,
    lease_ms: i64,
    now: i64,
) -> StoreResult<u64> {
    s.exec(
        "UPDATE agents SET lease_expires_ms = $2, heartbeat_ms = $3 WHERE holder = $1",
        params![holder, now + lease_ms, now],
    )
    .await
}

/// Give up every identity `holder` holds; how many.
pub(crate) async fn release_identities(
    s: &mut impl Sql,
    holder: &str,
    now: i64,
) -> StoreResult<u64> {
    s.exec(
        "UPDATE agents SET holder = NULL, hold = NULL, lease_expires_ms = 0, heartbeat_ms = $2 WHERE holder = $1",
        params![holder, now],
    )
    .await
}
