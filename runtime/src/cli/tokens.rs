//! The CLI's token commands: `tokens create NAME --scope S…`, `tokens list`, `tokens revoke NAME`
//! (each needs a token with the `admin` scope, unless the daemon is in open mode).

use super::client::{Client, ClientArgs};
use anyhow::Result;
use driftless::wire::{Scope, TokenCreated, TokenList, TokenRevoked, TokenSpec};
use reqwest::Method;

/// `driftless tokens`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make a token with the given scopes and print its secret (shown this once; only its hash
    /// is stored).
    Create {
        /// Its name (letters, digits, `.`, `_`, `-`, `@`); the audit trail's actor.
        name: String,
        /// A scope it grants (repeatable): read, submit, deploy, admin (admin grants all).
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
        #[command(flatten)]
        daemon: ClientArgs,
        /// Print JSON (with the secret).
        #[arg(long)]
        json: bool,
    },
    /// List tokens: names, scopes, when made and last used; never secrets.
    List {
        #[command(flatten)]
        daemon: ClientArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: every node refuses it within about a second.
    Revoke {
        /// The token's name.
        name: String,
        #[command(flatten)]
        daemon: ClientArgs,
    },
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text)
        .ok_or_else(|| format!("`{text}` is not a scope; use read, submit, deploy or admin"))
}

pub async fn run(args: Args) -> Result<i32> {
    match args.command {
        Command::Create {
            name,
            scopes,
            daemon,
            json,
        } => {
            let client = Client::new(&daemon)?;
            let made: TokenCreated = client
                .json(
                    client
                        .request(Method::POST, "/v1/admin/tokens")
                        .json(&TokenSpec { name, scopes }),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&made)?);
            } else {
                println!("{}", made.secret);
                eprintln!(
                    "made token {} with scopes {}; the secret above will not be shown again: store it now (use it with --token or DRIFTLESS_TOKEN)",
                    made.token.name,
                    scopes_text(&made.token.scopes)
                );
            }
        }
        Command::List { daemon, json } => {
            let client = Client::new(&daemon)?;
            let list: TokenList = client.get("/v1/admin/tokens").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.tokens.is_empty() {
                println!("no tokens in the store (the admin token given to `serve` is not listed)");
            } else {
                let now = driftless::store::now_ms();
                for t in &list.tokens {
                    let used = t.last_used_ms.map_or("never used".to_string(), |at| {
                        format!("last used {} s ago", (now - at).max(0) / 1000)
                    });
                    println!(
                        "{:<24} {:<28} made {} s ago by {}, {used}",
                        t.name,
                        scopes_text(&t.scopes),
                        (now - t.created_ms).max(0) / 1000,
                        t.created_by
                    );
                }
            }
        }
        Command::Revoke { name, daemon } => {
            let client = Client::new(&daemon)?;
            let path = format!("/v1/admin/tokens/{name}");
            let revoked: TokenRevoked = client.json(client.request(Method::DELETE, &path)).await?;
            println!(
                "revoked token {}; every node refuses it within about a second",
                revoked.name
            );
        }
    }
    Ok(0)
}

fn scopes_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
