//! The durable outbox: a val's (or the API's) email is validated, limited
//! and stored here before `send` returns; the delivery worker takes it
//! from here. Mail goes to the val's owner only.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use valbox_model::Denied;
use valbox_model::now_ms;
use valbox_store as db;

/// The most a message may carry: subject, text, html, sender name and
/// reply-to addresses together (1 MiB). Owner notifications need far less;
/// the cap keeps one val from filling the outbox and the SMTP relay.
pub const MAX_EMAIL_BYTES: usize = 1024 * 1024;

/// What gets delivered. Recipients are not part of it: always the owner.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outgoing {
    pub from_name: Option<String>,
    pub reply_to: Vec<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

#[derive(Debug)]
pub enum EmailError {
    Denied(Denied),
    Invalid(String),
    /// The message's size in bytes, over `MAX_EMAIL_BYTES`.
    TooLarge(usize),
    DailyLimit(u32),
    Internal(String),
}

impl std::fmt::Display for EmailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmailError::Denied(d) => f.write_str(&d.message),
            EmailError::Invalid(m) => f.write_str(m),
            EmailError::TooLarge(n) => write!(
                f,
                "the email is {n} bytes; subject, text and html together may be at most \
                 {MAX_EMAIL_BYTES} bytes (1 MiB): shorten it or send a link instead"
            ),
            EmailError::DailyLimit(n) => write!(
                f,
                "the daily limit of {n} emails per owner is reached; try again tomorrow"
            ),
            EmailError::Internal(m) => write!(f, "the outbox failed: {m}"),
        }
    }
}

impl From<Denied> for EmailError {
    fn from(d: Denied) -> Self {
        EmailError::Denied(d)
    }
}

impl From<anyhow::Error> for EmailError {
    fn from(e: anyhow::Error) -> Self {
        EmailError::Internal(format!("{e:#}"))
    }
}

impl From<rusqlite::Error> for EmailError {
    fn from(e: rusqlite::Error) -> Self {
        EmailError::Internal(e.to_string())
    }
}

/// Whether delivery can use `address` as a plain `name@domain` address.
pub fn is_address(address: &str) -> bool {
    address.parse::<lettre::Address>().is_ok()
}

/// Check that the owner's account has an address mail can be delivered to.
pub fn check_owner_address(owner_email: &str) -> Result<(), EmailError> {
    if is_address(owner_email) {
        return Ok(());
    }
    Err(EmailError::Invalid(format!(
        "the owner's account has no usable email address (`{owner_email}`), so mail to it \
         cannot be delivered; ask the server's administrator to correct the address"
    )))
}

impl Outgoing {
    /// Check everything delivery relies on, so a bad message is refused now
    /// instead of being queued and failing later.
    pub fn validate(&self) -> Result<(), EmailError> {
        if self.text.is_none() && self.html.is_none() {
            return Err(EmailError::Invalid(
                "an email needs `text` or `html`".into(),
            ));
        }
        if self.subject.len() > 998 || self.subject.contains(['\r', '\n']) {
            return Err(EmailError::Invalid(
                "the subject must be one line of at most 998 bytes".into(),
            ));
        }
        if let Some(name) = &self.from_name
            && (name.len() > 998 || name.contains(char::is_control))
        {
            return Err(EmailError::Invalid(
                "the sender's `name` must be one line of at most 998 bytes without control characters"
                    .into(),
            ));
        }
        if let Some(bad) = self.reply_to.iter().find(|a| !is_address(a)) {
            return Err(EmailError::Invalid(format!(
                "the reply-to address `{bad}` is not a valid email address: give a plain \
                 address like `you@example.com`, or leave reply-to out"
            )));
        }
        let size = self.subject.len()
            + self.text.as_ref().map_or(0, String::len)
            + self.html.as_ref().map_or(0, String::len)
            + self.from_name.as_ref().map_or(0, String::len)
            + self.reply_to.iter().map(String::len).sum::<usize>();
        if size > MAX_EMAIL_BYTES {
            return Err(EmailError::TooLarge(size));
        }
        Ok(())
    }
}

