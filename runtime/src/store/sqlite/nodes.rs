//! The node registry and compatibility classes on SQLite (schema 4).

use super::{Cached, backend};
use crate::store::*;
use rusqlite::{Connection, OptionalExtension, params};

/// How long rows of gone processes are kept for `GET /v1/nodes` history.
const KEEP_GONE_MS: i64 = 24 * 3600 * 1000;

pub(super) fn classes_after(c: &Connection, after: i64) -> StoreResult<Vec<RequirementClass>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT seq, class, spec FROM requirement_classes WHERE seq > ?1 ORDER BY seq",
        )
        .map_err(backend)?;
    stmt.query_map([after], |r| {
        Ok(RequirementClass {
            seq: r.get(0)?,
            class: r.get(1)?,
            spec: r.get(2)?,
        })
    })
    .map_err(backend)?
    .collect::<rusqlite::Result<_>>()
    .map_err(backend)
}

pub(super) fn class_spec(c: &Connection, class: &str) -> StoreResult<Option<String>> {
    c.query_row_cached(
        "SELECT spec FROM requirement_classes WHERE class = ?1",
        [class],
        |r| r.get(0),
    )
    .optional()
    .map_err(backend)
}

pub(super) fn register(c: &Connection, n: &NodeRegistration) -> StoreResult<()> {
    c.execute_cached(
        "INSERT INTO nodes (process, node, address, version, catalog, agents, started_ms, heartbeat_ms, draining, inflight, gone_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0, 0, NULL)
         ON CONFLICT (process) DO UPDATE SET node = ?2, address = ?3, version = ?4, catalog = ?5, agents = ?6, heartbeat_ms = ?7, gone_ms = NULL",
        params![n.process, n.node, n.address, n.version, n.catalog, n.agents, n.now_ms],
    )
    .map_err(backend)?;
    Ok(())
}

pub(super) fn heartbeat(
    c: &Connection,
    process: &str,
    draining: bool,
    inflight: u32,
    now: i64,
) -> StoreResult<bool> {
    let n = c
        .execute_cached(
            "UPDATE nodes SET heartbeat_ms = ?2, draining = ?3, inflight = ?4 WHERE process = ?1 AND gone_ms IS NULL",
            params![process, now, draining, inflight],
        )
        .map_err(backend)?;
    Ok(n == 1)
}

pub(super) fn leave(c: &Connection, process: &str, now: i64) -> StoreResult<()> {
    c.execute_cached(
        "UPDATE nodes SET gone_ms = ?2, inflight = 0 WHERE process = ?1 AND gone_ms IS NULL",
        params![process, now],
    )
    .map_err(backend)?;
    Ok(())
}

pub(super) fn list(c: &Connection, gone_since: i64) -> StoreResult<Vec<NodeRecord>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT n.process, n.node, n.address, n.version, n.catalog, n.agents, n.started_ms, n.heartbeat_ms, n.draining, n.inflight, n.gone_ms,
                    (SELECT json_group_array(id) FROM (SELECT a.id FROM agents a WHERE a.holder = n.process ORDER BY a.id))
             FROM nodes n WHERE n.gone_ms IS NULL OR n.gone_ms >= ?1 ORDER BY n.started_ms, n.process",
        )
        .map_err(backend)?;
    stmt.query_map([gone_since], |r| {
        let identities: String = r.get(11)?;
        Ok(NodeRecord {
            process: r.get(0)?,
            node: r.get(1)?,
            address: r.get(2)?,
            version: r.get(3)?,
            catalog: r.get(4)?,
            agents: r.get(5)?,
            started_ms: r.get(6)?,
            heartbeat_ms: r.get(7)?,
            draining: r.get::<_, i64>(8)? != 0,
            inflight: r.get(9)?,
            gone_ms: r.get(10)?,
            identities: serde_json::from_str(&identities).unwrap_or_default(),
        })
    })
    .map_err(backend)?
    .collect::<rusqlite::Result<_>>()
    .map_err(backend)
}

pub(super) fn reap_gone(c: &Connection, ttl_ms: i64, now: i64) -> StoreResult<Vec<String>> {
    let gone: Vec<String> = {
        let mut stmt = c
            .prepare_cached(
                "SELECT process FROM nodes WHERE gone_ms IS NULL AND heartbeat_ms < ?1 ORDER BY process",
            )
            .map_err(backend)?;
        stmt.query_map([now - ttl_ms], |r| r.get(0))
            .map_err(backend)?
            .collect::<rusqlite::Result<_>>()
            .map_err(backend)?
    };
    for process in &gone {
        c.execute_cached(
            "UPDATE nodes SET gone_ms = ?2, inflight = 0 WHERE process = ?1",
            params![process, now],
        )
        .map_err(backend)?;
        // Expired leases are what the reaper returns to the queue; the identities are free.
        c.execute_cached(
            "UPDATE attempts SET lease_expires_ms = ?2 - 1 WHERE state = 'running' AND agent IN (SELECT id FROM agents WHERE holder = ?1)",
            params![process, now],
        )
        .map_err(backend)?;
        c.execute_cached(
            "UPDATE agents SET holder = NULL, lease_expires_ms = 0 WHERE holder = ?1",
            [process],
        )
        .map_err(backend)?;
    }
    c.execute_cached("DELETE FROM nodes WHERE gone_ms < ?1", [now - KEEP_GONE_MS])
        .map_err(backend)?;
    Ok(gone)
}
