//! Mail received for email vals, from its acknowledgement to its delivery:
//! the SMTP server answers 250 only once a message is here, and a
//! delivery claims it (so on many nodes exactly one delivers each, and a
//! node that died mid-delivery lets go when the hold runs out), retries it
//! with backoff, and removes it once delivered or given up.

use async_trait::async_trait;

use crate::StoreResult;

/// A message to queue, as the SMTP server received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingMail {
    pub val_id: String,
    pub owner_id: String,
    /// The envelope's sender (`MAIL FROM`), empty for a bounce (`<>`).
    pub envelope_from: String,
    /// The envelope's recipient (`RCPT TO`) that named the val.
    pub envelope_to: String,
    /// The message as received, headers and body, dot-unstuffed.
    pub raw: Vec<u8>,
    pub received_ms: i64,
}

/// A queued message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: String,
    pub val_id: String,
    pub owner_id: String,
    pub envelope_from: String,
    pub envelope_to: String,
    pub raw: Vec<u8>,
    pub received_ms: i64,
    /// Deliveries tried and failed so far.
    pub attempts: i32,
    /// When the next delivery may start.
    pub next_attempt_ms: i64,
    /// Until when the delivery that claimed it holds it: also the claim's
    /// token, which its retry, release and removal must present.
    pub running_until: Option<i64>,
    /// Why the last delivery failed.
    pub last_error: Option<String>,
}

/// What is queued for one val.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueuedFor {
    pub messages: i64,
    pub bytes: i64,
}

#[async_trait]
pub trait MailQueue: Send + Sync {
    /// Queue `mail` (due at once, no attempts) and return its id, unless
    /// the bytes queued for its val would then pass `max_val_bytes`:
    /// `None` then, and nothing is stored. Stored durably before it
    /// returns: the server acknowledges the message on its word.
    async fn enqueue(&self, mail: IncomingMail, max_val_bytes: i64) -> StoreResult<Option<String>>;
    /// Claim up to `limit` messages due at `now_ms` that no delivery
    /// holds, oldest due first, each held until `hold_until_ms`.
    async fn claim_due(
        &self,
        now_ms: i64,
        hold_until_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<QueuedMail>>;
    /// A failed delivery of `claimed`: one more attempt, `error` kept, due
    /// again at `next_attempt_ms`, hold released; `false` if its claim no
    /// longer holds it.
    async fn retry(
        &self,
        claimed: &QueuedMail,
        next_attempt_ms: i64,
        error: &str,
    ) -> StoreResult<bool>;
    /// A delivery of `claimed` that did not get to run (the platform's
    /// fault, not the val's): due again at `next_attempt_ms`, attempts
    /// unchanged, hold released; `false` if its claim no longer holds it.
    async fn release(&self, claimed: &QueuedMail, next_attempt_ms: i64) -> StoreResult<bool>;
    /// Remove `claimed` (delivered, or given up), if its claim still holds
    /// it; `false` if not.
    async fn remove(&self, claimed: &QueuedMail) -> StoreResult<bool>;
    /// What is queued for `val_id`.
    async fn queued_for(&self, val_id: &str) -> StoreResult<QueuedFor>;
    /// What is queued for every val.
    async fn queued_total(&self) -> StoreResult<QueuedFor>;
}
