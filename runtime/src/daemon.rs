//! Assembling a node: store, engine, sandbox, agents and the HTTP server.

use crate::api;
use crate::engine::{Engine, EngineConfig, Sandbox};
use crate::host::Catalog;
use crate::node::{Node, NodeConfig};
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreKv};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything `driftless serve` is configured with.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Where the database and the compile cache live.
    pub data_dir: PathBuf,
    /// The modules this node provides.
    pub catalog: Catalog,
    /// Node settings (name, agents, leases).
    pub node: NodeConfig,
}

/// A running daemon.
pub struct Daemon {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The node.
    pub node: Arc<Node>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Daemon {
    /// Open the store, start the engine, the agents and the server.
    pub async fn start(config: DaemonConfig) -> anyhow::Result<Daemon> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the data directory {} ({e}); choose another with --data-dir",
                config.data_dir.display()
            )
        })?;
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&config.data_dir.join("driftless.db"))?);
        let engine = Engine::new(EngineConfig {
            cache_dir: Some(config.data_dir.join("cache")),
            max_instances: (config.node.agents as u32 * 2).max(16),
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
        let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {} ({e}); is another daemon running there? Choose another with --listen", config.listen)
        })?;
        let addr = listener.local_addr()?;
        crate::agent::start(node.clone());
        tokio::spawn(crate::tasks::keep_fresh(node.clone()));
        let app = api::router(node.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Daemon { addr, node, server })
    }

    /// Serve until the server stops.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.server.await??;
        Ok(())
    }
}
