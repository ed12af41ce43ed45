//! The delivery worker: sends queued mail over SMTP (plain, STARTTLS or
//! TLS via rustls) and records each outcome in the outbox. A permanent
//! failure (an SMTP 5xx rejection, a message that cannot be built) fails
//! the message at once; a transient one is retried with capped exponential
//! backoff for a day.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;

use super::outbox::{self, Due};
use valbox_model::now_ms;
use valbox_store::{Outbox, StoreError};

/// The wait before the first retry; each further retry waits twice as long.
/// Short, so a relay that was briefly down (or restarting) is retried soon.
const RETRY_BASE_MS: i64 = 2_000;
/// The longest wait between two attempts.
const RETRY_CAP_MS: i64 = 3_600_000;
/// Transient failures are retried until the message is this old (a day,
/// enough to outlast a relay's outage or maintenance); then it is failed.
const RETRY_WINDOW_MS: i64 = 24 * 3_600_000;

/// The wait after the failure of attempt `attempts + 1`.
fn backoff_ms(attempts: i64) -> i64 {
    // Past 2^20 the cap has long applied; clamping avoids an overflow.
    (RETRY_BASE_MS << attempts.clamp(0, 20)).min(RETRY_CAP_MS)
}

/// When to retry a message created at `created_at` after its attempt
/// number `attempts + 1` failed transiently: `None` once the window closes.
fn retry_in_ms(attempts: i64, created_at: i64, now: i64) -> Option<i64> {
    let wait = backoff_ms(attempts);
    (now + wait <= created_at + RETRY_WINDOW_MS).then_some(wait)
}

/// Why an attempt failed, and whether another one could succeed.
enum Failure {
    /// Worth retrying: the relay is unreachable, busy (4xx) or refused our
    /// credentials (fixed by the administrator, not by the message).
    Transient(String),
    /// Retrying the same message cannot help: failed at once.
    Permanent(String),
}