/// Check that every recipient given is the owner: vals mail their owner only.
pub fn check_recipients<'a>(
    owner_email: &str,
    given: impl IntoIterator<Item = &'a str>,
) -> Result<(), EmailError> {
    for address in given {
        if !address.trim().eq_ignore_ascii_case(owner_email) {
            return Err(EmailError::Invalid(format!(
                "`{address}` is not the val owner's address: vals can email their owner only (leave `to` empty)"
            )));
        }
    }
    Ok(())
}

/// Store `mail` (already [`Outgoing::validate`]d) for `owner`; returns its id.
/// Whose daily budget a message counts against, and its size.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// The owner's vals and tokens.
    Owner(u32),
    /// The platform's own mail to the owner.
    Platform(u32),
}

pub fn enqueue(
    conn: &Connection,
    owner: &str,
    val_id: Option<&str>,
    mail: &Outgoing,
    budget: Budget,
) -> Result<String, EmailError> {
    let (platform, limit) = match budget {
        Budget::Owner(n) => (false, n),
        Budget::Platform(n) => (true, n),
    };
    let since = now_ms() - 86_400_000;
    let sent_today: u32 = conn.query_row(
        "SELECT count(*) FROM emails WHERE owner_id = ?1 AND created_at > ?2 AND platform = ?3",
        params![owner, since, platform],
        |r| r.get(0),
    )?;
    if sent_today >= limit {
        return Err(EmailError::DailyLimit(limit));
    }
    let id = db::new_id();
    let json = serde_json::to_string(mail).map_err(|e| EmailError::Internal(e.to_string()))?;
    conn.execute(
        "INSERT INTO emails (id, owner_id, val_id, message, status, attempts, next_attempt_at,
           created_at, platform)
         VALUES (?1, ?2, ?3, ?4, 'queued', 0, 0, ?5, ?6)",
        params![id, owner, val_id, json, now_ms(), platform],
    )?;
    Ok(id)
}

