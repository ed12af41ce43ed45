//! One typed configuration for the server: where data lives, where to
//! listen, and the limits every call runs under.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Server configuration. Built by the CLI from flags and `VALBOX_*`
/// environment variables; tests build it directly.
#[derive(Clone, Debug)]
pub struct Config {
    /// Holds `valbox.db`, the component cache and the secrets key.
    pub data_dir: PathBuf,
    /// The metadata store: a PostgreSQL URL, or `None` for the embedded
    /// `valbox.db` in `data_dir`.
    pub database: Option<String>,
    /// Where components and blobs are kept: an `s3://` URL that every
    /// node shares, or `None` for files in `data_dir`.
    pub objects: Option<String>,
    /// The key that seals env vars at rest; every node of one store must
    /// hold the same. Default `secret.key` in `data_dir`, made on first
    /// start.
    pub secret_key_file: Option<PathBuf>,
    pub listen: SocketAddr,
    /// The host suffix under which `{user}-{val}.{suffix}` serves a val.
    pub val_host_suffix: String,
    /// The base URL users reach this server at, used in links.
    pub public_url: String,
    pub limits: valbox_model::Limits,
    /// Public keys (identifier, PEM) that sign GitHub secret-scanning
    /// alerts. Without any, the endpoint refuses every alert.
    pub secret_scanning_keys: Vec<(String, String)>,
    /// Where vals may fetch from beyond public addresses, and fixed name
    /// resolutions (for split DNS, and for tests).
    pub fetch_policy: valbox_caps::fetch::policy::Policy,
    /// Where the email outbox is delivered; without it mail stays queued.
    pub smtp: Option<valbox_caps::email::delivery::SmtpConfig>,
    /// The scopes a new val's calls get (at most what its creator holds).
    pub default_val_scopes: valbox_model::Scopes,
    /// Compiled functions by the hash of their code, reused by later
    /// compiles (default `<data_dir>/compile-cache.sqlite3`).
    pub compile_cache: PathBuf,
    /// Connection caps and timeouts at the edge.
    pub edge: crate::edge::EdgeLimits,
    /// Serve HTTPS (and HTTP/2) with this certificate and key.
    pub tls: Option<crate::edge::TlsFiles>,
    /// Proxies whose forwarding header names the client.
    pub trusted_proxies: crate::edge::TrustedProxies,
    /// Serve `GET /metrics` here (port 0: any free port); without it no
    /// metrics are served.
    pub metrics_listen: Option<SocketAddr>,
    /// The internal listener and secret of a node of a cluster (with
    /// `database`): users' SQLite databases are then served by their home
    /// nodes. Without it, a node on a shared store refuses SQLite.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// The shortest gap a cron val's schedule may have between runs.
    pub min_schedule: std::time::Duration,
    /// Cron vals one owner may schedule.
    pub schedules_per_owner: u64,
    /// Receive mail for email vals: the SMTP listener, the mail domain
    /// and their limits. Without it no mail is received.
    pub mail: Option<crate::mail_in::MailConfig>,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        let data_dir = data_dir.into();
        Self {
            database: None,
            objects: None,
            secret_key_file: None,
            compile_cache: data_dir.join("compile-cache.sqlite3"),
            edge: Default::default(),
            tls: None,
            trusted_proxies: Default::default(),
            metrics_listen: None,
            cluster: None,
            min_schedule: std::time::Duration::from_secs(60),
            schedules_per_owner: 20,
            mail: None,
            data_dir,
            listen,
            val_host_suffix: "localhost".into(),
            public_url: format!("http://{listen}"),
            limits: Default::default(),
            secret_scanning_keys: Vec::new(),
            fetch_policy: Default::default(),
            smtp: None,
            default_val_scopes: valbox_model::Scopes::val_default(),
        }
    }
}
