//! The `valbox` command: `serve` and `user` work on the data directory;
//! `deploy`, `env` and `logs` talk to a server at `VALBOX_URL` with
//! `VALBOX_TOKEN`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::auth::{self, Scopes};
use crate::config::{Config, Limits};
use crate::db::{self, Db};
use crate::server::Server;

#[derive(Parser)]
#[command(
    name = "valbox",
    version,
    about = "Run small programs (vals) as WebAssembly components"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ClientArgs {
    /// The server's base URL.
    #[arg(long, env = "VALBOX_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API token (as printed by `valbox user create`).
    #[arg(long, env = "VALBOX_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Subcommand)]
// Parsed once per process: the size of `Serve` does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Start the server.
    Serve {
        #[arg(long, env = "VALBOX_DATA", default_value = "valbox-data")]
        data: PathBuf,
        #[arg(long, env = "VALBOX_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Base URL for links, when it differs from http://LISTEN.
        #[arg(long, env = "VALBOX_PUBLIC_URL")]
        public_url: Option<String>,
        /// Deliver the email outbox through this SMTP server:
        /// smtp://host:port, smtp+starttls://user:pass@host:587 or smtps://...
        #[arg(long, env = "VALBOX_SMTP", hide_env_values = true)]
        smtp: Option<String>,
        /// The sender address of delivered mail.
        #[arg(long, env = "VALBOX_SMTP_FROM", default_value = "valbox@localhost")]
        smtp_from: String,
        /// Also trust the CA certificates in this PEM file for the SMTP
        /// server's TLS (a private relay's own CA).
        #[arg(long, env = "VALBOX_SMTP_CA", value_name = "PEM-FILE")]
        smtp_ca: Option<std::path::PathBuf>,
        /// A GitHub secret-scanning signing key, as ID=PEM-FILE (repeatable).
        #[arg(long = "secret-scanning-key", value_name = "ID=PEM-FILE")]
        secret_scanning_keys: Vec<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Manage users (works on the data directory directly).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Create a val or add a version to it from a .wasm component.
    Deploy {
        /// The val's name.
        name: String,
        /// The component, e.g. target/vals/hello.wasm.
        wasm: PathBuf,
        /// public, unlisted or private (new vals default to public).
        #[arg(long)]
        privacy: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// The scopes of the val's per-call token, space- or comma-separated
        /// (default for new vals: every scope but val:write, user:write, env:write).
        #[arg(long)]
        scopes: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show or set the scopes of a val's per-call token.
    Val {
        #[command(subcommand)]
        command: ValCommand,
    },
    /// Manage your API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Your email outbox.
    Email {
        #[command(subcommand)]
        command: EmailCommand,
    },
    /// Manage a val's environment variables (secrets).
    Env {
        #[command(subcommand)]
        command: EnvCommand,
    },
    /// Show a val's call logs, newest first.
    Logs {
        /// The val's name.
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print a new API token holding every scope.
    Create {
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "VALBOX_DATA", default_value = "valbox-data")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum ValCommand {
    /// Print the val's scopes, or set them when SCOPES are given.
    Scopes {
        name: String,
        scopes: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
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
}

#[derive(Subcommand)]
enum EmailCommand {
    /// List your outbox, newest first, with each message's delivery status.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
enum EnvCommand {
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

/// Per-call limits; the defaults are documented in the README.
#[derive(clap::Args)]
struct LimitArgs {
    #[arg(long, env = "VALBOX_FUEL")]
    fuel: Option<u64>,
    #[arg(long, env = "VALBOX_TIMEOUT_MS")]
    timeout_ms: Option<u64>,
    #[arg(long, env = "VALBOX_MEMORY_MB")]
    memory_mb: Option<usize>,
    #[arg(long, env = "VALBOX_REQUEST_BODY_BYTES")]
    request_body_bytes: Option<usize>,
    #[arg(long, env = "VALBOX_RESPONSE_BODY_BYTES")]
    response_body_bytes: Option<usize>,
    #[arg(long, env = "VALBOX_LOG_BYTES")]
    log_bytes: Option<usize>,
    #[arg(long, env = "VALBOX_COMPONENT_BYTES")]
    component_bytes: Option<usize>,
    #[arg(long, env = "VALBOX_CONCURRENT_CALLS_PER_OWNER")]
    concurrent_calls_per_owner: Option<usize>,
    #[arg(long, env = "VALBOX_TABLES")]
    tables: Option<usize>,
    #[arg(long, env = "VALBOX_TABLE_ELEMENTS")]
    table_elements: Option<usize>,
    #[arg(long, env = "VALBOX_INSTANCES")]
    instances: Option<usize>,
    #[arg(long, env = "VALBOX_CONCURRENT_INSTANCES")]
    concurrent_instances: Option<usize>,
    #[arg(long, env = "VALBOX_RUNNING_GUESTS")]
    running_guests: Option<usize>,
}

impl LimitArgs {
    fn apply(&self, l: &mut Limits) {
        let set = |slot: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        if let Some(f) = self.fuel {
            l.fuel = f;
        }
        if let Some(ms) = self.timeout_ms {
            l.timeout = Duration::from_millis(ms);
        }
        set(&mut l.memory_bytes, self.memory_mb.map(|mb| mb << 20));
        set(&mut l.request_body_bytes, self.request_body_bytes);
        set(&mut l.response_body_bytes, self.response_body_bytes);
        set(&mut l.log_bytes, self.log_bytes);
        set(&mut l.component_bytes, self.component_bytes);
        set(
            &mut l.concurrent_calls_per_owner,
            self.concurrent_calls_per_owner,
        );
        set(&mut l.tables, self.tables);
        set(&mut l.table_elements, self.table_elements);
        set(&mut l.instances, self.instances);
        set(&mut l.concurrent_instances, self.concurrent_instances);
        set(&mut l.running_guests, self.running_guests);
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            data,
            listen,
            public_url,
            secret_scanning_keys,
            smtp,
            smtp_from,
            smtp_ca,
            limits,
        } => {
            let mut config = Config::new(data, listen);
            if let Some(url) = smtp {
                let mut smtp =
                    crate::caps::email::delivery::SmtpConfig::from_url(&url, &smtp_from)?;
                if let Some(path) = smtp_ca {
                    let pem = std::fs::read(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    smtp = smtp.with_extra_roots(&pem)?;
                }
                config.smtp = Some(smtp);
            } else if smtp_ca.is_some() {
                bail!("--smtp-ca needs --smtp");
            }
            for spec in secret_scanning_keys {
                let (id, path) = spec
                    .split_once('=')
                    .with_context(|| format!("`{spec}` is not ID=PEM-FILE"))?;
                let pem =
                    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
                config.secret_scanning_keys.push((id.to_string(), pem));
            }
            limits.apply(&mut config.limits);
            if let Some(url) = public_url {
                config.public_url = url.trim_end_matches('/').to_string();
            }
            let server = Server::start(config).await?;
            println!("valbox listening on http://{}", server.addr);
            tokio::signal::ctrl_c().await?;
            server.shutdown().await
        }
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    email,
                    data,
                },
        } => {
            let token = create_user(&data, &username, &email)?;
            println!("created user {username}; API token (shown once):");
            println!("{token}");
            Ok(())
        }
        Command::Deploy {
            name,
            wasm,
            privacy,
            description,
            scopes,
            client,
        } => {
            let options = DeployOptions {
                privacy,
                description,
                scopes,
            };
            deploy(&Client::new(client), &name, &wasm, options).await
        }
        Command::Val {
            command:
                ValCommand::Scopes {
                    name,
                    scopes,
                    client,
                },
        } => val_scopes(&Client::new(client), &name, scopes).await,
        Command::Token { command } => token(command).await,
        Command::Email {
            command: EmailCommand::List { client },
        } => email_list(&Client::new(client)).await,
        Command::Env { command } => env(command).await,
        Command::Logs {
            name,
            limit,
            client,
        } => logs(&Client::new(client), &name, limit).await,
    }
}

/// Usernames: a lowercase letter, then lowercase letters, digits or `_`;
/// no `-`, which separates user from val in `{user}-{val}.localhost`.
pub fn validate_username(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 32;
    if !ok {
        bail!(
            "invalid username `{name}`: start with a lowercase letter, then use a-z, 0-9 or `_`, at most 32 characters"
        );
    }
    Ok(())
}

/// Create a user with a token holding every scope; returns the token.
pub fn create_user(data: &std::path::Path, username: &str, email: &str) -> anyhow::Result<String> {
    validate_username(username)?;
    if !email.contains('@') {
        bail!("`{email}` is not an email address");
    }
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let db = Db::open(&data.join("valbox.db"))?;
    db.call_blocking(|conn| {
        // IMMEDIATE: a read that later writes must not lose the write lock
        // to a running server in between (it would fail as "locked").
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if db::user_by_name(&tx, username)?.is_some() {
            bail!("user `{username}` already exists");
        }
        let user = db::insert_user(&tx, username, email)?;
        let (token, hash) = auth::generate_token(auth::API_TOKEN_PREFIX);
        db::insert_token(
            &tx,
            &user.id,
            "cli",
            &hash,
            &Scopes::all().to_string(),
            None,
        )?;
        tx.commit()?;
        Ok(token)
    })
}

/// A small client for the REST API that turns error bodies into messages.
struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    fn new(args: ClientArgs) -> Self {
        Self {
            base: args.url.trim_end_matches('/').to_string(),
            token: args.token,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Option<Value>> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the Valbox server at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(String::from))
                .unwrap_or(text);
            bail!("the server answered {status}: {message}");
        }
        Ok(Some(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        }))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn me(&self) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url("/v1/me")))
            .await?
            .context("the server does not know this token's user")
    }

    /// The caller's val by name; `None` only when there is no such val.
    async fn find_val(&self, name: &str) -> anyhow::Result<Option<Value>> {
        let me = self.me().await?;
        let user = me["username"].as_str().unwrap_or_default();
        self.send(
            self.http
                .get(self.url(&format!("/v2/alias/vals/{user}/{name}"))),
        )
        .await
    }

    /// The caller's val by name.
    async fn val(&self, name: &str) -> anyhow::Result<Value> {
        self.find_val(name)
            .await?
            .with_context(|| format!("you have no val named `{name}`"))
    }
}

