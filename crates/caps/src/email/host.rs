//! The `email` WIT import, on the email service.

use super::outbox::{EmailError, Outgoing};
use super::{Email, Sending};
use crate::Ctx;
use valbox_runtime::bindings::email::{Address, Host, Message};
use valbox_runtime::bindings::types::Error;

impl From<EmailError> for Error {
    fn from(e: EmailError) -> Self {
        match e {
            EmailError::Denied(d) => Error::Denied(d.message),
            EmailError::Invalid(_) => Error::Invalid(e.to_string()),
            EmailError::TooLarge(_) | EmailError::DailyLimit(_) => Error::Limit(e.to_string()),
            EmailError::Internal(m) => {
                tracing::error!("email: {m}");
                Error::Internal("the outbox failed; retry".into())
            }
        }
    }
}

impl Host for Ctx<'_, Email> {
    async fn send(&mut self, message: Message) -> Result<String, Error> {
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
            loop_trace: (self.grant.budget().mail_trace().iter().cloned())
                .chain([self.grant.val_id().to_string()])
                .collect(),
        };
        let sending = Sending {
            recipients,
            mail,
            attachments: message.attachments.len(),
        };
        let val_id = self.grant.val_id().to_string();
        Ok(self.cap.send(self.grant, Some(&val_id), sending).await?)
    }
}
