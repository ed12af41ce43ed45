//! The durable outbox: a val's (or the API's) email is validated, limited
//! and stored here before `send` returns; the delivery worker takes it
//! from here. Mail goes to the val's owner only.

use serde::{Deserialize, Serialize};

use valbox_model::Denied;
use valbox_store::{DueMail, NewMail, OutboxRow, StoreError};

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
    /// The vals this mail comes from, oldest first: sent as its loop
    /// header, so that an email val it reaches can tell it came back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loop_trace: Vec<String>,
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

impl From<StoreError> for EmailError {
    fn from(e: StoreError) -> Self {
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

impl Budget {
    /// `mail` for `owner`, as the outbox keeps it, within this budget.
    pub fn queue(self, owner: &str, val_id: Option<&str>, mail: &Outgoing) -> NewMail {
        let (platform, daily_limit) = match self {
            Budget::Owner(n) => (false, n),
            Budget::Platform(n) => (true, n),
        };
        NewMail {
            owner_id: owner.to_string(),
            val_id: val_id.map(String::from),
            message: serde_json::to_string(mail).expect("an email serializes"),
            platform,
            daily_limit,
        }
    }
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

impl From<OutboxRow> for Entry {
    fn from(row: OutboxRow) -> Self {
        let subject = serde_json::from_str::<Outgoing>(&row.message)
            .map(|m| m.subject)
            .unwrap_or_default();
        Entry {
            id: row.id,
            subject,
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error,
            created_at: row.created_at,
            sent_at: row.sent_at,
        }
    }
}

/// A queued email due for delivery, with its recipient.
pub struct Due {
    pub id: String,
    pub to: String,
    pub mail: Outgoing,
    pub attempts: i64,
    pub created_at: i64,
}

impl Due {
    /// A stored message as delivery reads it; what is wrong if it cannot.
    pub fn read(row: DueMail) -> Result<Self, (String, String)> {
        match serde_json::from_str(&row.message) {
            Ok(mail) => Ok(Due {
                id: row.id,
                to: row.to,
                mail,
                attempts: row.attempts,
                created_at: row.created_at,
            }),
            Err(e) => Err((row.id, e.to_string())),
        }
    }
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
    fn an_unreadable_stored_message_is_refused_with_its_id() {
        let row = |message: &str| DueMail {
            id: "m1".into(),
            to: "ann@example.com".into(),
            message: message.into(),
            attempts: 0,
            created_at: 0,
        };
        let good = serde_json::to_string(&mail()).unwrap();
        assert_eq!(
            Due::read(row(&good)).unwrap().mail.text.as_deref(),
            Some("hi")
        );
        let (id, why) = Due::read(row("garbled")).err().unwrap();
        assert_eq!(id, "m1");
        assert!(!why.is_empty());
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