fn id_of(val: &Value) -> String {
    val["id"].as_str().unwrap_or_default().to_string()
}

struct DeployOptions {
    privacy: Option<String>,
    description: Option<String>,
    scopes: Option<String>,
}

async fn deploy(
    client: &Client,
    name: &str,
    wasm: &std::path::Path,
    options: DeployOptions,
) -> anyhow::Result<()> {
    let DeployOptions {
        privacy,
        description,
        scopes,
    } = options;
    let bytes = tokio::fs::read(wasm)
        .await
        .with_context(|| format!("reading {}", wasm.display()))?;
    // Only a val that does not exist is created; any other failure (a
    // missing scope, an unreachable server) stops here and says so.
    let val = match client.find_val(name).await? {
        Some(val) => {
            if privacy.is_some() || description.is_some() || scopes.is_some() {
                let patch =
                    json!({ "privacy": privacy, "description": description, "scopes": scopes });
                let req = client
                    .http
                    .patch(client.url(&format!("/v2/vals/{}", id_of(&val))))
                    .json(&patch);
                client.send(req).await?;
            }
            val
        }
        None => {
            let body = json!({
                "name": name,
                "privacy": privacy.as_deref().unwrap_or("public"),
                "description": description,
            });
            let val = client
                .send(client.http.post(client.url("/v2/vals")).json(&body))
                .await?
                .context("creating the val failed")?;
            if let Some(scopes) = scopes {
                let req = client
                    .http
                    .patch(client.url(&format!("/v2/vals/{}", id_of(&val))))
                    .json(&json!({ "scopes": scopes }));
                client.send(req).await?;
            }
            val
        }
    };
    let req = client
        .http
        .post(client.url(&format!("/v2/vals/{}/versions", id_of(&val))))
        .header("content-type", "application/wasm")
        .body(bytes);
    let version = client
        .send(req)
        .await?
        .context("the val vanished during deploy")?;
    println!("deployed {name} version {}", version["version"]);
    println!("{}", version["url"].as_str().unwrap_or_default());
    if let Some(host_url) = version["hostUrl"].as_str() {
        println!("{host_url}");
    }
    Ok(())
}