impl From<lettre::transport::smtp::Error> for Failure {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        // 530/534/535/538 are authentication problems (RFC 4954): the
        // server's configuration, so queued mail survives until it is fixed.
        let auth = e
            .status()
            .is_some_and(|c| matches!(c.to_string().as_str(), "530" | "534" | "535" | "538"));
        if e.is_permanent() && !auth {
            Failure::Permanent(format!("rejected by the SMTP server, not retried: {e}"))
        } else {
            Failure::Transient(e.to_string())
        }
    }
}

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
    /// PEM certificates trusted besides the webpki roots: a relay with a
    /// private CA (or a test's own). Set with `with_extra_roots`.
    extra_roots_pem: Option<Vec<u8>>,
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
        // Checked here so a bad sender stops the server from starting
        // instead of failing every message at delivery.
        if !outbox::is_address(from) {
            anyhow::bail!(
                "the SMTP sender `{from}` is not an email address like `valbox@example.com`"
            );
        }
        Ok(Self {
            host: parsed
                .host_str()
                .ok_or_else(|| anyhow::anyhow!("the SMTP URL has no host"))?
                .to_string(),
            port: parsed.port().unwrap_or(default_port),
            security,
            // A URL carries them percent-encoded (`p%40ss` for `p@ss`).
            username: (!parsed.username().is_empty()).then(|| decode(parsed.username())),
            password: parsed.password().map(decode),
            from: from.to_string(),
            extra_roots_pem: None,
        })
    }

    /// Also trust the certificates in `pem` for STARTTLS and TLS.
    pub fn with_extra_roots(mut self, pem: &[u8]) -> anyhow::Result<Self> {
        // Parsed now so a bad file stops the server from starting.
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            anyhow::bail!("no PEM certificate (`-----BEGIN CERTIFICATE-----`) in the SMTP CA file");
        }
        Certificate::from_pem(pem)?;
        self.extra_roots_pem = Some(pem.to_vec());
        Ok(self)
    }

    fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let tls = || -> anyhow::Result<TlsParameters> {
            let mut params = TlsParameters::builder(self.host.clone());
            if let Some(pem) = &self.extra_roots_pem {
                params = params.add_root_certificate(Certificate::from_pem(pem)?);
            }
            Ok(params.build()?)
        };
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
    // Mail a program sent (RFC 3834); the vals it comes from, so that an
    // email val it reaches can tell when it has come round to it again.
    builder = builder.raw_header(HeaderValue::new(
        HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".into(),
    ));
    if !due.mail.loop_trace.is_empty() {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Valbox-Loop"),
            due.mail.loop_trace.join(", "),
        ));
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
pub fn start(outbox: Arc<dyn Outbox>, config: SmtpConfig, wake: Arc<Notify>) {
    tokio::spawn(async move {
        let transport = match config.transport() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("email delivery disabled: {e:#}");
                return;
            }
        };
        loop {
            let batch = due(&*outbox).await.unwrap_or_else(|e| {
                tracing::error!("reading the outbox: {e:#}");
                Vec::new()
            });
            for due in &batch {
                let outcome = match build(&config, due) {
                    Ok(message) => transport
                        .send(message)
                        .await
                        .map(|_| ())
                        .map_err(Failure::from),
                    Err(e) => Err(Failure::Permanent(format!(
                        "the message could not be built, not retried: {e:#}"
                    ))),
                };
                let recorded = match outcome {
                    Ok(()) => outbox.mark_sent(&due.id).await,
                    Err(Failure::Permanent(error)) => {
                        tracing::warn!("delivering email {}: {error}", due.id);
                        outbox.mark_failed(&due.id, &error, None).await
                    }
                    Err(Failure::Transient(error)) => {
                        let retry = retry_in_ms(due.attempts, due.created_at, now_ms());
                        let error = match retry {
                            Some(_) => error,
                            None => format!("gave up after retrying for a day: {error}"),
                        };
                        tracing::warn!("delivering email {}: {error}", due.id);
                        outbox.mark_failed(&due.id, &error, retry).await
                    }
                };
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

/// The messages due now. One stored message that cannot be read must not
/// hold up the rest: it fails, not retried.
async fn due(outbox: &dyn Outbox) -> Result<Vec<Due>, StoreError> {
    let mut out = Vec::new();
    for row in outbox.due(20).await? {
        match Due::read(row) {
            Ok(due) => out.push(due),
            Err((id, error)) => {
                let error = format!("the stored message could not be read, not retried: {error}");
                tracing::error!("email {id}: {error}");
                outbox.mark_failed(&id, &error, None).await?;
            }
        }
    }
    Ok(out)
}

/// Undo a URL's percent-encoding of a user name or password.
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_short_doubles_and_is_capped() {
        assert_eq!(backoff_ms(0), RETRY_BASE_MS);
        assert_eq!(backoff_ms(1), 2 * RETRY_BASE_MS);
        assert_eq!(backoff_ms(40), RETRY_CAP_MS);
        assert_eq!(backoff_ms(i64::MAX), RETRY_CAP_MS);
    }

    #[test]
    fn transient_failures_are_retried_for_a_day_then_given_up() {
        let (created, mut now, mut attempts) = (1_000_000, 1_000_000, 0);
        while let Some(wait) = retry_in_ms(attempts, created, now) {
            now += wait;
            attempts += 1;
        }
        assert!(now - created <= RETRY_WINDOW_MS);
        assert!(now - created > RETRY_WINDOW_MS - RETRY_CAP_MS);
        assert!((30..40).contains(&attempts), "{attempts} retries");
    }

    #[test]
    fn the_sender_must_be_an_address() {
        assert!(SmtpConfig::from_url("smtp://127.0.0.1:25", "valbox@example.com").is_ok());
        assert!(SmtpConfig::from_url("smtp://127.0.0.1:25", "valbox").is_err());
    }

    #[test]
    fn credentials_in_the_url_are_decoded() {
        let config =
            SmtpConfig::from_url("smtps://mail%40corp:p%40ss%25w@127.0.0.1", "v@example.com")
                .unwrap();
        assert_eq!(config.username.as_deref(), Some("mail@corp"));
        assert_eq!(config.password.as_deref(), Some("p@ss%w"));
    }

    #[test]
    fn an_extra_ca_file_must_hold_a_certificate() {
        let config = SmtpConfig::from_url("smtp+starttls://127.0.0.1", "v@example.com").unwrap();
        assert!(
            config
                .clone()
                .with_extra_roots(b"not a certificate")
                .is_err()
        );
        let garbled = b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n";
        assert!(config.with_extra_roots(garbled).is_err());
    }
}
