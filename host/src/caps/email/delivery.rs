//! The delivery worker: sends queued mail over SMTP (plain, STARTTLS or
//! TLS via rustls), retrying with exponential backoff and recording each
//! outcome in the outbox.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;

use super::outbox::{self, Due};
use crate::db::Db;

/// Attempts before a message is marked failed.
const MAX_ATTEMPTS: i64 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP: for a relay on the same host only.
    None,
    StartTls,
    Tls,
}

/// Where and how to deliver mail.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The envelope and header sender, e.g. `valbox@example.com`.
    pub from: String,
}

impl SmtpConfig {
    /// Parse `smtp://host:port`, `smtp+starttls://...` or `smtps://...`,
    /// with optional `user:password@`.
    pub fn from_url(url: &str, from: &str) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url)?;
        let (security, default_port) = match parsed.scheme() {
            "smtp" => (Security::None, 25),
            "smtp+starttls" => (Security::StartTls, 587),
            "smtps" => (Security::Tls, 465),
            other => {
                anyhow::bail!("unknown SMTP scheme `{other}`: use smtp, smtp+starttls or smtps")
            }
        };
        Ok(Self {
            host: parsed
                .host_str()
                .ok_or_else(|| anyhow::anyhow!("the SMTP URL has no host"))?
                .to_string(),
            port: parsed.port().unwrap_or(default_port),
            security,
            username: (!parsed.username().is_empty()).then(|| parsed.username().to_string()),
            password: parsed.password().map(String::from),
            from: from.to_string(),
        })
    }

    fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let tls = || TlsParameters::new(self.host.clone());
        let tls = match self.security {
            Security::None => Tls::None,
            Security::StartTls => Tls::Required(tls()?),
            Security::Tls => Tls::Wrapper(tls()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)));
        if let (Some(user), Some(pass)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(builder.build())
    }
}

fn build(config: &SmtpConfig, due: &Due) -> anyhow::Result<Message> {
    let from = Mailbox::new(due.mail.from_name.clone(), config.from.parse()?);
    let mut builder = Message::builder()
        .from(from)
        .to(due.to.parse()?)
        .subject(due.mail.subject.clone())
        .message_id(Some(format!("<{}@valbox>", due.id)));
    for reply_to in &due.mail.reply_to {
        builder = builder.reply_to(reply_to.parse()?);
    }
    let text = |t: &str| {
        SinglePart::builder()
            .header(header::ContentType::TEXT_PLAIN)
            .body(t.to_string())
    };
    let html = |t: &str| {
        SinglePart::builder()
            .header(header::ContentType::TEXT_HTML)
            .body(t.to_string())
    };
    Ok(match (&due.mail.text, &due.mail.html) {
        (Some(t), Some(h)) => builder.multipart(
            MultiPart::alternative()
                .singlepart(text(t))
                .singlepart(html(h)),
        )?,
        (Some(t), None) => builder.singlepart(text(t))?,
        (None, Some(h)) => builder.singlepart(html(h))?,
        (None, None) => anyhow::bail!("an email without a body"),
    })
}

/// Run the worker until the process ends. `wake` is notified on enqueue.
pub fn start(db: Db, config: SmtpConfig, wake: Arc<Notify>) {
    tokio::spawn(async move {
        let transport = match config.transport() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("email delivery disabled: {e:#}");
                return;
            }
        };
        loop {
            let batch = db
                .call(|conn| outbox::due(conn, 20))
                .await
                .unwrap_or_else(|e| {
                    tracing::error!("reading the outbox: {e:#}");
                    Vec::new()
                });
            for due in &batch {
                let outcome = match build(&config, due) {
                    Ok(message) => transport
                        .send(message)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!("{e:#}")),
                };
                let (id, attempts) = (due.id.clone(), due.attempts);
                let recorded = db
                    .call(move |conn| match outcome {
                        Ok(()) => outbox::mark_sent(conn, &id),
                        Err(error) => {
                            tracing::warn!("delivering email {id}: {error}");
                            let retry = (attempts + 1 < MAX_ATTEMPTS)
                                .then(|| 1000 * 2i64.pow(attempts as u32 + 1));
                            outbox::mark_failed(conn, &id, &error, retry)
                        }
                    })
                    .await;
                if let Err(e) = recorded {
                    tracing::error!("recording an email's delivery: {e:#}");
                }
            }
            if batch.is_empty() {
                // Sleep until new mail arrives or a retry may be due.
                let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            }
        }
    });
}
