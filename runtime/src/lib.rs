//! driftless: a runtime for job code shipped as WebAssembly components.
//!
//! The flow (DESIGN.md), one module per stage:
//!
//! ```text
//! HTTP (api) ──► admission ──► store: blob + job row, committed ──► 201
//!                                           │
//! agent: claim (identity + lease token) ◄───┘
//!    └─► engine: cached compile ─► instantiate with host modules ─► run under limits
//!           └─► store: result / retry / failure, fenced by the lease token
//! ```
//!
//! [`api`] serves HTTP over a node and takes jobs and task deploys; [`admission`] reads and
//! inspects a component once, judges it with [`compat`] (a pure leaf: imports +
//! [`compat::Catalog`] → report) against this node's catalog and, when this node cannot run
//! it, against the catalogs of the cluster's other nodes, then stores it. Its host modules
//! are implemented in [`host`]; [`engine`] compiles it once and runs attempts under limits;
//! [`lifecycle`] decides every step of a job's and a task version's life, and words it;
//! [`store`] keeps components, jobs, attempts, tasks and the node registry durably (SQLite or
//! PostgreSQL). [`node`] is the daemon wing: the node's state and its verbs, the agents, the
//! cluster registry, the task resolver, identities, the listener, and the one place that
//! starts and stops every background loop. [`daemon`] assembles a node and stops it.
//! [`wire`] holds the API's bodies as types, shared by the server and the CLI.
//! [`metrics`] renders `/metrics`; [`fault`] holds the crash points the tests use; [`tokens`]
//! decides who may call the API (scopes, token hashes, open mode); [`console`] is the
//! operator's web page, served by the API's listener.

pub mod admission;
pub mod api;
pub mod compat;
pub mod console;
pub mod daemon;
pub mod engine;
pub mod fault;
pub mod host;
pub mod lifecycle;
pub mod metrics;
pub mod node;
pub mod store;
pub mod tokens;
pub mod wire;
