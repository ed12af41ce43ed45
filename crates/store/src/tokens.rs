//! API tokens: only their hashes are stored.

use async_trait::async_trait;

use valbox_model::Scopes;

use crate::{StoreResult, User};

/// A stored API token, without its secret (only the hash is kept).
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub scopes: Scopes,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// How stale a token's "last used" time may get: each update is a durable
/// write, and a finer grain than this tells its owner nothing more.
pub const LAST_USED_GRAIN_MS: i64 = 60_000;

impl TokenRow {
    /// Why the token cannot be used at `now`, if it cannot.
    pub fn refusal(&self, now: i64) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("this API token was revoked")
        } else if self.expires_at.is_some_and(|t| t <= now) {
            Some("this API token has expired; create a new one")
        } else {
            None
        }
    }

    /// Whether a use at `now` should be recorded ([`Tokens::resolve`] records it).
    pub fn last_use_is_stale(&self, now: i64) -> bool {
        self.last_used_at
            .is_none_or(|t| t <= now - LAST_USED_GRAIN_MS)
    }
}

/// A token to store: the hash of its secret, never the secret.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub name: String,
    pub hash: String,
    pub scopes: Scopes,
    pub expires_at: Option<i64>,
}

#[async_trait]
pub trait Tokens: Send + Sync {
    async fn insert(&self, user_id: &str, token: NewToken) -> StoreResult<TokenRow>;
    async fn by_hash(&self, hash: &str) -> StoreResult<Option<TokenRow>>;
    /// The token with this hash and its user, in one read; a use at `now`
    /// that will be allowed is recorded (at most once per grain).
    async fn resolve(&self, hash: &str, now: i64) -> StoreResult<Option<(TokenRow, User)>>;
    /// `user_id`'s tokens, revoked ones too, oldest first.
    async fn list(&self, user_id: &str) -> StoreResult<Vec<TokenRow>>;
    /// `user_id`'s token `id` if it is not revoked.
    async fn live(&self, user_id: &str, id: &str) -> StoreResult<Option<TokenRow>>;
    /// Revoke `user_id`'s live token `id`; whether there was one.
    async fn revoke(&self, user_id: &str, id: &str) -> StoreResult<bool>;
    /// Revoke the live token with this hash; its owner, if there was one.
    async fn revoke_by_hash(&self, hash: &str) -> StoreResult<Option<String>>;
    /// Set the scopes of `user_id`'s live token `id`; whether there was one.
    async fn set_scopes(&self, user_id: &str, id: &str, scopes: &Scopes) -> StoreResult<bool>;
}
