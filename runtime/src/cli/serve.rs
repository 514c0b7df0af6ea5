//! `driftless serve`: the daemon on its embedded default (SQLite under a data directory).

use super::HostArgs;
use anyhow::Result;
use driftless::daemon::{Daemon, DaemonConfig, StoreChoice};
use driftless::node::server::{ServerConfig, TlsFiles};
use driftless::node::{DEFAULT_COMPILE_CACHE_BYTES, NodeConfig, parse_duration};
use driftless::tokens::{AdminToken, AuthConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; `127.0.0.1:0` picks a free port (the bound address is printed).
    #[arg(long, env = "DRIFTLESS_LISTEN", default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Where jobs, components, kv data and compiled artifacts are kept.
    #[arg(long, env = "DRIFTLESS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The store: `sqlite` (the default: a file in the data directory, no set-up) or a
    /// PostgreSQL URL (`postgres://user@host:5432/db`) shared by every node of a cluster.
    #[arg(long, env = "DRIFTLESS_STORE", default_value = "sqlite")]
    store: String,
    /// Agents (attempts run at once); default: four per core (an agent mostly waits for the
    /// store's commits).
    #[arg(long, env = "DRIFTLESS_AGENTS")]
    agents: Option<usize>,
    /// This node's name; agent identities are `<node>/<n>`.
    #[arg(long, env = "DRIFTLESS_NODE", default_value = "node-1")]
    node: String,
    #[command(flatten)]
    host: HostArgs,
    /// Largest component upload, in bytes.
    #[arg(long, env = "DRIFTLESS_MAX_UPLOAD_BYTES", default_value_t = 32 << 20)]
    max_upload_bytes: usize,
    /// Largest job input (JSON), in bytes: the `input` of a JSON submission, a multipart
    /// `spec` part or the `input` query parameter; larger ones answer 413 `input-too-large`.
    #[arg(long, env = "DRIFTLESS_MAX_INPUT_BYTES", default_value_t = 1 << 20)]
    max_input_bytes: usize,
    /// How long an attempt's lease lasts without a heartbeat, in milliseconds.
    #[arg(long, env = "DRIFTLESS_LEASE_MS", default_value_t = 30_000)]
    lease_ms: u64,
    /// How often expired leases are reaped, in milliseconds.
    #[arg(long, env = "DRIFTLESS_REAP_MS", default_value_t = 5_000)]
    reap_ms: u64,
    /// On SIGTERM or SIGINT, how long in-flight attempts may run on before they are
    /// interrupted and queued again (not charged), in milliseconds.
    #[arg(long, env = "DRIFTLESS_GRACE_MS", default_value_t = 30_000)]
    grace_ms: u64,
    /// A node process that has not heartbeaten in the registry for this long is marked gone:
    /// its agent identities are freed and its attempts go back to the queue (milliseconds).
    #[arg(long, env = "DRIFTLESS_NODE_TTL_MS", default_value_t = 10_000)]
    node_ttl_ms: u64,
    /// A file holding the admin token (surrounding whitespace ignored), or the token itself in
    /// DRIFTLESS_ADMIN_TOKEN: at least 16 characters, the same on every node of a cluster.
    /// With it, every request but /healthz, /readyz and /openapi.json needs a token (made with
    /// `driftless tokens create`). Without any token, the node serves loopback only (open
    /// mode).
    #[arg(long, env = "DRIFTLESS_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Serve without tokens on a non-loopback address. Anyone who reaches the port can then
    /// submit code, drain the node and deploy tasks: only for isolated networks.
    #[arg(long, env = "DRIFTLESS_INSECURE_NO_AUTH")]
    insecure_no_auth: bool,
    /// In open mode (no tokens), also answer requests whose Host header is this name
    /// (`name` for any port, `name:port` for one); repeatable. Loopback names always pass.
    #[arg(
        long = "allowed-host",
        value_name = "HOST",
        env = "DRIFTLESS_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,
    /// Threads that inspect and compile uploaded components, at a lower priority than the
    /// threads serving requests; default: one per core.
    #[arg(long, env = "DRIFTLESS_COMPILE_WORKERS")]
    compile_workers: Option<usize>,
    /// Components that may wait for a compile worker; an upload beyond the workers and this
    /// queue is answered 503 `compile-busy` with Retry-After.
    #[arg(long, env = "DRIFTLESS_COMPILE_QUEUE", default_value_t = 4)]
    compile_queue: usize,
    /// The longest a request waits for its component's inspection and compile (queue time
    /// included), in milliseconds; past it the request gets 503 `compile-timeout`, the compile
    /// runs to its end and its result is cached.
    #[arg(long, env = "DRIFTLESS_COMPILE_TIMEOUT_MS", default_value_t = 60_000)]
    compile_timeout_ms: u64,
    /// Serve HTTPS with this certificate chain (PEM: the server's certificate first, then
    /// its intermediates); needs --tls-key.
    #[arg(
        long,
        env = "DRIFTLESS_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "DRIFTLESS_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// How long a client has to send a request's headers (from the connection's start,
    /// TLS handshake included, or from the first byte of a later request), in
    /// milliseconds; a connection that misses it is closed.
    #[arg(long, env = "DRIFTLESS_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// How long a client has to send a request's whole body once its headers arrived, in
    /// milliseconds (the default lets a 32 MiB upload through at about 2.3 Mbit/s); missed:
    /// 408 request-timeout and the connection is closed.
    #[arg(long, env = "DRIFTLESS_BODY_TIMEOUT_MS", default_value_t = 120_000)]
    body_timeout_ms: u64,
    /// How long a keep-alive connection may wait for its next request before it is closed,
    /// in milliseconds.
    #[arg(long, env = "DRIFTLESS_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// How long finished jobs (succeeded, failed, cancelled) are kept after they end: then
    /// they are deleted with their attempts, events, logs and output, and components no job
    /// or task version uses are deleted once unused as long. A whole number and a unit: 10s,
    /// 90m, 36h, 7d.
    #[arg(
        long,
        env = "DRIFTLESS_RETENTION",
        value_name = "DURATION",
        default_value = "7d",
        value_parser = parse_duration
    )]
    retention: Duration,
    /// The most bytes of compiled components kept on disk (the compile cache in the data
    /// directory); past it, the least recently used are removed (and compiled again if needed).
    #[arg(
        long,
        env = "DRIFTLESS_COMPILE_CACHE_BYTES",
        value_name = "BYTES",
        default_value_t = DEFAULT_COMPILE_CACHE_BYTES
    )]
    compile_cache_bytes: u64,
    /// Most client connections served at once; over it a new connection is answered 503
    /// too-many-connections (with Retry-After) and closed. Default: the descriptor limit
    /// (raised to its hard maximum at start) less 256, at most 10,000.
    #[arg(long, env = "DRIFTLESS_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
}

