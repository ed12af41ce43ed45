//! The `valbox` command: `serve` and `user` work on the data directory;
//! `deploy`, `env` and `logs` talk to a server at `VALBOX_URL` with
//! `VALBOX_TOKEN`.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

pub use admin::{StoreArgs, create_user, create_user_in, validate_username};
use client::{Client, DeployOptions, deploy, email_list, logs, val_schedule, val_scopes};

mod admin;
mod client;
mod edge_args;
mod env_vars;
mod least_privilege;
mod mail_args;
mod project;
mod serve;
mod templates;
mod tokens;

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
    Serve(serve::ServeArgs),
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
    Build {
        dir: Option<PathBuf>,
        #[command(flatten)]
        options: project::BuildOptions,
    },
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
        /// Run the (cron) val on this schedule: `every 15m`, `0 9 * * 1-5`,
        /// `TZ=Europe/Paris 0 9 * * *`, or `off`.
        #[arg(long, value_name = "EXPR")]
        schedule: Option<String>,
        /// Let one instance of this HTTP val serve up to N calls (its
        /// memory survives between them; a trap or limit retires it);
        /// 0 turns reuse off. Off unless asked for.
        #[arg(long, value_name = "N")]
        reuse: Option<u32>,
        /// How the project is built when no WASM is given.
        #[command(flatten)]
        build: project::BuildOptions,
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
        command: tokens::TokenCommand,
    },
    /// Your email outbox.
    Email {
        #[command(subcommand)]
        command: EmailCommand,
    },
    /// Manage a val's environment variables (secrets).
    Env {
        #[command(subcommand)]
        command: env_vars::EnvCommand,
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
        #[command(flatten)]
        at: StoreArgs,
    },
    /// Bring the metadata store's schema up to date, and nothing else (a
    /// server does it as it starts, once however many start together).
    Migrate {
        #[command(flatten)]
        at: StoreArgs,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print a new API token holding every scope.
    Create {
        username: String,
        #[arg(long)]
        email: String,
        #[command(flatten)]
        at: StoreArgs,
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
        #[command(flatten)]
        at: StoreArgs,
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
    /// Show a cron val's schedule and next run, or set it: `every 15m`,
    /// `0 9 * * 1-5`, `TZ=Europe/Paris 0 9 * * *`, or `off`.
    Schedule {
        name: String,
        schedule: Option<String>,
        /// Run it again after it was paused for failing.
        #[arg(long)]
        unpause: bool,
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
enum EmailCommand {
    /// List your outbox, newest first, with each message's delivery status.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Build the project in `dir` (toolchains run for seconds or minutes: off
/// the async runtime), saying where the component went.
async fn built(dir: &Path, options: project::BuildOptions) -> anyhow::Result<PathBuf> {
    let dir = dir.to_path_buf();
    let wasm = tokio::task::spawn_blocking(move || project::build(&dir, &options)).await??;
    println!("built {}", wasm.display());
    Ok(wasm)
}

/// The `valbox` program: logs to stderr, the command line parsed, run, and
/// an error printed with its causes and exit status 1.
pub async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = run(<Cli as clap::Parser>::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Admin {
            command:
                AdminCommand::MigrateScopes {
                    remove,
                    days,
                    dry_run,
                    at,
                },
        } => admin::migrate_scopes(&at, &remove, days, dry_run).await,
        Command::Admin {
            command: AdminCommand::Migrate { at },
        } => {
            at.open().await?;
            println!("the metadata store is up to date");
            Ok(())
        }
        Command::User { command } => user(command).await,
        Command::Deploy {
            name,
            wasm,
            privacy,
            description,
            scopes,
            deps,
            grants,
            grant_declared,
            schedule,
            reuse,
            build,
            client,
        } => {
            let options = DeployOptions {
                privacy,
                description,
                scopes,
                deps,
                grants,
                grant_declared,
                schedule,
                reuse,
            };
            let wasm = match wasm {
                Some(_) if build.aot => anyhow::bail!(
                    "--aot builds the project in this directory; a .wasm given to deploy \
                     is deployed as it is (build it with `valbox build --aot`)"
                ),
                Some(wasm) => wasm,
                None => built(Path::new("."), build).await?,
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
        Command::Build { dir, options } => {
            built(dir.as_deref().unwrap_or(Path::new(".")), options).await?;
            Ok(())
        }
        Command::Val { command } => val(command).await,
        Command::Token { command } => tokens::run(command).await,
        Command::Email {
            command: EmailCommand::List { client },
        } => email_list(&Client::new(client)).await,
        Command::Env { command } => env_vars::run(command).await,
        Command::Logs {
            name,
            limit,
            client,
        } => logs(&Client::new(client), &name, limit).await,
    }
}

/// `valbox user ...`: on the data directory, no server needed.
async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::LoginLink { username, url, at } => {
            let store = at.existing().await?;
            match valbox_server::services::sign_in::login_link(&store, &username, &url).await? {
                Some(link) => {
                    println!("{link}");
                    Ok(())
                }
                None => anyhow::bail!("no user `{username}`"),
            }
        }
        UserCommand::Create {
            username,
            email,
            at,
        } => {
            let token = admin::create_user_in(&at.open().await?, &username, &email).await?;
            println!("created user {username}; API token (shown once):");
            println!("{token}");
            Ok(())
        }
    }
}

/// `valbox val ...`: a val's scopes and its scope requests.
async fn val(command: ValCommand) -> anyhow::Result<()> {
    match command {
        ValCommand::Scopes {
            name,
            scopes,
            usage,
            to_used,
            days,
            client,
        } => {
            let client = Client::new(client);
            if usage || to_used {
                least_privilege::val_usage(&client, &name, days, to_used).await
            } else {
                val_scopes(&client, &name, scopes).await
            }
        }
        ValCommand::Requests {
            grant,
            dismiss,
            client,
        } => least_privilege::requests(&Client::new(client), grant, dismiss).await,
        ValCommand::Schedule {
            name,
            schedule,
            unpause,
            client,
        } => val_schedule(&Client::new(client), &name, schedule, unpause).await,
    }
}
