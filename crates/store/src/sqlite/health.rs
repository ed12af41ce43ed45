//! The store's health, in SQLite.

use async_trait::async_trait;

use super::Sqlite;
use crate::{Health, StoreResult};

#[async_trait]
impl Health for Sqlite {
    async fn ping(&self) -> StoreResult<()> {
        self.run(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    /// SQLite's `data_version`: it changes when another connection (the
    /// CLI's) commits.
    async fn outside_writes(&self) -> StoreResult<i64> {
        self.run(|conn| Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?))
            .await
    }
}
