//! `valbox serve`'s flags for receiving mail (email vals): the SMTP
//! listener, the mail domain, STARTTLS and the limits strangers meet.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use valbox_server::config::Config;
use valbox_server::edge::TlsFiles;
use valbox_server::mail_in::MailConfig;

#[derive(clap::Args)]
pub struct MailArgs {
    /// Receive mail for email vals here (SMTP, e.g. 0.0.0.0:25). Needs
    /// --mail-domain.
    #[arg(long, env = "VALBOX_SMTP_LISTEN", value_name = "ADDR")]
    smtp_listen: Option<SocketAddr>,
    /// The domain of email vals' addresses: mail to
    /// `{user}.{val}@DOMAIN` goes to that val. Point its MX record here.
    #[arg(long, env = "VALBOX_MAIL_DOMAIN", value_name = "DOMAIN")]
    mail_domain: Option<String>,
    /// Offer STARTTLS with this PEM certificate chain (default: --tls-cert,
    /// when given). Needs --smtp-tls-key.
    #[arg(long, env = "VALBOX_SMTP_TLS_CERT", value_name = "PEM-FILE")]
    smtp_tls_cert: Option<PathBuf>,
    /// The PEM private key of --smtp-tls-cert.
    #[arg(long, env = "VALBOX_SMTP_TLS_KEY", value_name = "PEM-FILE")]
    smtp_tls_key: Option<PathBuf>,
    /// The largest message accepted, in bytes (larger: 552).
    #[arg(long, env = "VALBOX_MAIL_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    mail_max_bytes: usize,
    /// SMTP connections open at once, in all (more: 421).
    #[arg(long, env = "VALBOX_SMTP_MAX_CONNECTIONS", default_value_t = 500)]
    smtp_max_connections: usize,
    /// SMTP connections open at once from one address (more: 421).
    #[arg(long, env = "VALBOX_SMTP_CONNECTIONS_PER_CLIENT", default_value_t = 20)]
    smtp_connections_per_client: usize,
    /// Messages one address may send per minute (more: 451).
    #[arg(long, env = "VALBOX_SMTP_MESSAGES_PER_MINUTE", default_value_t = 120)]
    smtp_messages_per_minute: u32,
    /// Bytes of mail that may wait for one val (more: 452).
    #[arg(long, env = "VALBOX_MAIL_QUEUE_BYTES_PER_VAL", default_value_t = 100 * 1024 * 1024)]
    mail_queue_bytes_per_val: i64,
    /// Bytes of mail that may wait in all, what strangers can make this
    /// server keep on disk (more: 452).
    #[arg(long, env = "VALBOX_MAIL_QUEUE_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    mail_queue_bytes: i64,
    /// How long mail whose val keeps failing is retried, in seconds.
    #[arg(long, env = "VALBOX_MAIL_RETRY_SECS", default_value_t = 24 * 3600)]
    mail_retry_secs: u64,
    /// The first retry's delay, in seconds; each next doubles (at most
    /// 10 minutes).
    #[arg(long, env = "VALBOX_MAIL_FIRST_RETRY_SECS", default_value_t = 30)]
    mail_first_retry_secs: u64,
}

impl MailArgs {
    /// Set `config.mail`; the edge's TLS files must already be set.
    pub fn apply(self, config: &mut Config) -> anyhow::Result<()> {
        let (listen, domain) = match (self.smtp_listen, self.mail_domain) {
            (None, None) => return Ok(()),
            (Some(listen), Some(domain)) => (listen, domain),
            (Some(_), None) => {
                bail!("--smtp-listen needs --mail-domain, the domain of email vals' addresses")
            }
            (None, Some(_)) => bail!("--mail-domain needs --smtp-listen, where mail arrives"),
        };
        let valid = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            bail!("--mail-domain `{domain}` is not a domain name like mail.example.com");
        }
        let mut mail = MailConfig::new(listen, &domain);
        mail.tls = match (self.smtp_tls_cert, self.smtp_tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => config.tls.clone(),
            (Some(_), None) => bail!("--smtp-tls-cert needs --smtp-tls-key"),
            (None, Some(_)) => bail!("--smtp-tls-key needs --smtp-tls-cert"),
        };
        if self.mail_max_bytes == 0 || self.smtp_max_connections == 0 {
            bail!("--mail-max-bytes and --smtp-max-connections must be above 0");
        }
        mail.max_message_bytes = self.mail_max_bytes;
        mail.max_connections = self.smtp_max_connections;
        mail.max_connections_per_client = self.smtp_connections_per_client.max(1);
        mail.messages_per_client_minute = self.smtp_messages_per_minute;
        mail.max_queued_bytes_per_val = self.mail_queue_bytes_per_val;
        mail.max_queued_bytes = self.mail_queue_bytes;
        mail.retry_for = Duration::from_secs(self.mail_retry_secs);
        mail.first_retry = Duration::from_secs(self.mail_first_retry_secs.max(1));
        config.mail = Some(mail);
        Ok(())
    }
}
