//! node: the daemon wing. One daemon process's coordination, in one room:
//!
//! - `config`: the node's settings ([`NodeConfig`]);
//! - `state`: [`Node`], the state the API, the agents and the loops share, changed through
//!   verbs (drain, wake, start/end/interrupt attempts, resolve a task, learn a class, ...);
//! - [`registry`]: the node registry as this node sees it (which job classes it can run,
//!   which nodes can run a job, placement);
//! - [`resolver`]: task references and the cache of what `current` resolves to;
//! - `identity`: exclusive agent identities held by this process;
//! - `agent`: the agents (claim, lease, run, record, recover) and the lease reaper;
//! - `timers` and `schedules`: delayed jobs made ready when due, and cron schedules fired;
//! - [`listener`]: the daemon's TCP listener, shared with the process that replaces it;
//! - [`server`]: the HTTP server on it: accept loop, TLS, connection cap and deadlines;
//! - [`retention`]: deleting finished jobs and unused components after `--retention`;
//! - [`loops`]: the one place that starts every background loop and keeps its handle, so a
//!   stopping node stops and awaits them all (`stop`: the signal they wait on).
//!
//! Submodules import their siblings, never this module, and none imports one that imports
//! it back: `state` sits on `config`, `registry`, `resolver` and `identity`; `agent` on
//! `state`; `retention` on `state`; `loops` on `agent`, `retention` and `state`.

mod agent;
mod config;
mod finish_waits;
mod identity;
pub mod listener;
pub mod loops;
pub mod registry;
pub mod resolver;
pub mod retention;
mod schedules;
pub mod server;
mod state;
mod stop;
mod timers;

pub use config::{
    BadDuration, DEFAULT_COMPILE_CACHE_BYTES, DEFAULT_RETENTION, NodeConfig, format_duration,
    parse_duration,
};
pub use finish_waits::FinishWatch;
pub use state::{Node, PrepareStoredError, Running};
