//! `valbox token`: create, list, revoke, and narrow personal API tokens.

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use super::ClientArgs;
use super::client::Client;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it once, as the last line.
    Create {
        name: String,
        /// Space- or comma-separated scopes, e.g. "val:read blob:read".
        #[arg(long)]
        scopes: String,
        #[arg(long)]
        expires_in_days: Option<i64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List your tokens (never their secrets).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a token by id, at once.
    Revoke {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// What a token did with each of its scopes, and which it never used.
    Usage {
        id: String,
        /// The window "used" looks back over.
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Narrow a token to the scopes it used.
    Narrow {
        id: String,
        #[arg(long, required = true)]
        to_used: bool,
        /// The window "used" looks back over.
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            name,
            scopes,
            expires_in_days,
            client,
        } => {
            let client = Client::new(client);
            let body = json!({ "name": name, "scopes": scopes, "expiresInDays": expires_in_days });
            let created = client
                .send(client.http.post(client.url("/v1/tokens")).json(&body))
                .await?
                .context("the server has no token endpoint")?;
            println!(
                "created token {} (shown once):",
                created["id"].as_str().unwrap_or_default()
            );
            println!("{}", created["token"].as_str().unwrap_or_default());
        }
        TokenCommand::List { client } => {
            let client = Client::new(client);
            let list = client
                .send(client.http.get(client.url("/v1/tokens")))
                .await?
                .unwrap_or_default();
            for t in list["data"].as_array().into_iter().flatten() {
                let scopes: Vec<&str> = t["scopes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{}\t{}\t{}\texpires {}\t{}{}",
                    t["id"].as_str().unwrap_or_default(),
                    t["kind"].as_str().unwrap_or_default(),
                    t["name"].as_str().unwrap_or_default(),
                    t["expiresAt"].as_str().unwrap_or("never"),
                    scopes.join(" "),
                    if t["revokedAt"].is_string() {
                        "\t(revoked)"
                    } else {
                        ""
                    },
                );
            }
        }
        TokenCommand::Usage { id, days, client } => {
            super::least_privilege::token_usage(&Client::new(client), &id, days, false).await?;
        }
        TokenCommand::Narrow {
            id, days, client, ..
        } => {
            super::least_privilege::token_usage(&Client::new(client), &id, days, true).await?;
        }
        TokenCommand::Revoke { id, client } => {
            let client = Client::new(client);
            client
                .send(client.http.delete(client.url(&format!("/v1/tokens/{id}"))))
                .await?
                .with_context(|| format!("you have no live token `{id}`"))?;
            println!("revoked {id}");
        }
    }
    Ok(())
}
