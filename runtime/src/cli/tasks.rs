//! The CLI's task commands: `deploy`, `tasks`, `task`, `rollback`, `undeploy`.

use super::client::{Client, ClientArgs};
use super::read_component;
use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

/// `driftless deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// The task's name.
    name: String,
    /// The component (.wasm) to deploy as its next version.
    job: PathBuf,
    /// Print the daemon's JSON answer.
    #[arg(long)]
    json: bool,
}

/// `driftless task` and `driftless tasks`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `driftless task NAME`.
#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    /// The task's name.
    name: String,
    #[command(flatten)]
    show: ShowArgs,
}

/// `driftless rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// The task's name.
    name: String,
    /// The version to make current (default: the newest registered one below current).
    #[arg(long, value_name = "VERSION")]
    to: Option<u32>,
}

/// `driftless undeploy`.
#[derive(Debug, clap::Args)]
pub struct UndeployArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// The task's name.
    name: String,
    /// The version to unregister.
    version: u32,
    /// Wait up to this many seconds for the jobs pinning the version to finish.
    #[arg(long, value_name = "SECONDS")]
    wait: Option<u64>,
}

/// `$USER@host`, sent as the actor of changes (the audit trail's "who").
fn actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}

pub async fn deploy(args: DeployArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let bytes = read_component(&args.job)?;
    let answer = client
        .json(
            client
                .request(Method::PUT, &format!("/v1/tasks/{}", args.name))
                .header("content-type", "application/wasm")
                .header("x-driftless-actor", actor())
                .body(bytes),
        )
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(0);
    }
    let version = &answer["version"];
    if answer["created"] == json!(true) {
        match answer["previous"].as_u64() {
            Some(p) => println!("{}: deployed version {version} (was {p})", args.name),
            None => println!("{}: created with version {version}", args.name),
        }
    } else {
        println!(
            "{}: unchanged; these bytes are already version {version} (current is {}). `driftless rollback {} --to {version}` makes it current",
            args.name, answer["previous"], args.name
        );
    }
    if answer["report"]["verdict"] == "degraded" {
        eprintln!(
            "  degraded: {}",
            answer["report"]["summary"].as_str().unwrap_or("")
        );
    }
    Ok(0)
}

pub async fn list(args: ShowArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let answer = client.get("/v1/tasks").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(0);
    }
    let tasks = answer["tasks"].as_array().cloned().unwrap_or_default();
    if tasks.is_empty() {
        eprintln!("no tasks; deploy one with `driftless deploy NAME JOB.wasm`");
        return Ok(0);
    }
    println!("{:<32} {:>8} {:>9}", "NAME", "CURRENT", "VERSIONS");
    for t in &tasks {
        println!(
            "{:<32} {:>8} {:>9}",
            t["name"].as_str().unwrap_or(""),
            t["current"],
            t["versions"]
        );
    }
    Ok(0)
}

pub async fn show(args: TaskArgs) -> Result<i32> {
    let client = Client::new(&args.show.daemon)?;
    let task = client.get(&format!("/v1/tasks/{}", args.name)).await?;
    if args.show.json {
        println!("{}", serde_json::to_string_pretty(&task)?);
        return Ok(0);
    }
    println!(
        "{}  current version {}",
        task["name"].as_str().unwrap_or(""),
        task["current"]
    );
    for v in task["versions"].as_array().into_iter().flatten() {
        let mark = if v["version"] == task["current"] {
            "*"
        } else {
            " "
        };
        let deleted = if v["deleted_ms"].is_null() {
            ""
        } else {
            " (unregistered)"
        };
        let j = &v["jobs"];
        println!(
            "{mark} v{:<4} {}  by {}{deleted}  jobs: {} queued, {} running, {} succeeded, {} failed",
            v["version"],
            v["component"]
                .as_str()
                .unwrap_or("")
                .get(..16)
                .unwrap_or(""),
            v["deployed_by"].as_str().unwrap_or(""),
            j["queued"],
            j["running"],
            j["succeeded"],
            j["failed"],
        );
        for i in v["imports"].as_array().into_iter().flatten() {
            println!("         {}", i.as_str().unwrap_or(""));
        }
    }
    for n in task["nodes"].as_array().into_iter().flatten() {
        println!(
            "  node {} resolves current to v{} (generation {})",
            n["node"].as_str().unwrap_or(""),
            n["version"],
            n["generation"]
        );
    }
    Ok(0)
}

pub async fn rollback(args: RollbackArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let body: Value = match args.to {
        Some(v) => json!({"to": v}),
        None => json!({}),
    };
    let answer = client
        .json(
            client
                .request(Method::POST, &format!("/v1/tasks/{}/rollback", args.name))
                .header("x-driftless-actor", actor())
                .json(&body),
        )
        .await?;
    println!(
        "{}: current is now version {} (was {})",
        args.name, answer["version"], answer["previous"]
    );
    Ok(0)
}

pub async fn undeploy(args: UndeployArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let mut path = format!("/v1/tasks/{}/versions/{}", args.name, args.version);
    if let Some(w) = args.wait {
        eprintln!(
            "waiting up to {w} s for the jobs pinning version {} to finish...",
            args.version
        );
        path.push_str(&format!("?wait={w}"));
    }
    client
        .json(
            client
                .request(Method::DELETE, &path)
                .header("x-driftless-actor", actor()),
        )
        .await?;
    println!("{}: version {} unregistered", args.name, args.version);
    Ok(0)
}
