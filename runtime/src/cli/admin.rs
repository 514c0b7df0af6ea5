//! The CLI's node commands: `drain [--wait]`, `resume`, `inflight`, `nodes`.

use super::client::{Client, ClientArgs, decode};
use anyhow::Result;
use driftless::wire::{Inflight, NodeList, NodeState};
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

pub async fn drain(args: DrainArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
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

pub async fn resume(args: NodeArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
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