async fn env(command: EnvCommand) -> anyhow::Result<()> {
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

async fn logs(client: &Client, name: &str, limit: u32) -> anyhow::Result<()> {
    let id = id_of(&client.val(name).await?);
    let req = client
        .http
        .get(client.url(&format!("/v1/telemetry/logs?val_id={id}&limit={limit}")));
    let logs = client.send(req).await?.unwrap_or_default();
    for entry in logs["data"].as_array().into_iter().flatten() {
        let a = &entry["attributes"];
        let ns: i64 = entry["timeUnixNano"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        println!(
            "{} v{} {} {} {:.2}ms fuel={} {}",
            crate::api::iso8601(ns / 1_000_000),
            a["val.version"],
            a["trigger"].as_str().unwrap_or_default(),
            a["http.status"],
            a["duration_ms"].as_f64().unwrap_or(0.0),
            a["fuel_used"],
            entry["body"].as_str().unwrap_or_default(),
        );
        for (stream, text) in [("stdout", &a["stdout"]), ("stderr", &a["stderr"])] {
            for line in text.as_str().unwrap_or_default().lines() {
                println!("    {stream}: {line}");
            }
        }
    }
    Ok(())
}

async fn val_scopes(client: &Client, name: &str, scopes: Vec<String>) -> anyhow::Result<()> {
    let mut val = client.val(name).await?;
    if !scopes.is_empty() {
        let req = client
            .http
            .patch(client.url(&format!("/v2/vals/{}", id_of(&val))))
            .json(&json!({ "scopes": scopes.join(" ") }));
        val = client.send(req).await?.context("the val vanished")?;
    }
    let list: Vec<&str> = val["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    println!("{}", list.join(" "));
    Ok(())
}

async fn token(command: TokenCommand) -> anyhow::Result<()> {
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

async fn email_list(client: &Client) -> anyhow::Result<()> {
    let outbox = client
        .send(client.http.get(client.url("/v1/email")))
        .await?
        .unwrap_or_default();
    for e in outbox["data"].as_array().into_iter().flatten() {
        println!(
            "{}\t{}\t{}\t{}{}",
            e["createdAt"].as_str().unwrap_or_default(),
            e["status"].as_str().unwrap_or_default(),
            e["id"].as_str().unwrap_or_default(),
            e["subject"].as_str().unwrap_or_default(),
            e["lastError"]
                .as_str()
                .map(|err| format!("\t({err})"))
                .unwrap_or_default(),
        );
    }
    Ok(())
}
