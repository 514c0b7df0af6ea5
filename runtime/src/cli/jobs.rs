//! The CLI's daemon commands: `submit`, `status`, `logs`, `jobs`, `cancel`, `modules`.

use super::client::{ApiFailure, Client, ClientArgs, decode};
use super::read_component;
use anyhow::{Context, Result};
use driftless::compat::Verdict;
use driftless::node::resolver::TaskRef;
use driftless::wire::{
    ErrorCode, GetQuery, JobList, JobRecord, JobSpec, JobStatus, ListQuery, ModuleList,
    SubmitAnswer,
};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
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
    /// Higher runs first (default 0; negative values run after the default).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    priority: Option<i32>,
    /// Run no sooner than this many milliseconds from now.
    #[arg(long, value_name = "MS", conflicts_with = "not_before")]
    delay_ms: Option<u64>,
    /// Run no sooner than this time (RFC 3339, e.g. 2026-12-24T18:00:00Z).
    #[arg(long, value_name = "TIME")]
    not_before: Option<String>,
    /// A key shared with other jobs (e.g. a customer id): at most --concurrency-limit of them
    /// are ready or running at once, across the cluster.
    #[arg(long, value_name = "KEY")]
    concurrency_key: Option<String>,
    /// How many jobs of --concurrency-key may be ready or running at once (default 1).
    #[arg(long, value_name = "N", requires = "concurrency_key")]
    concurrency_limit: Option<u32>,
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
    #[arg(long, value_parser = job_status)]
    status: Option<JobStatus>,
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

/// `--status`: a job status by name.
fn job_status(name: &str) -> Result<JobStatus, String> {
    JobStatus::parse(name).ok_or_else(|| {
        format!("unknown status `{name}`; use queued, running, succeeded, failed or cancelled")
    })
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
    let mut spec = JobSpec {
        input: input(&args)?,
        timeout_ms: args.timeout_ms,
        memory_mib: args.memory_mib,
        max_attempts: args.max_attempts,
        optional_imports: args.optional_imports.clone(),
        priority: args.priority,
        delay_ms: args.delay_ms,
        not_before: args.not_before.clone(),
        concurrency_key: args.concurrency_key.clone(),
        concurrency_limit: args.concurrency_limit,
        ..JobSpec::default()
    };
    let mut request = client.request(Method::POST, "/v1/jobs");
    let arg = args.job.to_string_lossy();
    if !args.job.exists()
        && let Ok(task) = TaskRef::parse(&arg)
    {
        spec.task = Some(task.to_string());
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
                Part::text(serde_json::to_string(&spec)?).mime_str("application/json")?,
            );
        request = request.multipart(form);
    }
    if let Some(key) = &args.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let raw: Value = client.json(request).await?;
    let answer: SubmitAnswer = decode(&raw)?;
    let id = answer.job.job().id.clone();
    let verb = if answer.created {
        "submitted"
    } else {
        "already submitted (same idempotency key)"
    };
    let verdict = answer.report.verdict;
    eprintln!("{verb}: {id} ({})", verdict.as_str());
    if verdict == Verdict::Degraded {
        eprintln!("  {}", answer.report.summary);
    }
    if !args.wait {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&raw)?);
        } else {
            println!("{id}");
        }
        return Ok(0);
    }
    let (job, raw) = wait(&client, &id).await?;
    finish(&job, args.json.then_some(&raw))
}

/// Long-poll until the job is finished, with a spinner on a terminal (a line per change
/// otherwise); returns it, and the daemon's JSON of it. Interrupting the wait leaves the job
/// running.
async fn wait(client: &Client, id: &str) -> Result<(JobRecord, Value)> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("template"));
    bar.enable_steady_tick(Duration::from_millis(100));
    let quiet = bar.is_hidden();
    let mut last = String::new();
    let path = format!("/v1/jobs/{id}");
    let query = GetQuery { wait: Some(2) };
    loop {
        let raw: Value = client
            .json(client.request(Method::GET, &path).query(&query))
            .await?;
        let job: JobRecord = decode(&raw)?;
        let line = describe(&job);
        if line != last {
            if quiet {
                eprintln!("{id}: {line}");
            }
            bar.set_message(format!("{id}: {line}"));
            last = line;
        }
        if job.job.status.is_terminal() {
            bar.finish_and_clear();
            return Ok((job, raw));
        }
    }
}

/// `running (attempt 1 of 3 on node-1/0) 40% halfway`.
fn describe(record: &JobRecord) -> String {
    let job = &record.job;
    let mut line = job.status.as_str().to_string();
    if job.attempts > 0 {
        line.push_str(&format!(
            " (attempt {} of {}",
            job.attempts, job.max_attempts
        ));
        if let Some(agent) = &record.agent {
            line.push_str(&format!(" on {agent}"));
        }
        line.push(')');
    }
    let later = job.run_after_ms - driftless::store::now_ms();
    match (job.status, job.attempts) {
        (JobStatus::Queued, 0) if later > 0 => {
            line.push_str(&format!(
                ", delayed: runs in {:.1} s",
                later as f64 / 1000.0
            ));
        }
        (JobStatus::Queued, n) if n > 0 => line.push_str(", retrying after backoff"),
        _ => {}
    }
    if let Some(p) = &job.progress {
        line.push_str(&format!(" {}% {}", p.percent, p.message));
    }
    line
}

/// A succeeded job's output: its text, or its JSON.
fn output(job: &driftless::wire::Job, pretty: bool) -> Result<String> {
    Ok(match (&job.output_text, &job.output) {
        (Some(text), _) => text.clone(),
        (None, output) if pretty => serde_json::to_string_pretty(output)?,
        (None, output) => serde_json::to_string(output)?,
    })
}

