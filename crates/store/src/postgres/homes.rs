//! Database homes in PostgreSQL: a claim is one upsert that takes the row
//! when its lease has run out, or renews it (with the claimant's address)
//! when the claimant holds it, on the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::Postgres;
use crate::{Home, Homes, Node, StoreResult};

/// The database's clock, in milliseconds.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::BIGINT";

async fn home(c: &impl GenericClient, owner: &str) -> StoreResult<Home> {
    let row = c
        .query_one(
            &format!(
                "SELECT node_id, address, fencing, greatest(expires_at - {NOW_MS}, 0), replica, served_by, size
                 FROM database_homes WHERE owner_id = $1"
            ),
            &[&owner],
        )
        .await?;
    Ok(Home {
        node: Node {
            id: row.try_get(0)?,
            address: row.try_get(1)?,
        },
        fencing: row.try_get(2)?,
        remaining: Duration::from_millis(row.try_get::<_, i64>(3)? as u64),
        replica: row.try_get(4)?,
        served_by: row.try_get(5)?,
        size: row.try_get::<_, i64>(6)?.max(0) as u64,
    })
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

#[async_trait]
impl Homes for Postgres {
    async fn claim(&self, owner_id: &str, node: &Node, ttl: Duration) -> StoreResult<Home> {
        let client = self.client().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO database_homes AS h (owner_id, node_id, address, fencing, expires_at)
                     VALUES ($1, $2, $3, 1, {NOW_MS} + $4)
                     ON CONFLICT (owner_id) DO UPDATE
                     SET node_id = $2, address = $3, expires_at = {NOW_MS} + $4,
                         fencing = CASE WHEN h.node_id = $2 AND h.expires_at > {NOW_MS}
                                   THEN h.fencing ELSE h.fencing + 1 END
                     WHERE h.expires_at <= {NOW_MS} OR h.node_id = $2"
                ),
                &[&owner_id, &node.id, &node.address, &ms(ttl)],
            )
            .await?;
        home(&client, owner_id).await
    }

    async fn renew(&self, node_id: &str, ttl: Duration) -> StoreResult<Vec<(String, i64)>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "UPDATE database_homes SET expires_at = {NOW_MS} + $2
                     WHERE node_id = $1 AND expires_at > {NOW_MS}
                     RETURNING owner_id, fencing"
                ),
                &[&node_id, &ms(ttl)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn release(&self, owner_id: &str, node_id: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE database_homes SET expires_at = 0 WHERE owner_id = $1 AND node_id = $2",
                &[&owner_id, &node_id],
            )
            .await?;
        Ok(())
    }

    async fn record_size(&self, owner_id: &str, node_id: &str, bytes: u64) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE database_homes SET size = $3 WHERE owner_id = $1 AND node_id = $2",
                &[&owner_id, &node_id, &(bytes as i64)],
            )
            .await?;
        Ok(())
    }

    async fn record_serving(&self, owner_id: &str, node_id: &str, fencing: i64) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE database_homes SET served_by = $2
                 WHERE owner_id = $1 AND node_id = $2 AND fencing = $3",
                &[&owner_id, &node_id, &fencing],
            )
            .await?;
        Ok(())
    }

    async fn record_replica(
        &self,
        owner_id: &str,
        node_id: &str,
        fencing: i64,
        replica: &str,
    ) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE database_homes SET replica = $4
                 WHERE owner_id = $1 AND node_id = $2 AND fencing = $3",
                &[&owner_id, &node_id, &fencing, &replica],
            )
            .await?;
        Ok(())
    }

    async fn last_served_by(&self, node_id: &str) -> StoreResult<Vec<String>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT owner_id FROM database_homes WHERE served_by = $1",
                &[&node_id],
            )
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    async fn size(&self, owner_id: &str) -> StoreResult<u64> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT size FROM database_homes WHERE owner_id = $1",
                &[&owner_id],
            )
            .await?;
        let size = row.map(|r| r.try_get::<_, i64>(0)).transpose()?;
        Ok(size.unwrap_or(0).max(0) as u64)
    }
}
