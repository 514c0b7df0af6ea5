//! The CLI's node commands: `drain [--wait]`, `resume`, `inflight`, `nodes`.

use super::client::{Client, ClientArgs};
use anyhow::Result;
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

fn print_inflight(state: &Value) {
    let draining = if state["draining"] == true {
        "draining"
    } else {
        "taking work"
    };
    println!(
        "node {} ({draining}), agents {}: {} attempt(s) running",
        state["node"].as_str().unwrap_or("?"),
        state["agents"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default(),
        state["count"]
    );
    for a in state["attempts"].as_array().into_iter().flatten() {
        println!(
            "  {}  {} attempt {}  running for {} ms",
            a["agent"].as_str().unwrap_or(""),
            a["job"].as_str().unwrap_or(""),
            a["attempt"],
            a["running_ms"]
        );
    }
}

pub async fn drain(args: DrainArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let mut state = client
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
    let mut last = u64::MAX;
    while state["count"].as_u64().unwrap_or(0) > 0 {
        let count = state["count"].as_u64().unwrap_or(0);
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
    let state = client
        .json(client.request(Method::POST, "/v1/admin/resume"))
        .await?;
    show(&state, args.json)
}

/// `driftless nodes`: the registry, one line per node process.
pub async fn nodes(args: NodeArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let registry = client.get("/v1/nodes").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&registry)?);
        return Ok(0);
    }
    let kv_of = |catalog: &Value| -> String {
        catalog
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|m| !m.starts_with("wasi:"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "{:<12} {:<9} {:<22} {:<8} {:>8} {:>9}  {:<28} modules",
        "node", "state", "address", "version", "inflight", "heartbeat", "process"
    );
    for n in registry["nodes"].as_array().into_iter().flatten() {
        let heartbeat = if n["state"] == "gone" {
            "-".to_string()
        } else {
            format!("{} ms", n["heartbeat_age_ms"])
        };
        let me = if n["this_process"] == true { " *" } else { "" };
        println!(
            "{:<12} {:<9} {:<22} {:<8} {:>8} {:>9}  {:<28} {}",
            format!("{}{me}", n["node"].as_str().unwrap_or("?")),
            n["state"].as_str().unwrap_or("?"),
            n["address"].as_str().unwrap_or("?"),
            n["version"].as_str().unwrap_or("?"),
            n["inflight"],
            heartbeat,
            n["process"].as_str().unwrap_or("?"),
            kv_of(&n["catalog"])
        );
    }
    Ok(0)
}

pub async fn inflight(args: NodeArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let state = client.get("/v1/admin/inflight").await?;
    show(&state, args.json)
}

fn show(state: &Value, json: bool) -> Result<i32> {
    if json {
        println!("{}", serde_json::to_string_pretty(state)?);
    } else {
        print_inflight(state);
    }
    Ok(0)
}