/// Print a finished job's output (stdout), or its JSON as the daemon sent it, or its failure
/// (stderr); exit 0 only on success.
fn finish(record: &JobRecord, raw: Option<&Value>) -> Result<i32> {
    let job = &record.job;
    let ok = job.status == JobStatus::Succeeded;
    if let Some(raw) = raw {
        println!("{}", serde_json::to_string_pretty(raw)?);
    } else if ok {
        println!("{}", output(job, true)?);
    }
    if !ok {
        let id = &job.id;
        match (job.status, &job.error) {
            (JobStatus::Cancelled, _) => eprintln!("{id} was cancelled"),
            (_, error) => eprintln!(
                "{id} failed after {} attempt(s): {} ({}); see `driftless logs {id}`",
                job.attempts,
                error.as_ref().map_or("no reason recorded", |e| &e.message),
                error.as_ref().map_or("error", |e| &e.code),
            ),
        }
    }
    Ok(if ok { 0 } else { 1 })
}

pub async fn status(args: StatusArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let fetched = if args.wait {
        wait(&client, &args.id).await
    } else {
        match client.get::<Value>(&format!("/v1/jobs/{}", args.id)).await {
            Ok(raw) => decode(&raw).map(|job| (job, raw)),
            Err(e) => Err(e),
        }
    };
    let (job, raw) = match fetched {
        Ok(fetched) => fetched,
        Err(e) => return expired(&args, e),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
        return Ok(0);
    }
    print_status(&job)?;
    Ok(0)
}

/// A job retention deleted (404 `job-expired`) is a status of its own: said on stdout (as the
/// error body with `--json`), exit code 1. Any other error stands.
fn expired(args: &StatusArgs, e: anyhow::Error) -> Result<i32> {
    let Some(failure) = e.downcast_ref::<ApiFailure>() else {
        return Err(e);
    };
    let Ok(body) = &failure.body else {
        return Err(e);
    };
    if body.error.code != ErrorCode::JobExpired {
        return Err(e);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(body)?);
    } else {
        println!("{}  expired (deleted by retention)", args.id);
        println!("  why        {}", body.error.message);
    }
    Ok(1)
}

/// A job, its attempts, and its error or output, for a person.
fn print_status(record: &JobRecord) -> Result<()> {
    let job = &record.job;
    println!("{}  {}", job.id, describe(record));
    match &job.task {
        Some(task) => println!("  task       {task}"),
        None => println!("  component  {}", job.component),
    }
    if job.priority != 0 {
        println!("  priority   {}", job.priority);
    }
    if let Some(key) = &job.concurrency_key {
        println!(
            "  key        {key} (at most {} of its jobs at once)",
            job.concurrency_limit.unwrap_or(1)
        );
    }
    if let Some(done) = job.finished_ms {
        println!(
            "  finished   {} ms after it was accepted",
            done - job.created_ms
        );
    }
    for a in &record.attempt_list {
        let took = a
            .finished_ms
            .map(|f| format!(", {} ms", f - a.started_ms))
            .unwrap_or_default();
        println!(
            "  attempt {}  {} on {}{took}",
            a.number,
            a.state.as_str(),
            a.agent
        );
    }
    if let Some(e) = &job.error {
        println!("  error      {} ({})", e.message, e.code);
    }
    if job.status == JobStatus::Succeeded {
        println!("  output     {}", output(job, false)?);
    }
    Ok(())
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
    let job: driftless::wire::Job = client
        .json(client.request(Method::POST, &format!("/v1/jobs/{}/cancel", args.id)))
        .await?;
    match job.status {
        JobStatus::Cancelled => println!("{}: cancelled", args.id),
        JobStatus::Running => println!(
            "{}: cancellation requested; the running attempt is being stopped",
            args.id
        ),
        other => println!("{}: already {}; nothing to cancel", args.id, other.as_str()),
    }
    Ok(0)
}

pub async fn list(args: ListArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let query = ListQuery {
        status: args.status,
        limit: Some(args.limit),
        before: args.before,
        task: None,
        node: None,
    };
    let raw: Value = client
        .json(client.request(Method::GET, "/v1/jobs").query(&query))
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
        return Ok(0);
    }
    let page: JobList = decode(&raw)?;
    if page.jobs.is_empty() {
        eprintln!("no jobs");
        return Ok(0);
    }
    println!(
        "{:<38} {:<10} {:>8} {:>10}  TASK OR COMPONENT",
        "ID", "STATUS", "ATTEMPTS", "OUTPUT"
    );
    for j in &page.jobs {
        let component = j
            .task
            .clone()
            .unwrap_or_else(|| j.component.chars().take(16).collect());
        let output = match (&j.output_bytes, &j.error) {
            (Some(n), _) => format!("{n} B"),
            (None, Some(code)) => code.clone(),
            (None, None) => "-".into(),
        };
        println!(
            "{:<38} {:<10} {:>8} {output:>10}  {component}",
            j.id,
            j.status.as_str(),
            format!("{}/{}", j.attempts, j.max_attempts),
        );
    }
    if let Some(next) = page.next {
        eprintln!("more: driftless jobs --before {next}");
    }
    Ok(0)
}

pub async fn modules(args: ModulesArgs) -> Result<i32> {
    let client = Client::new(&args.daemon)?;
    let raw: Value = client.get("/v1/modules").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&raw)?);
        return Ok(0);
    }
    let catalog: ModuleList = decode(&raw)?;
    println!("node {}", catalog.node);
    for m in &catalog.modules {
        let detail = m
            .interfaces
            .iter()
            .flatten()
            .map(|(i, v)| format!("{i} ({} functions)", v.functions.len()))
            .collect::<Vec<_>>()
            .join(", ");
        println!("  {}@{}  {detail}", m.name, m.version);
    }
    Ok(0)
}
