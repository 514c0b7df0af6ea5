//! The CLI's daemon commands: `submit`, `status`, `logs`, `jobs`, `cancel`, `modules`.

use super::client::{Client, ClientArgs};
use super::read_component;
use anyhow::{Context, Result};
use driftless::node::resolver::TaskRef;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// `driftless submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// The job component (.wasm), or a deployed task: `NAME`, `NAME@current`, `NAME@7`.
    job: PathBuf,
    /// The input, as JSON text (default `null`).
    #[arg(long, value_name = "JSON", conflicts_with = "input_file")]
    input: Option<String>,
    /// Read the input (JSON) from this file; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    input_file: Option<PathBuf>,
    /// Wall-clock limit per attempt, in milliseconds.
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Memory limit per attempt, in MiB.
    #[arg(long, value_name = "MIB")]
    memory_mib: Option<u64>,
    /// Attempts allowed in all (the daemon's default is 3).
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,
    /// An import the job can run without (repeatable), e.g. `driftless:kv/store@1.1.0`.
    #[arg(long = "optional", value_name = "IMPORT")]
    optional_imports: Vec<String>,
    /// Submitting again with the same key returns the first job instead of a new one.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// Wait for the job to finish, showing progress, and print its output.
    #[arg(long)]
    wait: bool,
    /// Print the daemon's JSON answer (with --wait: the finished job) instead of text.
    #[arg(long)]
    json: bool,
}

/// `driftless status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// The job id.
    id: String,
    /// Wait for the job to finish, showing progress.
    #[arg(long)]
    wait: bool,
    /// Print the job as JSON.
    #[arg(long)]
    json: bool,
}

/// `driftless logs` and `driftless cancel`.
#[derive(Debug, clap::Args)]
pub struct IdArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// The job id.
    id: String,
}

/// `driftless jobs`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// Only jobs with this status: queued, running, succeeded, failed or cancelled.
    #[arg(long)]
    status: Option<String>,
    /// Jobs per page (newest first).
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Start after this cursor (printed at the end of the previous page).
    #[arg(long)]
    before: Option<i64>,
    /// Print the page as JSON.
    #[arg(long)]
    json: bool,
}

/// `driftless modules`.
#[derive(Debug, clap::Args)]
pub struct ModulesArgs {
    #[command(flatten)]
    daemon: ClientArgs,
    /// Print the catalog as JSON.
    #[arg(long)]
    json: bool,
}

fn input(args: &SubmitArgs) -> Result<Option<Value>> {
    let text = match (&args.input, &args.input_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            std::io::read_to_string(std::io::stdin()).context("cannot read the input from stdin")?
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the input file {}", path.display()))?,
        (None, None) => return Ok(None),
    };
    serde_json::from_str(&text).map(Some).with_context(|| {
        format!(
            "the input is not JSON; quote strings as JSON, e.g. --input '\"text\"' (got {text:?})"
        )
    })
}

pub async fn submit(args: SubmitArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let mut spec = json!({ "optional_imports": args.optional_imports });
    if let Some(input) = input(&args)? {
        spec["input"] = input;
    }
    for (key, value) in [
        ("timeout_ms", args.timeout_ms),
        ("memory_mib", args.memory_mib),
        ("max_attempts", args.max_attempts.map(u64::from)),
    ] {
        if let Some(v) = value {
            spec[key] = json!(v);
        }
    }
    let mut request = client.request(Method::POST, "/v1/jobs");
    let arg = args.job.to_string_lossy();
    if !args.job.exists()
        && let Ok(task) = TaskRef::parse(&arg)
    {
        spec["task"] = json!(task.to_string());
        request = request.json(&spec);
    } else {
        let component = read_component(&args.job).with_context(|| {
            format!(
                "`{arg}` is neither a readable .wasm file nor a task reference (NAME, NAME@VERSION)"
            )
        })?;
        let file_name = args
            .job
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "job.wasm".into());
        let form = Form::new()
            .part(
                "component",
                Part::bytes(component)
                    .file_name(file_name)
                    .mime_str("application/wasm")?,
            )
            .part(
                "spec",
                Part::text(spec.to_string()).mime_str("application/json")?,
            );
        request = request.multipart(form);
    }
    if let Some(key) = &args.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let answer = client.json(request).await?;
    let id = answer["job"]["id"]
        .as_str()
        .context("the daemon's answer has no job id")?
        .to_string();
    let verb = if answer["created"] == json!(false) {
        "already submitted (same idempotency key)"
    } else {
        "submitted"
    };
    let verdict = answer["report"]["verdict"].as_str().unwrap_or("accepted");
    eprintln!("{verb}: {id} ({verdict})");
    if verdict == "degraded" {
        eprintln!("  {}", answer["report"]["summary"].as_str().unwrap_or(""));
    }
    if !args.wait {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&answer)?);
        } else {
            println!("{id}");
        }
        return Ok(0);
    }
    let job = wait(&client, &id).await?;
    finish(&job, args.json)
}

