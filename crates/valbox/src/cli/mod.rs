//! The `valbox` command: `serve` and `user` work on the data directory;
//! `deploy`, `env` and `logs` talk to a server at `VALBOX_URL` with
//! `VALBOX_TOKEN`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use valbox_model::Limits;
use valbox_server::config::Config;
use valbox_server::server::Server;

pub use admin::{create_user, validate_username};
use client::{Client, DeployOptions, deploy, email_list, env, logs, token, val_scopes};

mod admin;
mod client;
mod edge_args;
mod least_privilege;
mod project;
mod templates;

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
        /// Serve each HTTP val on `{user}-{val}.SUFFIX` (default
        /// `localhost`); in production a domain apart from the UI's.
        #[arg(long, env = "VALBOX_VAL_HOST_SUFFIX")]
        val_host_suffix: Option<String>,
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
        /// The scopes a new val's calls get, space- or comma-separated
        /// (default: every scope but val:write, user:write, env:write).
        #[arg(long, env = "VALBOX_DEFAULT_VAL_SCOPES", value_name = "SCOPES")]
        default_val_scopes: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        edge: edge_args::EdgeArgs,
    },
    /// Operator commands on the data directory.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage users (works on the data directory directly).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Start a val's project in a new directory NAME, ready to build.
    New {
        name: String,
        #[arg(long, value_enum)]
        lang: project::Lang,
        #[arg(long, value_enum, default_value = "http")]
        kind: project::Kind,
    },
    /// Build the val project in DIR (default: here) into one component.
    Build { dir: Option<PathBuf> },
    /// Create a val or add a version to it from a .wasm component.
    Deploy {
        /// The val's name.
        name: String,
        /// The component, e.g. target/vals/hello.wasm; without it, the
        /// project in this directory is built (`valbox build`) and deployed.
        wasm: Option<PathBuf>,
        /// public, unlisted or private (new vals default to public).
        #[arg(long)]
        privacy: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// The scopes of the val's per-call token, space- or comma-separated
        /// (default for new vals: every scope but val:write, user:write, env:write).
        #[arg(long)]
        scopes: Option<String>,
        /// A library val whose interfaces the component imports:
        /// USER/VAL@N, USER/VAL (pinned to its current version) or, for
        /// your own, USER/VAL@latest (follows its new versions). Repeatable.
        #[arg(long = "dep", value_name = "USER/VAL[@N]")]
        deps: Vec<String>,
        /// Scopes of this val that a library may use, e.g.
        /// alice/slugify=blob:read,fetch (libraries get none by default).
        /// Repeatable.
        #[arg(long = "grant", value_name = "USER/VAL=SCOPES")]
        grants: Vec<String>,
        /// Grant the val the scopes and fetch hosts its component declares
        /// (valbox_sdk::scopes!, valbox_sdk::fetch_hosts!).
        #[arg(long)]
        grant_declared: bool,
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
enum AdminCommand {
    /// Remove SCOPES from every val and token that holds them, except
    /// those that used any of them in the last DAYS days: those are held
    /// back and their owners are mailed once. Safe to run twice.
    MigrateScopes {
        /// The scopes to remove, space- or comma-separated.
        #[arg(long, value_name = "SCOPES")]
        remove: String,
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Report what would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, env = "VALBOX_DATA", default_value = "valbox-data")]
        data: PathBuf,
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
    /// Print a one-time sign-in link to the web UI (valid 15 minutes).
    LoginLink {
        username: String,
        /// The server's base URL, as browsers reach it.
        #[arg(
            long,
            env = "VALBOX_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
        #[arg(long, env = "VALBOX_DATA", default_value = "valbox-data")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum ValCommand {
    /// Print the val's scopes, or set them when SCOPES are given; with
    /// --usage, what its calls did with each; with --to-used, narrow them
    /// to the ones it used.
    Scopes {
        name: String,
        scopes: Vec<String>,
        #[arg(long, conflicts_with_all = ["scopes", "to_used"])]
        usage: bool,
        #[arg(long, conflicts_with = "scopes")]
        to_used: bool,
        /// The window "used" looks back over.
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the scopes your vals were refused and asked for; grant or
    /// dismiss one by id.
    Requests {
        #[arg(long, value_name = "ID")]
        grant: Option<String>,
        #[arg(long, value_name = "ID")]
        dismiss: Option<String>,
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
    /// Do not meter calls by fuel: CPU is then bounded by the wall-clock
    /// deadline and the scheduler's time slices alone.
    #[arg(long)]
    no_fuel_metering: bool,
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
    /// Call logs one val keeps, in bytes; past it the oldest go.
    #[arg(long, env = "VALBOX_LOG_BYTES_PER_VAL")]
    log_bytes_per_val: Option<u64>,
    /// Days a call log record is kept.
    #[arg(long, env = "VALBOX_LOG_DAYS")]
    log_days: Option<u64>,
    /// Compiled functions the compile cache keeps, in MiB.
    #[arg(long, env = "VALBOX_COMPILE_CACHE_MB")]
    compile_cache_mb: Option<u64>,
    /// Everything one owner stores (components, blobs, SQLite, logs), in MiB.
    #[arg(long, env = "VALBOX_STORAGE_QUOTA_MB")]
    storage_quota_mb: Option<u64>,
    #[arg(long, env = "VALBOX_COMPONENT_BYTES")]
    component_bytes: Option<usize>,
    #[arg(long, env = "VALBOX_CONCURRENT_CALLS_PER_OWNER")]
    concurrent_calls_per_owner: Option<usize>,
    /// Vals one request may call as APIs, at any depth, together.
    #[arg(long, env = "VALBOX_NESTED_CALLS_PER_REQUEST")]
    nested_calls_per_request: Option<u32>,
    /// Outbound fetches of one request, its nested calls included.
    #[arg(long, env = "VALBOX_FETCHES_PER_REQUEST")]
    fetches_per_request: Option<u32>,
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
    /// Megabytes of compiled components kept loaded in memory.
    #[arg(long, env = "VALBOX_LOADED_MB")]
    loaded_mb: Option<usize>,
    /// Seconds an uncalled component stays loaded.
    #[arg(long, env = "VALBOX_LOADED_IDLE_SECS")]
    loaded_idle_secs: Option<u64>,
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
        if self.no_fuel_metering {
            l.meter_fuel = false;
        }
        if let Some(ms) = self.timeout_ms {
            l.timeout = Duration::from_millis(ms);
        }
        set(&mut l.memory_bytes, self.memory_mb.map(|mb| mb << 20));
        set(&mut l.request_body_bytes, self.request_body_bytes);
        set(&mut l.response_body_bytes, self.response_body_bytes);
        set(&mut l.log_bytes, self.log_bytes);
        if let Some(bytes) = self.log_bytes_per_val {
            l.log_bytes_per_val = bytes;
        }
        if let Some(mb) = self.compile_cache_mb {
            l.compile_cache_bytes = mb.saturating_mul(1 << 20);
        }
        if let Some(mb) = self.storage_quota_mb {
            l.storage_quota_bytes = mb.saturating_mul(1 << 20);
        }
        if let Some(days) = self.log_days {
            l.log_max_age = Duration::from_secs(days.saturating_mul(24 * 3600));
        }
        set(&mut l.component_bytes, self.component_bytes);
        set(
            &mut l.concurrent_calls_per_owner,
            self.concurrent_calls_per_owner,
        );
        if let Some(n) = self.nested_calls_per_request {
            l.nested_calls_per_request = n;
        }
        if let Some(n) = self.fetches_per_request {
            l.fetch_requests_per_call = n;
        }
        set(&mut l.tables, self.tables);
        set(&mut l.table_elements, self.table_elements);
        set(&mut l.instances, self.instances);
        set(&mut l.concurrent_instances, self.concurrent_instances);
        set(&mut l.running_guests, self.running_guests);
        set(&mut l.loaded_bytes, self.loaded_mb.map(|mb| mb << 20));
        if let Some(secs) = self.loaded_idle_secs {
            l.loaded_idle = Duration::from_secs(secs);
        }
    }
}

/// Wait for Ctrl-C or SIGTERM (what `kill`, systemd and container
/// runtimes send), so either stops the server gracefully.
async fn stop_requested() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// Raise the soft limit on open files to the hard limit: every connection
/// and every SQLite database holds one, and the common default of 1,024 is
/// a few hundred clients.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && {
            let was = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            was == limit.rlim_max || libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
        }
    };
    if raised {
        tracing::info!("open files: up to {}", limit.rlim_cur);
    } else {
        tracing::warn!(
            "open files: could not raise the limit ({}); see `ulimit -n`",
            std::io::Error::last_os_error()
        );
    }
}

