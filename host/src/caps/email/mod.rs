//! Email to the val's owner: the host import (`email:write`), the durable
//! outbox (`outbox`), SMTP delivery (`delivery`) and the REST routes.

pub mod delivery;
pub mod outbox;
mod routes;

use std::sync::Arc;

pub use routes::routes;

use super::CallContext;
use crate::auth::Scope;
use crate::db::Db;
use crate::runtime::bindings::email::{Address, Host, Message};
use crate::runtime::bindings::types::Error;
use outbox::{EmailError, Outgoing};

/// The outbox and what wakes its delivery worker.
#[derive(Clone)]
pub struct Mailer {
    pub db: Db,
    pub daily_limit: u32,
    pub wake: Arc<tokio::sync::Notify>,
}

impl Mailer {
    /// Validate and enqueue mail from `owner`; returns the message id.
    pub async fn send(
        &self,
        owner: &str,
        val_id: Option<&str>,
        recipients: Vec<String>,
        mail: Outgoing,
    ) -> Result<String, EmailError> {
        // Checked before the database is touched: a bad message costs no
        // turn at the shared connection.
        mail.validate()?;
        let (owner, val_id, limit) = (
            owner.to_string(),
            val_id.map(String::from),
            self.daily_limit,
        );
        let id = self
            .db
            .call(move |conn| {
                let email = outbox::owner_email(conn, &owner)?.unwrap_or_default();
                Ok(outbox::check_owner_address(&email)
                    .and_then(|()| {
                        outbox::check_recipients(&email, recipients.iter().map(String::as_str))
                    })
                    .and_then(|()| outbox::enqueue(conn, &owner, val_id.as_deref(), &mail, limit)))
            })
            .await??;
        self.wake.notify_one();
        Ok(id)
    }
}

impl From<EmailError> for Error {
    fn from(e: EmailError) -> Self {
        match e {
            EmailError::Invalid(_) => Error::Invalid(e.to_string()),
            EmailError::TooLarge(_) | EmailError::DailyLimit(_) => Error::Limit(e.to_string()),
            EmailError::Internal(m) => {
                tracing::error!("email: {m}");
                Error::Internal("the outbox failed; retry".into())
            }
        }
    }
}

impl Host for CallContext {
    async fn send(&mut self, message: Message) -> Result<String, Error> {
        self.check(Scope::EmailWrite)?;
        if !message.attachments.is_empty() {
            return Err(Error::Invalid("attachments are not supported yet".into()));
        }
        let emails = |list: Vec<Address>| list.into_iter().map(|a| a.email);
        let recipients: Vec<String> = emails(message.to)
            .chain(emails(message.cc))
            .chain(emails(message.bcc))
            .collect();
        let mail = Outgoing {
            from_name: message.from.and_then(|f| f.name),
            reply_to: emails(message.reply_to).collect(),
            subject: message.subject.unwrap_or_default(),
            text: message.text,
            html: message.html,
        };
        let mailer = self.mailer.clone();
        Ok(mailer
            .send(&self.owner_id, Some(&self.val_id), recipients, mail)
            .await?)
    }
}
