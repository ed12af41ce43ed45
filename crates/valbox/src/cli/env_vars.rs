//! `valbox env`: set, list and delete a val's env vars.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::ClientArgs;
use super::client::{Client, id_of};

#[derive(Subcommand)]
pub enum EnvCommand {
    /// Set VAR on a val.
    Set {
        name: String,
        key: String,
        value: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List a val's variables (names only; values are never shown).
    List {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove VAR from a val.
    Delete {
        name: String,
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn run(command: EnvCommand) -> anyhow::Result<()> {
    match command {
        EnvCommand::Set {
            name,
            key,
            value,
            client,
        } => {
            let client = Client::new(client);
            let id = id_of(&client.val(&name).await?);
            let req = client
                .http
                .put(client.url(&format!("/v2/vals/{id}/environment_variables/{key}")))
                .json(&json!({ "value": value }));
            client.send(req).await?;
            println!("set {key} on {name}");
        }
        EnvCommand::List { name, client } => {
            let client = Client::new(client);
            let id = id_of(&client.val(&name).await?);
            let list = client
                .send(
                    client
                        .http
                        .get(client.url(&format!("/v2/vals/{id}/environment_variables"))),
                )
                .await?
                .unwrap_or_default();
            for var in list["data"].as_array().into_iter().flatten() {
                println!(
                    "{}\tupdated {}",
                    var["key"].as_str().unwrap_or_default(),
                    var["updatedAt"].as_str().unwrap_or_default()
                );
            }
        }
        EnvCommand::Delete { name, key, client } => {
            let client = Client::new(client);
            let id = id_of(&client.val(&name).await?);
            let req = client
                .http
                .delete(client.url(&format!("/v2/vals/{id}/environment_variables/{key}")));
            client
                .send(req)
                .await?
                .with_context(|| format!("{name} has no env var {key}"))?;
            println!("deleted {key} from {name}");
        }
    }
    Ok(())
}
