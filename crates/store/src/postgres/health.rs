//! The store's health, in PostgreSQL.

use async_trait::async_trait;

use super::Postgres;
use crate::{Health, StoreResult};

#[async_trait]
impl Health for Postgres {
    async fn ping(&self) -> StoreResult<()> {
        self.client().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    /// Nothing to watch here: other nodes' changes arrive by notification.
    async fn outside_writes(&self) -> StoreResult<i64> {
        Ok(0)
    }
}
