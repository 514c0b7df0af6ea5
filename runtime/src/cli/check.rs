//! `driftless check JOB.wasm`: the compat report, for a guest author's CI.

use super::{HostArgs, read_component};
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job component (.wasm).
    job: PathBuf,
    #[command(flatten)]
    host: HostArgs,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let catalog = args.host.catalog()?;
    let bytes = read_component(&args.job)?;
    match driftless::compat::check(&bytes, &catalog) {
        Err(e) => {
            eprintln!("error: {}: {e}", args.job.display());
            Ok(2)
        }
        Ok((_, report)) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(if report.accepted() { 0 } else { 1 })
        }
    }
}
