//! `valbox serve`'s flags for the edge: connection caps, timeouts, TLS,
//! trusted proxies and the metrics listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use valbox_server::config::Config;
use valbox_server::edge::{EdgeLimits, ForwardedHeader, TlsFiles, TrustedProxies};

#[derive(clap::Args)]
pub struct EdgeArgs {
    /// Connections open at once, in all (past it, new ones are closed).
    #[arg(long, env = "VALBOX_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Connections open at once from one client address.
    #[arg(long, env = "VALBOX_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 256)]
    max_connections_per_client: usize,
    /// Milliseconds a client may take to send a request head (or finish a
    /// TLS handshake), and a keep-alive connection may sit idle.
    #[arg(long, env = "VALBOX_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Milliseconds a request body may take to arrive once the server
    /// starts reading it (past it: 408).
    #[arg(long, env = "VALBOX_BODY_TIMEOUT_MS", default_value_t = 60_000)]
    body_timeout_ms: u64,
    /// Bytes of one request head, request line and headers together
    /// (past it: 431); at least 8192.
    #[arg(long, env = "VALBOX_MAX_HEADER_BYTES", default_value_t = 32 << 10)]
    max_header_bytes: usize,
    /// Milliseconds a response may go without being read (no write
    /// progress) before its connection is closed.
    #[arg(long, env = "VALBOX_WRITE_TIMEOUT_MS", default_value_t = 30_000)]
    write_timeout_ms: u64,
    /// Milliseconds an HTTP/2 connection may stay open with no request.
    #[arg(long, env = "VALBOX_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain;
    /// it is reloaded when the file changes. Needs --tls-key.
    #[arg(long, env = "VALBOX_TLS_CERT", value_name = "PEM-FILE")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "VALBOX_TLS_KEY", value_name = "PEM-FILE")]
    tls_key: Option<PathBuf>,
    /// A proxy in front of the server (address or CIDR range; repeatable,
    /// or comma-separated): its forwarding header names the client.
    #[arg(
        long = "trusted-proxy",
        env = "VALBOX_TRUSTED_PROXIES",
        value_name = "ADDR[/BITS]",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// Shorthand for --trusted-proxy 127.0.0.1 --trusted-proxy ::1: a
    /// proxy on this machine.
    #[arg(long, env = "VALBOX_BEHIND_PROXY")]
    behind_proxy: bool,
    /// The header trusted proxies name the client in.
    #[arg(
        long,
        env = "VALBOX_FORWARDED_HEADER",
        value_enum,
        default_value = "x-forwarded-for"
    )]
    forwarded_header: ForwardedHeader,
    /// Serve GET /metrics (Prometheus) on this address, e.g. 127.0.0.1:9090.
    #[arg(long, env = "VALBOX_METRICS_LISTEN", value_name = "ADDR:PORT")]
    metrics_listen: Option<SocketAddr>,
}

impl EdgeArgs {
    pub fn apply(self, config: &mut Config) -> anyhow::Result<()> {
        config.edge = EdgeLimits {
            max_connections: self.max_connections.max(1),
            max_connections_per_client: self.max_connections_per_client.max(1),
            header_timeout: Duration::from_millis(self.header_timeout_ms.max(1)),
            body_timeout: Duration::from_millis(self.body_timeout_ms.max(1)),
            max_header_bytes: self
                .max_header_bytes
                .max(valbox_server::edge::MIN_HEADER_BYTES),
            write_timeout: Duration::from_millis(self.write_timeout_ms.max(1)),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms.max(1)),
        };
        config.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => bail!("--tls-cert needs --tls-key, the certificate's private key"),
            (None, Some(_)) => bail!("--tls-key needs --tls-cert, the certificate it signs for"),
        };
        let mut proxies = self.trusted_proxies;
        if self.behind_proxy {
            proxies.extend(["127.0.0.1".into(), "::1".into()]);
        }
        config.trusted_proxies = TrustedProxies::parse(&proxies, self.forwarded_header)
            .map_err(|e| anyhow::anyhow!("--trusted-proxy: {e}"))?;
        config.metrics_listen = self.metrics_listen;
        Ok(())
    }
}
