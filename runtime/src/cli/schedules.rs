//! The CLI's schedule commands: `schedules put NAME --task T --cron "…"`, `schedules list`,
//! `schedules get NAME`, `schedules delete NAME` (put and delete need the `deploy` scope).

use super::client::{Client, ClientArgs, decode};
use anyhow::{Context, Result};
use driftless::lifecycle::attempts::rfc3339;
use driftless::wire::{
    Schedule, ScheduleAnswer, ScheduleDeleted, ScheduleList, ScheduleRecord, ScheduleSpec,
};
use reqwest::Method;
use serde_json::Value;

/// `driftless schedules`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create or replace a schedule: at every tick of the cron pattern, submit a job to the
    /// task's current version (a schedule pins nothing).
    Put {
        /// The schedule's name.
        name: String,
        /// The deployed task each tick submits a job to.
        #[arg(long)]
        task: String,
        /// The cron pattern: five fields (minute hour day-of-month month day-of-week), or six
        /// with seconds first, e.g. "0 */15 * * * *".
        #[arg(long)]
        cron: String,
        /// The jobs' input, as JSON (default null).
        #[arg(long, value_name = "JSON")]
        input: Option<String>,
        /// The IANA time zone the pattern is read in (default UTC), e.g. Europe/Berlin.
        #[arg(long, value_name = "TZ")]
        timezone: Option<String>,
        #[command(flatten)]
        daemon: ClientArgs,
        /// Print the daemon's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// List schedules with their next tick.
    List {
        #[command(flatten)]
        daemon: ClientArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a schedule: its pattern, next tick and the newest jobs it made.
    Get {
        /// The schedule's name.
        name: String,
        #[command(flatten)]
        daemon: ClientArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a schedule: no tick fires after it; the jobs it made stay.
    Delete {
        /// The schedule's name.
        name: String,
        #[command(flatten)]
        daemon: ClientArgs,
    },
}

pub async fn run(args: Args) -> Result<i32> {
    match args.command {
        Command::Put {
            name,
            task,
            cron,
            input,
            timezone,
            daemon,
            json,
        } => {
            let input = input
                .map(|text| {
                    serde_json::from_str::<Value>(&text).with_context(|| {
                        format!("--input is not JSON ({text}); pass a JSON value, e.g. --input '{{\"full\": true}}'")
                    })
                })
                .transpose()?;
            let client = Client::new(&daemon)?;
            let spec = ScheduleSpec {
                task,
                cron,
                input,
                timezone,
            };
            let raw: Value = client
                .json(
                    client
                        .request(Method::PUT, &format!("/v1/schedules/{name}"))
                        .json(&spec),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&raw)?);
                return Ok(0);
            }
            let answer: ScheduleAnswer = decode(&raw)?;
            let s = &answer.schedule;
            println!(
                "{}: {} `{}` ({}) submitting to {}; next tick {}",
                s.name,
                if answer.created {
                    "created"
                } else {
                    "replaced"
                },
                s.cron,
                s.timezone,
                s.task,
                rfc3339(s.next_tick_ms)
            );
        }
        Command::List { daemon, json } => {
            let client = Client::new(&daemon)?;
            client.each_page("/v1/schedules", |raw, first| {
                if json {
                    println!("{}", serde_json::to_string_pretty(raw)?);
                }
                let page = decode::<ScheduleList>(raw)?;
                if !json {
                    if first && page.schedules.is_empty() {
                        eprintln!(
                            "no schedules; make one with `driftless schedules put NAME --task TASK --cron \"*/5 * * * *\"`"
                        );
                        return Ok(None);
                    }
                    if first {
                        println!(
                            "{:<24} {:<20} {:<20} {:<16} NEXT TICK",
                            "NAME", "TASK", "CRON", "TIMEZONE"
                        );
                    }
                    for s in &page.schedules {
                        println!(
                            "{:<24} {:<20} {:<20} {:<16} {}",
                            s.name,
                            s.task,
                            s.cron,
                            s.timezone,
                            rfc3339(s.next_tick_ms)
                        );
                    }
                }
                Ok(page.next)
            }).await?;
        }
        Command::Get { name, daemon, json } => {
            let client = Client::new(&daemon)?;
            let raw: Value = client.get(&format!("/v1/schedules/{name}")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&raw)?);
                return Ok(0);
            }
            let record: ScheduleRecord = decode(&raw)?;
            show(&record.schedule);
            for j in &record.jobs {
                println!(
                    "  {}  {}  {:<9}  {}",
                    rfc3339(j.tick_ms),
                    j.id,
                    j.status.as_str(),
                    j.task.as_deref().unwrap_or("-")
                );
            }
        }
        Command::Delete { name, daemon } => {
            let client = Client::new(&daemon)?;
            let path = format!("/v1/schedules/{name}");
            let deleted: ScheduleDeleted =
                client.json(client.request(Method::DELETE, &path)).await?;
            println!(
                "{}: deleted; no tick fires after this, and the jobs it made stay",
                deleted.name
            );
        }
    }
    Ok(0)
}

fn show(s: &Schedule) {
    println!(
        "{}  `{}` ({}) submitting to {} (its current version at each tick)",
        s.name, s.cron, s.timezone, s.task
    );
    println!("  input: {}", s.input);
    println!("  next tick: {}", rfc3339(s.next_tick_ms));
    match (s.last_tick_ms, &s.last_job) {
        (Some(at), Some(job)) => println!("  last tick: {} ({job})", rfc3339(at)),
        _ => println!("  last tick: none yet"),
    }
    println!(
        "  fired {} tick(s); skipped {} missed tick(s) (ticks more than a minute late are skipped)",
        s.fired, s.skipped
    );
}