/// Build the project in `dir` (toolchains run for seconds or minutes: off
/// the async runtime), saying where the component went.
async fn built(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = dir.to_path_buf();
    let wasm = tokio::task::spawn_blocking(move || project::build(&dir)).await??;
    println!("built {}", wasm.display());
    Ok(wasm)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            data,
            listen,
            public_url,
            val_host_suffix,
            secret_scanning_keys,
            smtp,
            smtp_from,
            smtp_ca,
            default_val_scopes,
            limits,
            edge,
        } => {
            let mut config = Config::new(data, listen);
            if let Some(scopes) = default_val_scopes {
                config.default_val_scopes = valbox_model::Scopes::parse(&scopes)
                    .map_err(|e| anyhow::anyhow!("--default-val-scopes: {e}"))?;
            }
            if let Some(url) = smtp {
                let mut smtp =
                    valbox_caps::email::delivery::SmtpConfig::from_url(&url, &smtp_from)?;
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
            edge.apply(&mut config)?;
            if let Some(url) = public_url {
                config.public_url = url.trim_end_matches('/').to_string();
            } else if config.tls.is_some() {
                config.public_url = format!("https://{}", config.listen);
            }
            if let Some(suffix) = val_host_suffix {
                config.val_host_suffix = suffix.trim_matches('.').to_ascii_lowercase();
            }
            raise_open_file_limit();
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let server = Server::start(config).await?;
            println!("valbox listening on {scheme}://{}", server.addr);
            if let Some(at) = server.metrics_addr {
                println!("valbox metrics on http://{at}/metrics");
            }
            stop_requested().await?;
            tracing::info!("stopping: finishing the calls in flight");
            server.shutdown().await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::MigrateScopes {
                    remove,
                    days,
                    dry_run,
                    data,
                },
        } => admin::migrate_scopes(&data, &remove, days, dry_run),
        Command::User {
            command:
                UserCommand::LoginLink {
                    username,
                    url,
                    data,
                },
        } => {
            let path = data.join("valbox.db");
            if !path.exists() {
                anyhow::bail!("no Valbox data in {} (give --data)", data.display());
            }
            let db = valbox_store::Db::open(&path)?;
            match valbox_server::services::sign_in::login_link(&db, &username, &url)? {
                Some(link) => {
                    println!("{link}");
                    Ok(())
                }
                None => anyhow::bail!("no user `{username}`"),
            }
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
            deps,
            grants,
            grant_declared,
            client,
        } => {
            let options = DeployOptions {
                privacy,
                description,
                scopes,
                deps,
                grants,
                grant_declared,
            };
            let wasm = match wasm {
                Some(wasm) => wasm,
                None => built(Path::new(".")).await?,
            };
            deploy(&Client::new(client), &name, &wasm, options).await
        }
        Command::New { name, lang, kind } => {
            let dir = project::new(&name, lang, kind)?;
            println!(
                "wrote {}: `cd {0}` and `valbox build`, or `valbox deploy {name}`",
                dir.display()
            );
            Ok(())
        }
        Command::Build { dir } => {
            built(dir.as_deref().unwrap_or(Path::new("."))).await?;
            Ok(())
        }
        Command::Val {
            command:
                ValCommand::Scopes {
                    name,
                    scopes,
                    usage,
                    to_used,
                    days,
                    client,
                },
        } => {
            let client = Client::new(client);
            if usage || to_used {
                least_privilege::val_usage(&client, &name, days, to_used).await
            } else {
                val_scopes(&client, &name, scopes).await
            }
        }
        Command::Val {
            command:
                ValCommand::Requests {
                    grant,
                    dismiss,
                    client,
                },
        } => least_privilege::requests(&Client::new(client), grant, dismiss).await,

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