/// Long-poll until the job is finished, with a spinner on a terminal (a line per change
/// otherwise). Interrupting the wait leaves the job running.
async fn wait(client: &Client, id: &str) -> Result<Value> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("template"));
    bar.enable_steady_tick(Duration::from_millis(100));
    let quiet = bar.is_hidden();
    let mut last = String::new();
    loop {
        let job = client.get(&format!("/v1/jobs/{id}?wait=2")).await?;
        let line = describe(&job);
        if line != last {
            if quiet {
                eprintln!("{id}: {line}");
            }
            bar.set_message(format!("{id}: {line}"));
            last = line;
        }
        if is_terminal(&job) {
            bar.finish_and_clear();
            return Ok(job);
        }
    }
}

fn is_terminal(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled")
    )
}

/// `running (attempt 1 of 3 on node-1/0) 40% halfway`.
fn describe(job: &Value) -> String {
    let mut line = job["status"].as_str().unwrap_or("unknown").to_string();
    let attempts = job["attempts"].as_u64().unwrap_or(0);
    if attempts > 0 {
        line.push_str(&format!(
            " (attempt {attempts} of {}",
            job["max_attempts"].as_u64().unwrap_or(0)
        ));
        if let Some(agent) = job["agent"].as_str() {
            line.push_str(&format!(" on {agent}"));
        }
        line.push(')');
    }
    if job["status"] == "queued" && attempts > 0 {
        line.push_str(", retrying after backoff");
    }
    if let Some(p) = job["progress"].as_object() {
        line.push_str(&format!(
            " {}% {}",
            p["percent"],
            p["message"].as_str().unwrap_or("")
        ));
    }
    line
}

/// Print a finished job's output (stdout) or failure (stderr); exit 0 only on success.
fn finish(job: &Value, as_json: bool) -> Result<i32> {
    let ok = job["status"] == "succeeded";
    if as_json {
        println!("{}", serde_json::to_string_pretty(job)?);
    } else if ok {
        match job["output_text"].as_str() {
            Some(text) => println!("{text}"),
            None => println!("{}", serde_json::to_string_pretty(&job["output"])?),
        }
    }
    if !ok {
        let id = job["id"].as_str().unwrap_or("the job");
        match job["status"].as_str() {
            Some("cancelled") => eprintln!("{id} was cancelled"),
            _ => eprintln!(
                "{id} failed after {} attempt(s): {} ({}); see `driftless logs {id}`",
                job["attempts"],
                job["error"]["message"]
                    .as_str()
                    .unwrap_or("no reason recorded"),
                job["error"]["code"].as_str().unwrap_or("error"),
            ),
        }
    }
    Ok(if ok { 0 } else { 1 })
}

