//! The CLI's node commands: `drain [--wait] [--node NAME]`, `resume [--node NAME]`,
//! `inflight`, `nodes`.

use super::client::{Client, ClientArgs, decode};
use anyhow::Result;
use driftless::wire::{DrainRequested, Inflight, NodeList, NodeState};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// `driftless drain`.
#[derive(Debug, clap::Args)]
pub struct DrainArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// Wait until no attempt runs on the node any more, showing what is left.
    #[arg(long)]
    wait: bool,
    /// Another node of the cluster to drain, by name: asked through the registry, it drains
    /// at its next heartbeat (default: the node the CLI talks to, at once).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
}

/// `driftless resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// Another node of the cluster to resume, by name (through the registry, at its next
    /// heartbeat).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `driftless resume` and `driftless inflight`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn print_inflight(state: &Inflight) {
    let draining = if state.draining {
        "draining"
    } else {
        "taking work"
    };
    println!(
        "node {} ({draining}), agents {}: {} attempt(s) running",
        state.node,
        state.agents.join(", "),
        state.count
    );
    for a in &state.attempts {
        println!(
            "  {}  {} attempt {}  running for {} ms",
            a.agent, a.job, a.attempt, a.running_ms
        );
    }
}

/// Ask `node` through the registry to drain or resume; print what the daemon says.
async fn ask(client: &Client, node: &str, what: &str) -> Result<DrainRequested> {
    let asked: DrainRequested = client
        .json(client.request(Method::POST, &format!("/v1/nodes/{node}/{what}")))
        .await?;
    eprintln!("{}", asked.message);
    Ok(asked)
}

/// Wait until every live process of `node` drains and runs nothing, showing what is left.
async fn wait_drained(client: &Client, node: &str) -> Result<()> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("template"));
    bar.enable_steady_tick(Duration::from_millis(100));
    let quiet = bar.is_hidden();
    let mut last = String::new();
    loop {
        let registry: NodeList = client.get("/v1/nodes").await?;
        let live: Vec<_> = registry
            .nodes
            .iter()
            .filter(|n| n.node == node && n.state != NodeState::Gone)
            .collect();
        let running: u32 = live.iter().map(|n| n.inflight).sum();
        if live.iter().all(|n| n.state == NodeState::Draining) && running == 0 {
            bar.finish_and_clear();
            println!("{node} is drained: nothing runs on it");
            return Ok(());
        }
        let msg = if live.iter().all(|n| n.state == NodeState::Draining) {
            format!("{node} draining: {running} attempt(s) still running")
        } else {
            format!("waiting for {node} to start draining (its next heartbeat)")
        };
        if msg != last {
            if quiet {
                eprintln!("{msg}");
            }
            bar.set_message(msg.clone());
            last = msg;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub async fn drain(args: DrainArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    if let Some(node) = &args.node {
        ask(&client, node, "drain").await?;
        if args.wait {
            wait_drained(&client, node).await?;
        }
        return Ok(0);
    }
    let mut state: Inflight = client
        .json(client.request(Method::POST, "/v1/admin/drain"))
        .await?;
    if !args.wait {
        print_inflight(&state);
        return Ok(0);
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("template"));
    bar.enable_steady_tick(Duration::from_millis(100));
    let quiet = bar.is_hidden();
    let mut last = usize::MAX;
    while state.count > 0 {
        let count = state.count;
        if count != last {
            let msg = format!("draining: {count} attempt(s) still running");
            if quiet {
                eprintln!("{msg}");
            }
            bar.set_message(msg);
            last = count;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        state = client.get("/v1/admin/inflight").await?;
    }
    bar.finish_and_clear();
    print_inflight(&state);
    Ok(0)
}

pub async fn resume(args: ResumeArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    if let Some(node) = &args.node {
        let asked = ask(&client, node, "resume").await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&asked)?);
        }
        return Ok(0);
    }
    let state: Value = client
        .json(client.request(Method::POST, "/v1/admin/resume"))
        .await?;
    show(&state, args.json)
}

/// `driftless nodes`: the registry, one line per node process.
pub async fn nodes(args: NodeArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let raw: Value = client.get("/v1/nodes").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
        return Ok(0);
    }
    let registry: NodeList = decode(&raw)?;
    let kv_of = |catalog: &[String]| -> String {
        catalog
            .iter()
            .filter(|m| !m.starts_with("wasi:"))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "{:<12} {:<9} {:<22} {:<8} {:>8} {:>9}  {:<28} modules",
        "node", "state", "address", "version", "inflight", "heartbeat", "process"
    );
    for n in &registry.nodes {
        let heartbeat = if n.state == NodeState::Gone {
            "-".to_string()
        } else {
            format!("{} ms", n.heartbeat_age_ms)
        };
        let me = if n.this_process { " *" } else { "" };
        println!(
            "{:<12} {:<9} {:<22} {:<8} {:>8} {:>9}  {:<28} {}",
            format!("{}{me}", n.node),
            n.state.to_string(),
            n.address,
            n.version,
            n.inflight,
            heartbeat,
            n.process,
            kv_of(&n.catalog)
        );
    }
    Ok(0)
}

pub async fn inflight(args: NodeArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let state: Value = client.get("/v1/admin/inflight").await?;
    show(&state, args.json)
}

/// The node's state as JSON (as the daemon sent it) or as text.
fn show(state: &Value, json: bool) -> Result<i32> {
    if json {
        println!("{}", serde_json::to_string_pretty(state)?);
    } else {
        print_inflight(&decode(state)?);
    }
    Ok(0)
}
