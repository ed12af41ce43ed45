//! The web UI's sign-in links and sessions. Only SHA-256 hashes of their
//! secrets are stored, as for API tokens.

use async_trait::async_trait;

use crate::StoreResult;

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// A session to open: hashes and times, no secrets.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub hash: String,
    pub csrf: String,
    pub expires_at: i64,
}

#[async_trait]
pub trait Sessions: Send + Sync {
    /// Store a sign-in link for `user_id`, valid until `expires_at`.
    async fn add_link(&self, user_id: &str, hash: &str, expires_at: i64) -> StoreResult<()>;
    /// [`Sessions::add_link`], unless `max` links were made for the user
    /// since `since` (ms), counted across every node; whether it was.
    async fn add_link_within(
        &self,
        user_id: &str,
        hash: &str,
        expires_at: i64,
        max: u32,
        since: i64,
    ) -> StoreResult<bool>;
    /// Use the link with hash `link` (used either way from now on) and, if
    /// it was unused and unexpired, open `session` for its user.
    async fn sign_in(&self, link: &str, session: NewSession) -> StoreResult<Option<SessionRow>>;
    async fn by_hash(&self, hash: &str) -> StoreResult<Option<SessionRow>>;
    /// Record activity now.
    async fn touch(&self, id: &str) -> StoreResult<()>;
    /// `user_id`'s live sessions, newest first.
    async fn list(&self, user_id: &str) -> StoreResult<Vec<SessionRow>>;
    /// End `user_id`'s session `id` (every one with `None`); how many ended.
    async fn revoke(&self, user_id: &str, id: Option<&str>) -> StoreResult<usize>;
}