pub async fn status(args: StatusArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let job = if args.wait {
        wait(&client, &args.id).await?
    } else {
        client.get(&format!("/v1/jobs/{}", args.id)).await?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
        return Ok(0);
    }
    println!("{}  {}", job["id"].as_str().unwrap_or(""), describe(&job));
    match job["task"].as_str() {
        Some(task) => println!("  task       {task}"),
        None => println!("  component  {}", job["component"].as_str().unwrap_or("")),
    }
    let created = job["created_ms"].as_i64().unwrap_or(0);
    if let Some(done) = job["finished_ms"].as_i64() {
        println!("  finished   {} ms after it was accepted", done - created);
    }
    for a in job["attempt_list"].as_array().into_iter().flatten() {
        let took = a["finished_ms"]
            .as_i64()
            .map(|f| format!(", {} ms", f - a["started_ms"].as_i64().unwrap_or(f)))
            .unwrap_or_default();
        println!(
            "  attempt {}  {} on {}{took}",
            a["number"],
            a["state"].as_str().unwrap_or(""),
            a["agent"].as_str().unwrap_or("")
        );
    }
    if let Some(e) = job["error"].as_object() {
        println!(
            "  error      {} ({})",
            e["message"].as_str().unwrap_or(""),
            e["code"].as_str().unwrap_or("")
        );
    }
    if job["status"] == "succeeded" {
        let output = match job["output_text"].as_str() {
            Some(text) => text.to_string(),
            None => job["output"].to_string(),
        };
        println!("  output     {output}");
    }
    Ok(0)
}

pub async fn logs(args: IdArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let text = client
        .send(client.request(Method::GET, &format!("/v1/jobs/{}/logs", args.id)))
        .await?
        .text()
        .await?;
    print!("{text}");
    Ok(0)
}

pub async fn cancel(args: IdArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let job = client
        .json(client.request(Method::POST, &format!("/v1/jobs/{}/cancel", args.id)))
        .await?;
    let status = job["status"].as_str().unwrap_or("unknown");
    match status {
        "cancelled" => println!("{}: cancelled", args.id),
        "running" => println!(
            "{}: cancellation requested; the running attempt is being stopped",
            args.id
        ),
        other => println!("{}: already {other}; nothing to cancel", args.id),
    }
    Ok(0)
}

pub async fn list(args: ListArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(s) = &args.status {
        query.push(("status", s.clone()));
    }
    if let Some(b) = args.before {
        query.push(("before", b.to_string()));
    }
    let page = client
        .json(client.request(Method::GET, "/v1/jobs").query(&query))
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(0);
    }
    let jobs = page["jobs"].as_array().cloned().unwrap_or_default();
    if jobs.is_empty() {
        eprintln!("no jobs");
        return Ok(0);
    }
    println!("{:<38} {:<10} {:>8}  COMPONENT", "ID", "STATUS", "ATTEMPTS");
    for j in &jobs {
        let component = j["task"].as_str().map(str::to_string).unwrap_or_else(|| {
            j["component"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(16)
                .collect()
        });
        println!(
            "{:<38} {:<10} {:>8}  {component}",
            j["id"].as_str().unwrap_or(""),
            j["status"].as_str().unwrap_or(""),
            format!("{}/{}", j["attempts"], j["max_attempts"]),
        );
    }
    if let Some(next) = page["next"].as_i64() {
        eprintln!("more: driftless jobs --before {next}");
    }
    Ok(0)
}

pub async fn modules(args: ModulesArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let catalog = client.get("/v1/modules").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&catalog)?);
        return Ok(0);
    }
    println!("node {}", catalog["node"].as_str().unwrap_or("?"));
    for m in catalog["modules"].as_array().into_iter().flatten() {
        let name = m["name"].as_str().unwrap_or("");
        let version = m["version"].as_str().unwrap_or("");
        let detail = match m["interfaces"].as_object() {
            None => String::new(),
            Some(interfaces) => interfaces
                .iter()
                .map(|(i, v)| {
                    let n = v["functions"].as_object().map(|f| f.len()).unwrap_or(0);
                    format!("{i} ({n} functions)")
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        println!("  {name}@{version}  {detail}");
    }
    Ok(0)
}
