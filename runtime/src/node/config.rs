//! A node's settings: its name, how many agents it runs, the timings of its leases,
//! heartbeats and polls, and how long it keeps what is finished.

use crate::engine::CompileConfig;
use std::time::Duration;

/// A node's settings (`driftless serve`'s flags): its name, its agents, leases and polling.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's name; agent identities are `<node>/<n>`.
    pub node: String,
    /// Agents (concurrent attempts) on this node.
    pub agents: usize,
    /// How long a claim's lease lasts without a heartbeat.
    pub lease: Duration,
    /// How often a running attempt's lease is extended.
    pub heartbeat: Duration,
    /// How often idle agents look for work when no wake-up arrives (the backstop).
    pub poll: Duration,
    /// How often expired leases are reaped.
    pub reap_every: Duration,
    /// How often the task resolution cache is compared with the store's generation (the
    /// backstop for deploys made through other nodes).
    pub refresh_tasks: Duration,
    /// Largest component upload, in bytes.
    pub max_upload_bytes: usize,
    /// Largest job input (compact JSON), in bytes; a JSON body or multipart `spec` part may be
    /// 64 KiB larger for the spec's other fields.
    pub max_input_bytes: usize,
    /// How long a stopping node lets in-flight attempts finish before it interrupts them.
    pub grace: Duration,
    /// How often the node heartbeats in the registry (and judges new compatibility classes).
    pub node_heartbeat: Duration,
    /// A node process silent for this long is marked gone: its identities are freed and its
    /// attempts go back to the queue.
    pub node_ttl: Duration,
    /// How long gone node processes still count for admission: a job that only a node gone
    /// this recently can run is accepted and waits for it (a node restarting in a rolling
    /// upgrade), where one no node ever ran is refused.
    pub remember_nodes: Duration,
    /// Who may call the API: the admin token, open mode, allowed hosts.
    pub auth: crate::tokens::AuthConfig,
    /// The compile pool: workers, queue and deadline for inspecting and compiling components.
    pub compile: CompileConfig,
    /// How long finished jobs are kept after they end (then deleted with their attempts,
    /// events, logs and output), and how long a component nothing references is kept.
    pub retention: Duration,
    /// The most bytes of compiled artifacts kept on disk; past it the least recently used go.
    pub compile_cache_bytes: u64,
}

/// Finished jobs are kept this long by default (`--retention 7d`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The on-disk compile cache's bound by default (`--compile-cache-bytes`, 1 GiB).
pub const DEFAULT_COMPILE_CACHE_BYTES: u64 = 1 << 30;

/// Agents per core by default: an agent spends most of an attempt of a short job waiting for
/// the store's commits, not on a core, so a node needs several per core to keep them busy.
pub const AGENTS_PER_CORE: usize = 4;

/// The default number of agents: [`AGENTS_PER_CORE`] per core.
pub fn default_agents() -> usize {
    AGENTS_PER_CORE * std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node: "node-1".into(),
            agents: default_agents(),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            poll: Duration::from_millis(250),
            reap_every: Duration::from_secs(5),
            refresh_tasks: Duration::from_secs(1),
            max_upload_bytes: 32 << 20,
            max_input_bytes: 1 << 20,
            grace: Duration::from_secs(30),
            node_heartbeat: Duration::from_secs(1),
            node_ttl: Duration::from_secs(10),
            remember_nodes: Duration::from_secs(600),
            auth: crate::tokens::AuthConfig::default(),
            compile: CompileConfig::default(),
            retention: DEFAULT_RETENTION,
            compile_cache_bytes: DEFAULT_COMPILE_CACHE_BYTES,
        }
    }
}

/// A duration that is not `N` followed by `s`, `m`, `h` or `d`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a duration: write a whole number followed by s, m, h or d (10s, 90m, 36h, 7d), at least 1s"
)]
pub struct BadDuration(pub String);

/// A duration written as a whole number and a unit: `10s`, `90m`, `36h`, `7d` (at least 1 s).
pub fn parse_duration(text: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(text.to_string());
    let t = text.trim();
    let unit = t.chars().last().ok_or_else(bad)?;
    let secs_per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = t[..t.len() - 1].parse().map_err(|_| bad())?;
    match n.checked_mul(secs_per) {
        Some(secs) if secs >= 1 => Ok(Duration::from_secs(secs)),
        _ => Err(bad()),
    }
}

/// A duration as [`parse_duration`] reads it, in the largest unit that divides it (`7d`,
/// `36h`, `90m`, `10s`).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    for (per, unit) in [(86_400, "d"), (3600, "h"), (60, "m")] {
        if secs >= per && secs.is_multiple_of(per) {
            return format!("{}{unit}", secs / per);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_write_in_whole_units() {
        for (text, secs) in [
            ("10s", 10),
            ("90m", 5400),
            ("36h", 129_600),
            ("7d", 604_800),
        ] {
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(secs)));
            assert_eq!(format_duration(Duration::from_secs(secs)), text);
        }
        for bad in [
            "",
            "7",
            "d",
            "7w",
            "-1d",
            "1.5h",
            "0s",
            "7 d",
            "99999999999999999d",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains("10s, 90m, 36h, 7d"), "{bad}: {e}");
        }
    }
}
