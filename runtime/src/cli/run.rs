//! `driftless run JOB.wasm --input JSON`: one local attempt with the real host modules.

use super::{HostArgs, default_cache_dir, read_component};
use anyhow::{Context, Result};
use driftless::engine::{
    AttemptRequest, CancelToken, Engine, EngineConfig, Limits, Outcome, PrepareError, Sandbox,
};
use driftless::host::{JobInfo, JobLog, MemoryKv, MemoryServices};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job component (.wasm).
    job: PathBuf,
    /// The input, as JSON text (or any bytes the job understands).
    #[arg(long, default_value = "null", conflicts_with = "input_file")]
    input: String,
    /// Read the input from a file instead (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    input_file: Option<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
    /// Wall-clock limit for the attempt, in milliseconds.
    #[arg(long, default_value_t = Limits::default().timeout_ms)]
    timeout_ms: u64,
    /// Memory limit for the attempt, in MiB.
    #[arg(long, default_value_t = Limits::default().memory_bytes >> 20)]
    memory_mib: u64,
    /// Where compiled components are cached between runs.
    #[arg(long, env = "DRIFTLESS_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Print the whole attempt result as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> Result<i32> {
    let catalog = args.host.catalog()?;
    let bytes = read_component(&args.job)?;
    let input = match &args.input_file {
        Some(p) if p.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
            buf
        }
        Some(p) => std::fs::read(p)
            .with_context(|| format!("cannot read the input file {}", p.display()))?,
        None => args.input.clone().into_bytes(),
    };
    let engine = Engine::new(EngineConfig {
        cache_dir: args.cache_dir.clone().or_else(default_cache_dir),
        max_instances: 4,
        ..EngineConfig::default()
    })?;
    let sandbox = Sandbox::new(engine, catalog, Arc::new(MemoryKv::default()))
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let prepared = match sandbox.prepare(&bytes) {
        Ok(p) => p,
        Err(PrepareError::Rejected(report)) => {
            eprintln!("{report}");
            return Ok(2);
        }
        Err(e) => {
            eprintln!("error: {}: {e}", args.job.display());
            return Ok(2);
        }
    };
    if !args.json && prepared.report.verdict != driftless::compat::Verdict::Accepted {
        eprintln!("{}", prepared.report);
    }
    let limits = Limits {
        timeout_ms: args.timeout_ms,
        memory_bytes: args.memory_mib << 20,
        ..Limits::default()
    };
    let request = AttemptRequest {
        input,
        job: JobInfo::one_off("local", "local"),
        limits,
        services: Arc::new(MemoryServices::default()),
        cancel: CancelToken::new(),
        log: JobLog::new(limits.log_bytes as usize),
    };
    let result = sandbox.run(&prepared, request).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        let log = result.log.text();
        if !log.is_empty() {
            eprint!("--- job log ---\n{log}");
            if !log.ends_with('\n') {
                eprintln!();
            }
            eprintln!("---");
        }
        match &result.outcome {
            Outcome::Succeeded { output } => println!("{}", render_output(output)),
            Outcome::Failed {
                code,
                message,
                retryable,
            } => {
                eprintln!(
                    "job failed: {code}: {message}{}",
                    if *retryable { " (retryable)" } else { "" }
                )
            }
            Outcome::Trapped { reason, message } => eprintln!(
                "attempt stopped ({}): {message}",
                serde_json::to_value(reason)?.as_str().unwrap_or("?")
            ),
        }
        eprintln!("({:.1} ms)", result.duration.as_secs_f64() * 1000.0);
    }
    Ok(if matches!(result.outcome, Outcome::Succeeded { .. }) {
        0
    } else {
        1
    })
}

/// Output as pretty JSON when it is JSON, else as text.
fn render_output(output: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(output) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(output).into_owned(),
    }
}
