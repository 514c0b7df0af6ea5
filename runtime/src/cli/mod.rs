//! cli: the `driftless` command.

mod admin;
mod check;
mod client;
mod jobs;
mod run;
mod schedules;
mod serve;
mod tasks;
mod tokens;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// driftless: run job code shipped as WebAssembly components, without flag days.
#[derive(Debug, Parser)]
#[command(name = "driftless", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a job's imports against this host's modules and print the compat report.
    /// Exits 0 when the job would be accepted, 1 when rejected, 2 when the file is not a job.
    Check(check::Args),
    /// Run the daemon: HTTP API, durable store and agents.
    Serve(serve::Args),
    /// Run one attempt of a job locally, with the real host modules (kv in memory).
    /// Exits 0 on success, 1 when the job failed or trapped, 2 when it cannot run here.
    Run(run::Args),
    /// Submit a job to the daemon; prints its id, or with --wait its output.
    /// With --wait, exits 0 when the job succeeded and 1 when it failed or was cancelled.
    Submit(jobs::SubmitArgs),
    /// Show a job: status, attempts, error or output.
    Status(jobs::StatusArgs),
    /// Print every attempt's log of a job.
    Logs(jobs::IdArgs),
    /// List jobs, newest first.
    Jobs(jobs::ListArgs),
    /// Cancel a job; a running attempt is stopped.
    Cancel(jobs::IdArgs),
    /// Show the host modules the daemon provides.
    Modules(jobs::ModulesArgs),
    /// Deploy a component as the next version of a task (creating the task).
    Deploy(tasks::DeployArgs),
    /// List deployed tasks.
    Tasks(tasks::ShowArgs),
    /// Show a task: versions, jobs per version, what each node resolves `current` to.
    Task(tasks::TaskArgs),
    /// Make an earlier version of a task current again.
    Rollback(tasks::RollbackArgs),
    /// Unregister a version of a task (refused while jobs pin it).
    Undeploy(tasks::UndeployArgs),
    /// Drain the node (or --node NAME of the cluster): claim nothing new and fail /readyz;
    /// --wait until nothing runs.
    Drain(admin::DrainArgs),
    /// Stop draining (the node, or --node NAME of the cluster).
    Resume(admin::ResumeArgs),
    /// Show the attempts running on the node.
    Inflight(admin::NodeArgs),
    /// The node registry: every node process, its state, catalog and heartbeat (`*`: the one
    /// answering).
    Nodes(admin::NodeArgs),
    /// Make, list and revoke API tokens (needs the `admin` scope).
    Tokens(tokens::Args),
    /// Put, list, show and delete cron schedules that submit jobs to a task.
    Schedules(schedules::Args),
}

/// Options shared by commands that build a local host.
#[derive(Debug, clap::Args)]
pub struct HostArgs {
    /// Provide only these versions of a package (repeatable), e.g. `--provide driftless:kv@1.0.0`
    /// to behave like an older host. Packages not named keep every version this build has.
    #[arg(
        long = "provide",
        value_name = "PKG@VER",
        env = "DRIFTLESS_PROVIDE",
        value_delimiter = ','
    )]
    pub provide: Vec<String>,
}

impl HostArgs {
    fn catalog(&self) -> Result<driftless::compat::Catalog> {
        Ok(driftless::compat::Catalog::with_provides(&self.provide)?)
    }
}

/// The default compile-cache folder for local commands: `$XDG_CACHE_HOME/driftless` or
/// `~/.cache/driftless`.
fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("driftless"))
}

/// Parse arguments and run; returns the process exit code.
pub fn main() -> Result<i32> {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        quiet_on_broken_pipe();
    }
    let default_log = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DRIFTLESS_LOG")
                .unwrap_or_else(|_| default_log.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Run(args) => tokio::runtime::Runtime::new()?.block_on(run::run(args)),
        Command::Serve(args) => tokio::runtime::Runtime::new()?.block_on(serve::run(args)),
        command => client_command(command),
    }
}

/// Let a command whose output is cut off (`driftless jobs | head -1`) end quietly, as other
/// command-line tools do: Rust ignores SIGPIPE, so a write to a closed pipe would fail and
/// `println!` would panic; with the default action the process just ends. Not for `serve`,
/// whose sockets must never end the process.
fn quiet_on_broken_pipe() {
    // SAFETY: called once at start-up, before any thread is spawned; restoring a signal's
    // default disposition has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The commands that talk to a daemon.
fn client_command(command: Command) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            Command::Submit(args) => jobs::submit(args).await,
            Command::Status(args) => jobs::status(args).await,
            Command::Logs(args) => jobs::logs(args).await,
            Command::Jobs(args) => jobs::list(args).await,
            Command::Cancel(args) => jobs::cancel(args).await,
            Command::Modules(args) => jobs::modules(args).await,
            Command::Deploy(args) => tasks::deploy(args).await,
            Command::Tasks(args) => tasks::list(args).await,
            Command::Task(args) => tasks::show(args).await,
            Command::Rollback(args) => tasks::rollback(args).await,
            Command::Undeploy(args) => tasks::undeploy(args).await,
            Command::Drain(args) => admin::drain(args).await,
            Command::Resume(args) => admin::resume(args).await,
            Command::Inflight(args) => admin::inflight(args).await,
            Command::Nodes(args) => admin::nodes(args).await,
            Command::Tokens(args) => tokens::run(args).await,
            Command::Schedules(args) => schedules::run(args).await,
            Command::Check(_) | Command::Run(_) | Command::Serve(_) => {
                unreachable!("local commands are dispatched in main")
            }
        }
    })
}

fn read_component(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}
