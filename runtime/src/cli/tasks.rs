//! The CLI's task commands: `deploy`, `tasks`, `task`, `rollback`, `undeploy`.

use super::client::{Client, ClientArgs, decode};
use super::read_component;
use anyhow::Result;
use driftless::compat::Verdict;
use driftless::wire::{
    DeleteQuery, DeployAnswer, DeployQuery, RollbackAnswer, RollbackSpec, Task, TaskList,
    UnregisterAnswer,
};
use reqwest::Method;
use serde_json::Value;
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
    /// At most this many of the task's jobs ready or running at once, with this version (its
    /// jobs without a --concurrency-key of their own share the key `task:NAME`).
    #[arg(long, value_name = "N")]
    max_concurrency: Option<u32>,
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
    let raw: Value = client
        .json(
            client
                .request(Method::PUT, &format!("/v1/tasks/{}", args.name))
                .query(&DeployQuery {
                    max_concurrency: args.max_concurrency,
                })
                .header("content-type", "application/wasm")
                .header("x-driftless-actor", actor())
                .body(bytes),
        )
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
        return Ok(0);
    }
    let answer: DeployAnswer = decode(&raw)?;
    let version = answer.version;
    match (answer.created, answer.previous) {
        (true, Some(p)) => println!("{}: deployed version {version} (was {p})", args.name),
        (true, None) => println!("{}: created with version {version}", args.name),
        (false, previous) => println!(
            "{}: unchanged; these bytes are already version {version} (current is {}). `driftless rollback {} --to {version}` makes it current",
            args.name,
            previous.map_or("null".to_string(), |p| p.to_string()),
            args.name
        ),
    }
    if answer.report.verdict == Verdict::Degraded {
        eprintln!("  degraded: {}", answer.report.summary);
    }
    Ok(0)
}

pub async fn list(args: ShowArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    client
        .each_page("/v1/tasks", |raw, first| {
            if args.json {
                println!("{}", serde_json::to_string_pretty(raw)?);
            }
            let page = decode::<TaskList>(raw)?;
            if !args.json {
                if first && page.tasks.is_empty() {
                    eprintln!("no tasks; deploy one with `driftless deploy NAME JOB.wasm`");
                    return Ok(None);
                }
                if first {
                    println!("{:<32} {:>8} {:>9}", "NAME", "CURRENT", "VERSIONS");
                }
                for t in &page.tasks {
                    println!("{:<32} {:>8} {:>9}", t.name, t.current, t.versions);
                }
            }
            Ok(page.next)
        })
        .await?;
    Ok(0)
}

pub async fn show(args: TaskArgs) -> Result<i32> {
    let client = Client::new(&args.show.daemon)?;
    let raw: Value = client.get(&format!("/v1/tasks/{}", args.name)).await?;
    if args.show.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
        return Ok(0);
    }
    let task: Task = decode(&raw)?;
    println!("{}  current version {}", task.name, task.current);
    for v in &task.versions {
        let mark = if v.version == task.current { "*" } else { " " };
        let deleted = if v.deleted_ms.is_none() {
            ""
        } else {
            " (unregistered)"
        };
        let limit = v
            .max_concurrency
            .map(|n| format!("  at most {n} at once"))
            .unwrap_or_default();
        let j = &v.jobs;
        println!(
            "{mark} v{:<4} {}  by {}{deleted}{limit}  jobs: {} queued, {} running, {} succeeded, {} failed",
            v.version,
            v.component.get(..16).unwrap_or(""),
            v.deployed_by,
            j.queued,
            j.running,
            j.succeeded,
            j.failed,
        );
        for i in &v.imports {
            println!("         {i}");
        }
    }
    for n in &task.nodes {
        println!(
            "  node {} resolves current to v{} (generation {})",
            n.node, n.version, n.generation
        );
    }
    Ok(0)
}

pub async fn rollback(args: RollbackArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let body = RollbackSpec { to: args.to };
    let answer: RollbackAnswer = client
        .json(
            client
                .request(Method::POST, &format!("/v1/tasks/{}/rollback", args.name))
                .header("x-driftless-actor", actor())
                .json(&body),
        )
        .await?;
    println!(
        "{}: current is now version {} (was {})",
        args.name,
        answer.version,
        answer
            .previous
            .map_or("null".to_string(), |p| p.to_string())
    );
    Ok(0)
}

pub async fn undeploy(args: UndeployArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let path = format!("/v1/tasks/{}/versions/{}", args.name, args.version);
    if let Some(w) = args.wait {
        eprintln!(
            "waiting up to {w} s for the jobs pinning version {} to finish...",
            args.version
        );
    }
    let _: UnregisterAnswer = client
        .json(
            client
                .request(Method::DELETE, &path)
                .query(&DeleteQuery { wait: args.wait })
                .header("x-driftless-actor", actor()),
        )
        .await?;
    println!("{}: version {} unregistered", args.name, args.version);
    Ok(0)
}
