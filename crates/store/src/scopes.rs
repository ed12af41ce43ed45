//! Scope records: what each token and val did with its scopes, the
//! requests of vals for scopes they were refused, and the notices a scope
//! migration sent.

use async_trait::async_trait;

use valbox_model::{Scope, Scopes, Subject, Tally};

use crate::{DailyLimit, NewMail, StoreResult};

/// One scope's record for a token or val.
#[derive(Clone, Debug)]
pub struct UsageRow {
    pub scope: String,
    pub used_count: i64,
    pub last_used_at: Option<i64>,
    pub denied_count: i64,
    pub last_denied_at: Option<i64>,
}

/// A val's request for a scope it was refused.
#[derive(Clone, Debug)]
pub struct ScopeRequestRow {
    pub id: String,
    pub val_id: String,
    pub val_name: String,
    pub owner_id: String,
    pub owner_name: String,
    pub scope: String,
    /// `open`, `granted` or `dismissed`.
    pub status: String,
    pub denied_count: i64,
    pub first_denied_at: i64,
    pub last_denied_at: i64,
    pub mailed_at: Option<i64>,
}

/// A val or live token and the scopes it holds.
#[derive(Clone, Debug)]
pub struct Holding {
    pub subject: Subject,
    pub owner_id: String,
    pub owner_name: String,
    /// The val's or the token's name.
    pub name: String,
    pub scopes: Scopes,
}

#[async_trait]
pub trait ScopeRecords: Send + Sync {
    /// Add a batch of counts. Each val refused a scope asks for it: a new
    /// request, or more of one. A dismissed request stays dismissed; a
    /// granted one opens again (the scope was taken back).
    async fn record(&self, batch: Vec<(Subject, Scope, Tally)>) -> StoreResult<()>;
    /// The records of `subject`, by scope name.
    async fn usage_of(&self, subject: &Subject) -> StoreResult<Vec<UsageRow>>;

    /// `owner_id`'s requests, open ones first, newest first.
    async fn requests_of(&self, owner_id: &str) -> StoreResult<Vec<ScopeRequestRow>>;
    async fn request(&self, id: &str) -> StoreResult<Option<ScopeRequestRow>>;
    /// Open requests not mailed to their owner since `since` (ms).
    async fn requests_to_mail(&self, since: i64) -> StoreResult<Vec<ScopeRequestRow>>;
    async fn mark_mailed(&self, id: &str) -> StoreResult<()>;
    /// Grant request `id` (the val gains its scope) or dismiss it, in one
    /// step; the request after, `None` if it or its val is gone.
    async fn decide(&self, id: &str, grant: bool) -> StoreResult<Option<ScopeRequestRow>>;

    /// Every val, and every live token, with the scopes it holds.
    async fn holdings(&self) -> StoreResult<Vec<Holding>>;
    /// Take `remove` from what `subject` holds, as it holds it now.
    async fn remove_scopes(&self, subject: &Subject, remove: &Scopes) -> StoreResult<()>;
    /// Whether a notice about `key` was sent for `subject`.
    async fn notice_sent(&self, subject: &Subject, key: &str) -> StoreResult<bool>;
    /// Queue `mail` and remember that it told of `key` for `subjects`, in
    /// one step: both or neither.
    async fn send_notice(
        &self,
        subjects: Vec<Subject>,
        key: &str,
        mail: NewMail,
    ) -> StoreResult<Result<String, DailyLimit>>;
}

/// Whether `subject` used any of `scopes` since `since` (ms), by its records.
pub fn used_any_since(rows: &[UsageRow], scopes: &[Scope], since: i64) -> bool {
    rows.iter().any(|row| {
        scopes.iter().any(|s| s.as_str() == row.scope)
            && row.last_used_at.is_some_and(|t| t >= since)
    })
}
