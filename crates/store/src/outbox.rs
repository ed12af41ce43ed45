//! The durable outbox: mail is stored here before anyone is told it was
//! sent, and delivery takes it from here.

use async_trait::async_trait;

use crate::StoreResult;

/// A message to queue. The message is the sender's own encoding; the
/// store keeps it as it is.
#[derive(Clone, Debug)]
pub struct NewMail {
    pub owner_id: String,
    pub val_id: Option<String>,
    pub message: String,
    /// The platform's own mail, with a daily budget apart from the owner's.
    pub platform: bool,
    /// Messages of this budget the owner may queue in a day.
    pub daily_limit: u32,
}

/// The daily budget was spent: the limit.
#[derive(Clone, Copy, Debug)]
pub struct DailyLimit(pub u32);

/// An outbox entry as its owner sees it.
#[derive(Clone, Debug)]
pub struct OutboxRow {
    pub id: String,
    pub message: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// A message due for delivery, with its recipient (the owner's address).
#[derive(Clone, Debug)]
pub struct DueMail {
    pub id: String,
    pub to: String,
    pub message: String,
    pub attempts: i64,
    pub created_at: i64,
}

#[async_trait]
pub trait Outbox: Send + Sync {
    /// Queue `mail` if its budget allows; its id.
    async fn enqueue(&self, mail: NewMail) -> StoreResult<Result<String, DailyLimit>>;
    /// `owner_id`'s newest 100 messages.
    async fn list(&self, owner_id: &str) -> StoreResult<Vec<OutboxRow>>;
    /// Messages waiting for delivery.
    async fn queued(&self) -> StoreResult<i64>;
    /// Claim up to `limit` messages due now, oldest first: none of them
    /// is due again for a while (a sender that died mid-way), so that of
    /// several senders only one sends each. The sender then marks each
    /// sent or failed.
    async fn due(&self, limit: i64) -> StoreResult<Vec<DueMail>>;
    async fn mark_sent(&self, id: &str) -> StoreResult<()>;
    /// Record a failed attempt: retry after `retry_in_ms`, or give up.
    async fn mark_failed(&self, id: &str, error: &str, retry_in_ms: Option<i64>)
    -> StoreResult<()>;
}