/// The admin token from DRIFTLESS_ADMIN_TOKEN or --admin-token-file (never a plain flag: a
/// command line is visible to every user of the machine).
fn admin_token(file: Option<&std::path::Path>) -> Result<Option<AdminToken>> {
    let from_env = std::env::var("DRIFTLESS_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let secret = match (from_env, file) {
        (Some(_), Some(_)) => anyhow::bail!(
            "both DRIFTLESS_ADMIN_TOKEN and --admin-token-file are set; give the admin token one way"
        ),
        (Some(secret), None) => secret,
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the admin token file {} ({e}); give a readable file with --admin-token-file, or the token in DRIFTLESS_ADMIN_TOKEN",
                path.display()
            )
        })?,
        (None, None) => return Ok(None),
    };
    Ok(Some(AdminToken::new(&secret).map_err(anyhow::Error::msg)?))
}

/// `$XDG_DATA_HOME/driftless` or `~/.local/share/driftless`, else `./driftless-data`.
fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("driftless"))
        .unwrap_or_else(|| PathBuf::from("driftless-data"))
}

pub async fn run(args: Args) -> Result<i32> {
    let auth = AuthConfig {
        admin: admin_token(args.admin_token_file.as_deref())?,
        open_allowed: args.listen.ip().is_loopback() || args.insecure_no_auth,
        allowed_hosts: args.allowed_hosts.clone(),
    };
    let mut node = NodeConfig {
        node: args.node,
        max_upload_bytes: args.max_upload_bytes,
        max_input_bytes: args.max_input_bytes,
        ..NodeConfig::default()
    };
    if let Some(n) = args.agents {
        anyhow::ensure!(n >= 1, "--agents must be at least 1");
        node.agents = n;
    }
    node.lease = Duration::from_millis(args.lease_ms);
    node.heartbeat = Duration::from_millis((args.lease_ms / 3).max(1));
    node.reap_every = Duration::from_millis(args.reap_ms);
    node.grace = Duration::from_millis(args.grace_ms);
    anyhow::ensure!(
        args.node_ttl_ms >= 1000,
        "--node-ttl-ms must be at least 1000: nodes heartbeat every second"
    );
    node.node_ttl = Duration::from_millis(args.node_ttl_ms);
    node.retention = args.retention;
    node.compile_cache_bytes = args.compile_cache_bytes;
    node.auth = auth;
    if let Some(n) = args.compile_workers {
        anyhow::ensure!(n >= 1, "--compile-workers must be at least 1");
        node.compile.workers = n;
    }
    anyhow::ensure!(
        args.compile_timeout_ms >= 1,
        "--compile-timeout-ms must be at least 1"
    );
    node.compile.queue = args.compile_queue;
    node.compile.timeout = Duration::from_millis(args.compile_timeout_ms);
    for (flag, ms) in [
        ("--header-timeout-ms", args.header_timeout_ms),
        ("--body-timeout-ms", args.body_timeout_ms),
        ("--idle-timeout-ms", args.idle_timeout_ms),
    ] {
        anyhow::ensure!(ms >= 1, "{flag} must be at least 1 millisecond");
    }
    anyhow::ensure!(
        args.max_connections != Some(0),
        "--max-connections must be at least 1"
    );
    let server = ServerConfig {
        header_timeout: Duration::from_millis(args.header_timeout_ms),
        body_timeout: Duration::from_millis(args.body_timeout_ms),
        idle_timeout: Duration::from_millis(args.idle_timeout_ms),
        max_connections: args.max_connections,
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| TlsFiles { cert, key }),
    };
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    let store = StoreChoice::parse(&args.store)?;
    let config = DaemonConfig {
        listen: args.listen,
        store,
        data_dir: data_dir.clone(),
        catalog: args.host.catalog()?,
        node,
        server,
    };
    let insecure = args.insecure_no_auth && !args.listen.ip().is_loopback();
    let daemon = Daemon::start(config).await?;
    let open = daemon.node.tokens().is_open().await?;
    println!(
        "driftless listening on {} (node {}, {} agents, store {}, data in {}; {})",
        daemon.url,
        daemon.node.config().node,
        daemon.node.config().agents,
        daemon.store,
        data_dir.display(),
        match (open, insecure) {
            (true, false) =>
                "open mode: no token configured, so it answers without tokens on loopback only",
            (true, true) =>
                "INSECURE: no token configured and --insecure-no-auth: anyone who reaches this port can run code",
            (false, _) => "tokens required",
        }
    );
    if open && insecure {
        tracing::warn!(
            "--insecure-no-auth: serving WITHOUT TOKENS on {}: anyone who can reach this port can submit code, cancel jobs, drain the node and deploy tasks; set DRIFTLESS_ADMIN_TOKEN instead",
            daemon.addr
        );
    }
    tracing::info!(addr = %daemon.addr, max_connections = daemon.max_connections, "serving");
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let grace = daemon.node.config().grace;
    eprintln!(
        "driftless: stopping: draining, in-flight attempts have {} ms to finish (signal again to exit at once)",
        grace.as_millis()
    );
    tokio::select! {
        stopped = daemon.shutdown(grace) => {
            stopped?;
            eprintln!("driftless: stopped");
            Ok(0)
        }
        _ = term.recv() => exit_now(),
        _ = int.recv() => exit_now(),
    }
}

/// A second signal: exit at once. Attempts still running are recovered by identity (a node
/// restarted on this data directory) or by lease (any node, once it expires).
fn exit_now() -> ! {
    eprintln!("driftless: second signal: exiting at once; running attempts will be recovered");
    std::process::exit(130)
}
