//! Users and the notifications kept for them.

use async_trait::async_trait;

use crate::{NewToken, StoreResult, TokenRow};

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub created_at: i64,
}

/// A message kept for a user (a leaked token revoked, say).
#[derive(Clone, Debug)]
pub struct Notification {
    pub kind: String,
    pub message: String,
    pub created_at: i64,
}

#[async_trait]
pub trait Users: Send + Sync {
    /// A new user, with a first API token; `Conflict` if the name is taken.
    async fn create(
        &self,
        username: &str,
        email: &str,
        token: NewToken,
    ) -> StoreResult<(User, TokenRow)>;
    async fn by_id(&self, id: &str) -> StoreResult<Option<User>>;
    async fn by_name(&self, username: &str) -> StoreResult<Option<User>>;
    async fn notify(&self, user_id: &str, kind: &str, message: &str) -> StoreResult<()>;
    /// A user's notifications, newest first (at most 100).
    async fn notifications(&self, user_id: &str) -> StoreResult<Vec<Notification>>;
}