/// An outbox entry as the owner sees it.
pub struct Entry {
    pub id: String,
    pub subject: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

pub fn list(conn: &Connection, owner: &str) -> anyhow::Result<Vec<Entry>> {
    let mut stmt = conn.prepare(
        "SELECT id, message, status, attempts, last_error, created_at, sent_at FROM emails
         WHERE owner_id = ?1 ORDER BY created_at DESC LIMIT 100",
    )?;
    let rows = stmt.query_map([owner], |r| {
        let message: String = r.get(1)?;
        let subject = serde_json::from_str::<Outgoing>(&message)
            .map(|m| m.subject)
            .unwrap_or_default();
        Ok(Entry {
            id: r.get(0)?,
            subject,
            status: r.get(2)?,
            attempts: r.get(3)?,
            last_error: r.get(4)?,
            created_at: r.get(5)?,
            sent_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A queued email due for delivery, with its recipient.
pub struct Due {
    pub id: String,
    pub to: String,
    pub mail: Outgoing,
    pub attempts: i64,
    pub created_at: i64,
}

/// Emails waiting for delivery, for the metrics.
pub fn queued(conn: &mut Connection) -> anyhow::Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM emails WHERE status = 'queued'",
        [],
        |r| r.get(0),
    )?)
}

pub fn due(conn: &Connection, limit: i64) -> anyhow::Result<Vec<Due>> {
    let mut stmt = conn.prepare(
        "SELECT e.id, u.email, e.message, e.attempts, e.created_at FROM emails e JOIN users u ON u.id = e.owner_id
         WHERE e.status = 'queued' AND e.next_attempt_at <= ?1 ORDER BY e.created_at LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now_ms(), limit], |r| {
        let message: String = r.get(2)?;
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            message,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for row in rows {
        let (id, to, message, attempts, created_at) = row?;
        // One stored message that cannot be read must not hold up the rest.
        let mail = match serde_json::from_str(&message) {
            Ok(mail) => mail,
            Err(e) => {
                unreadable.push((id, e.to_string()));
                continue;
            }
        };
        out.push(Due {
            id,
            to,
            mail,
            attempts,
            created_at,
        });
    }
    drop(stmt);
    for (id, error) in unreadable {
        let error = format!("the stored message could not be read, not retried: {error}");
        tracing::error!("email {id}: {error}");
        mark_failed(conn, &id, &error, None)?;
    }
    Ok(out)
}

pub fn mark_sent(conn: &Connection, id: &str) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE emails SET status = 'sent', attempts = attempts + 1, sent_at = ?2, last_error = NULL WHERE id = ?1",
        params![id, now_ms()],
    )?;
    Ok(())
}

/// Record a failed attempt: retry after `retry_in_ms`, or give up.
pub fn mark_failed(
    conn: &Connection,
    id: &str,
    error: &str,
    retry_in_ms: Option<i64>,
) -> anyhow::Result<()> {
    let (status, next) = match retry_in_ms {
        Some(ms) => ("queued", now_ms() + ms),
        None => ("failed", 0),
    };
    conn.execute(
        "UPDATE emails SET status = ?2, attempts = attempts + 1, last_error = ?3, next_attempt_at = ?4 WHERE id = ?1",
        params![id, status, error, next],
    )?;
    Ok(())
}

pub fn owner_email(conn: &Connection, owner: &str) -> anyhow::Result<Option<String>> {
    Ok(conn
        .query_row("SELECT email FROM users WHERE id = ?1", [owner], |r| {
            r.get(0)
        })
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Outgoing {
        Outgoing {
            text: Some("hi".into()),
            ..Outgoing::default()
        }
    }

    fn invalid(mail: Outgoing) -> String {
        match mail.validate() {
            Err(EmailError::Invalid(m)) => m,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn an_unreadable_stored_message_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = valbox_store::Db::open(&dir.path().join("valbox.db")).unwrap();
        db.call_blocking(|conn| {
            let owner = valbox_store::insert_user(conn, "ann", "ann@example.com")?.id;
            let bad = enqueue(conn, &owner, None, &mail(), Budget::Owner(10)).unwrap();
            conn.execute(
                "UPDATE emails SET message = 'garbled' WHERE id = ?1",
                [&bad],
            )?;
            let good = enqueue(conn, &owner, None, &mail(), Budget::Owner(10)).unwrap();
            let due = due(conn, 20)?;
            assert_eq!(due.len(), 1);
            assert_eq!(due[0].id, good);
            let status: String =
                conn.query_row("SELECT status FROM emails WHERE id = ?1", [&bad], |r| {
                    r.get(0)
                })?;
            assert_eq!(status, "failed");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn reply_to_and_sender_name_are_checked_before_queueing() {
        assert!(mail().validate().is_ok());
        let reply_to = |a: &str| Outgoing {
            reply_to: vec!["ok@example.com".into(), a.into()],
            ..mail()
        };
        assert!(reply_to("me@example.com").validate().is_ok());
        assert!(invalid(reply_to("not an address")).contains("reply-to address `not an address`"));
        assert!(invalid(reply_to("a@b.c\r\nBcc: x@y.z")).contains("reply-to"));
        let named = Outgoing {
            from_name: Some("Val\r\nBcc: x@y.z".into()),
            ..mail()
        };
        assert!(invalid(named).contains("`name`"));
    }

    #[test]
    fn the_body_is_limited_to_one_mebibyte() {
        let sized = |n: usize| Outgoing {
            subject: "s".into(),
            text: Some("t".repeat(n / 2)),
            html: Some("h".repeat(n - n / 2 - 1)),
            ..Outgoing::default()
        };
        assert!(sized(MAX_EMAIL_BYTES).validate().is_ok());
        assert!(matches!(
            sized(MAX_EMAIL_BYTES + 1).validate(),
            Err(EmailError::TooLarge(n)) if n == MAX_EMAIL_BYTES + 1
        ));
    }

    #[test]
    fn an_owner_without_a_usable_address_cannot_be_mailed() {
        assert!(check_owner_address("alice@example.com").is_ok());
        for bad in ["", "bob@", "@example.com", "bob"] {
            assert!(
                matches!(check_owner_address(bad), Err(EmailError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
