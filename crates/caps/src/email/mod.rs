//! Email to the owner of a val or token. The service checks `email:write`
//! (sending) and `email:read` (the outbox) for whoever asks and enqueues
//! into the durable `outbox`, which `delivery` sends over SMTP; `host` is
//! the WIT import, `routes` the REST routes.

pub mod delivery;
mod host;
pub mod outbox;

use std::sync::Arc;

use wasmtime::component::Linker;

use super::{Capability, Ctx, HasCap, Settings};
use outbox::{Budget, EmailError, Entry, Outgoing};
use valbox_model::{Holder, Scope};
use valbox_store::{Outbox, Users};

/// The outbox and what wakes its delivery worker.
#[derive(Clone)]
pub struct Mailer {
    pub users: Arc<dyn Users>,
    pub outbox: Arc<dyn Outbox>,
    pub daily_limit: u32,
    pub platform_daily_limit: u32,
    pub wake: Arc<tokio::sync::Notify>,
}

impl Mailer {
    /// Validate and enqueue mail to `owner` from their vals or tokens
    /// (within their daily limit); returns the message id. No scope check:
    /// the caller has made it.
    pub async fn send(
        &self,
        owner: &str,
        val_id: Option<&str>,
        recipients: Vec<String>,
        mail: Outgoing,
    ) -> Result<String, EmailError> {
        let budget = Budget::Owner(self.daily_limit);
        self.enqueue(owner, val_id, recipients, mail, budget).await
    }

    /// Enqueue the platform's own mail to `owner` (a sign-in link, a
    /// request, a notice), within its own daily budget: what the owner's
    /// vals send, or strangers make them send, never crowds it out.
    pub async fn send_platform(
        &self,
        owner: &str,
        val_id: Option<&str>,
        mail: Outgoing,
    ) -> Result<String, EmailError> {
        let budget = Budget::Platform(self.platform_daily_limit);
        self.enqueue(owner, val_id, Vec::new(), mail, budget).await
    }

    /// Enqueue a sign-in link to `owner`. It is bounded per user by the
    /// UI's sign-in limiter rather than by a daily count: links that
    /// strangers ask for reach the user, and could otherwise use up a
    /// budget the user needs to sign in.
    pub async fn send_sign_in(&self, owner: &str, mail: Outgoing) -> Result<String, EmailError> {
        let budget = Budget::Platform(u32::MAX);
        self.enqueue(owner, None, Vec::new(), mail, budget).await
    }

    async fn enqueue(
        &self,
        owner: &str,
        val_id: Option<&str>,
        recipients: Vec<String>,
        mail: Outgoing,
        budget: Budget,
    ) -> Result<String, EmailError> {
        // Checked before the database is touched: a bad message costs no
        // turn at the shared connection.
        mail.validate()?;
        let email = self.users.by_id(owner).await?.map(|u| u.email);
        let email = email.unwrap_or_default();
        outbox::check_owner_address(&email)?;
        outbox::check_recipients(&email, recipients.iter().map(String::as_str))?;
        let queued = budget.queue(owner, val_id, &mail);
        let id = self
            .outbox
            .enqueue(queued)
            .await?
            .map_err(|limit| EmailError::DailyLimit(limit.0))?;
        self.wake.notify_one();
        Ok(id)
    }
}

/// The email service.
pub struct Email {
    pub mailer: Mailer,
}

/// A message as its sender hands it over, from REST or from a val.
pub struct Sending {
    /// Must each be the owner's address: vals and tokens mail their owner.
    pub recipients: Vec<String>,
    pub mail: Outgoing,
    /// How many attachments it carries: refused until they are supported.
    pub attachments: usize,
}

impl Email {
    /// Send a message to the holder's owner; `from_val` names the sending
    /// val. The scope is checked first, so a refusal is one whatever the
    /// message holds.
    pub async fn send(
        &self,
        who: &mut impl Holder,
        from_val: Option<&str>,
        sending: Sending,
    ) -> Result<String, EmailError> {
        who.check(Scope::EmailWrite)?;
        if sending.attachments > 0 {
            return Err(EmailError::Invalid(
                "attachments are not supported yet".into(),
            ));
        }
        self.mailer
            .send(who.owner_id(), from_val, sending.recipients, sending.mail)
            .await
    }

    /// The holder's outbox, newest first.
    pub async fn outbox(&self, who: &mut impl Holder) -> Result<Vec<Entry>, EmailError> {
        who.check(Scope::EmailRead)?;
        let rows = self.mailer.outbox.list(who.owner_id()).await?;
        Ok(rows.into_iter().map(Entry::from).collect())
    }
}

/// What the email capability is configured with.
#[derive(Clone, Debug)]
pub struct EmailSettings {
    /// Mail one owner's vals and tokens may queue per 24 hours.
    pub per_day: u32,
    /// Mail the platform itself may queue to one user per 24 hours.
    pub platform_per_day: u32,
    /// Where mail is delivered; `None` keeps it queued.
    pub smtp: Option<delivery::SmtpConfig>,
}

impl Capability for Email {
    type Call = ();

    /// The outbox, delivered over SMTP when the config names a server.
    fn open(s: &Settings) -> anyhow::Result<Self> {
        let mailer = Mailer {
            users: s.store.users.clone(),
            outbox: s.store.outbox.clone(),
            daily_limit: s.config.email.per_day,
            platform_daily_limit: s.config.email.platform_per_day,
            wake: Default::default(),
        };
        if let Some(smtp) = &s.config.email.smtp {
            delivery::start(s.store.outbox.clone(), smtp.clone(), mailer.wake.clone());
        }
        Ok(Self { mailer })
    }

    fn link<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> Ctx<'_, Self>,
    ) -> wasmtime::Result<()> {
        valbox_runtime::bindings::email::add_to_linker::<T, HasCap<Self>>(linker, get)
    }
}

#[cfg(test)]
mod tests;
