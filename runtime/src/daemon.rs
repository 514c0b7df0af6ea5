//! Assembling a node: store, engine, sandbox, the node's background loops and the HTTP
//! server; and stopping it without losing or double-running anything.

use crate::api;
use crate::compat::Catalog;
use crate::engine::{Engine, EngineConfig, Sandbox};
use crate::node::loops::{self, Loops, Notices};
use crate::node::server::{Server, ServerConfig};
use crate::node::{Node, NodeConfig, listener, server};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreKv};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a stopping node keeps answering after its drain began (at most the grace).
const DRAIN_LINGER: Duration = Duration::from_secs(1);

/// Which store a node uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// SQLite in the data directory (the embedded default).
    Sqlite,
    /// PostgreSQL at this URL, shared by the nodes of a cluster.
    Postgres(String),
}

impl StoreChoice {
    /// `sqlite`, or a `postgres://` / `postgresql://` URL.
    pub fn parse(text: &str) -> anyhow::Result<StoreChoice> {
        let text = text.trim();
        if text.is_empty() || text == "sqlite" {
            Ok(StoreChoice::Sqlite)
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(StoreChoice::Postgres(text.to_string()))
        } else {
            anyhow::bail!(
                "--store `{text}` is not a store: use `sqlite` (the default, a file in the data directory) or a PostgreSQL URL such as postgres://driftless@db.internal:5432/driftless"
            )
        }
    }
}

/// Everything `driftless serve` is configured with.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The store.
    pub store: StoreChoice,
    /// Where the database and the compile cache live.
    pub data_dir: PathBuf,
    /// The modules this node provides.
    pub catalog: Catalog,
    /// Node settings (name, agents, leases).
    pub node: NodeConfig,
    /// The HTTP server's settings (TLS, deadlines, connection cap).
    pub server: ServerConfig,
}

/// Refuse to serve a non-loopback address without tokens (unless `--insecure-no-auth`): with
/// no admin token given and none in the store, anyone reaching the port could run code.
async fn refuse_open_off_loopback(config: &DaemonConfig, store: &dyn Store) -> anyhow::Result<()> {
    let auth = &config.node.auth;
    if auth.open_allowed || auth.admin.is_some() || !store.list_tokens().await?.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {} without tokens: anyone who reaches that address could submit code, drain the node and deploy tasks. Set DRIFTLESS_ADMIN_TOKEN (or --admin-token-file FILE) to a secret of at least 16 characters and send it as a bearer token (driftless --token / DRIFTLESS_TOKEN), or listen on loopback (--listen 127.0.0.1:7878), or, on an isolated network only, pass --insecure-no-auth",
        config.listen
    )
}

/// A running daemon.
pub struct Daemon {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// `http://ADDR`, or `https://ADDR` when it serves TLS.
    pub url: String,
    /// Most client connections it serves at once.
    pub max_connections: usize,
    /// Which store it uses, for people (`sqlite PATH`, `postgres user@host:port/db`; never a
    /// password).
    pub store: String,
    /// The node.
    pub node: Arc<Node>,
    loops: Loops,
    server: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Daemon {
    /// Open the store, start the engine, the node's background loops (agents among them) and
    /// the server.
    pub async fn start(config: DaemonConfig) -> anyhow::Result<Daemon> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the data directory {} ({e}); choose another with --data-dir",
                config.data_dir.display()
            )
        })?;
        let (store, described, notices): (Arc<dyn Store>, _, _) = match &config.store {
            StoreChoice::Sqlite => {
                let path = config.data_dir.join("driftless.db");
                let sqlite = SqliteStore::open(&path)?;
                (Arc::new(sqlite), format!("sqlite {}", path.display()), None)
            }
            StoreChoice::Postgres(url) => {
                let pg = PostgresStore::connect(url).await?;
                let notices = Notices {
                    changes: pg.listen().await?,
                    finished: pg.listen_finished().await?,
                };
                let described = format!("postgres {}", pg.target());
                (Arc::new(pg), described, Some(notices))
            }
        };
        refuse_open_off_loopback(&config, store.as_ref()).await?;
        let engine = Engine::new(EngineConfig {
            cache_dir: Some(config.data_dir.join("cache")),
            cache_max_bytes: config.node.compile_cache_bytes,
            max_instances: (config.node.agents as u32 * 2).max(16),
            compile: config.node.compile.clone(),
            ..EngineConfig::default()
        })?;
        let sandbox = Arc::new(
            Sandbox::new(
                engine,
                config.catalog.clone(),
                Arc::new(StoreKv(store.clone())),
            )
            .map_err(|e| anyhow::anyhow!("{e:#}"))?,
        );
        let node = Node::new(config.node.clone(), store, sandbox);
        let descriptors = match server::raise_descriptor_limit() {
            Ok(limit) => limit.soft,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the descriptor limit; assuming 1024");
                1024
            }
        };
        let max_connections = config.server.connection_cap(descriptors);
        let listener = listener::bind(config.listen).map_err(|e| {
            anyhow::anyhow!("cannot listen on {} ({e}); is something other than a driftless daemon using that port? Choose another with --listen", config.listen)
        })?;
        let addr = listener.local_addr()?;
        let server = Server::new(listener, config.server.clone(), max_connections)?;
        let url = server::url(addr, server.is_tls());
        let loops = loops::start(node.clone(), addr.to_string(), notices);
        let app = api::router(node.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(server.serve(app, async move {
            let _ = stopped.await;
        }));
        Ok(Daemon {
            addr,
            url,
            max_connections,
            store: described,
            node,
            loops,
            server,
            stop,
        })
    }

    /// Stop without losing or double-running anything: drain (claim nothing new, fail
    /// `/readyz`, ask clients to reconnect elsewhere), give in-flight attempts `grace` to
    /// finish, interrupt the rest (back to the queue, not charged), stop and await every
    /// background loop, release the agent identities, leave the registry, then stop accepting
    /// connections and finish the open ones.
    pub async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        let node = self.node.clone();
        node.set_draining(true);
        let inflight = node.inflight_count();
        tracing::info!(inflight, grace_ms = grace.as_millis() as u64, "draining");
        let linger_until = tokio::time::Instant::now() + grace.min(DRAIN_LINGER);
        let _ = tokio::time::timeout(grace, node.attempts_ended()).await;
        let interrupted = node.interrupt_all();
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "attempts still running at the end of the grace period were interrupted and queued again (not charged)"
            );
        }
        node.attempts_ended().await;
        // Agents, identity renewal and the registry heartbeat end here, so neither an
        // identity nor the registry row can be renewed after it is released.
        self.loops.stop().await;
        match node
            .store()
            .release_identities(node.holder(), node.store().now())
            .await
        {
            Ok(n) => tracing::info!(identities = n, "released this node's agent identities"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release the identities; they free up when their lease ends")
            }
        }
        if let Err(e) = node
            .store()
            .leave_node(node.holder(), node.store().now())
            .await
        {
            tracing::warn!(error = %e, "could not mark this node gone in the registry; it is marked gone after the node TTL");
        }
        // Keep answering (with `Connection: close`) for a moment after the drain began, so
        // load balancers see `/readyz` fail and keep-alive clients move their connections.
        tokio::time::sleep_until(linger_until).await;
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(10), self.server).await {
            Ok(joined) => joined?,
            Err(_) => tracing::warn!("connections still open 10 s after the drain; closing them"),
        }
        Ok(())
    }
}
