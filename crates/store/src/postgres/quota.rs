//! What an owner stores, counted in PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::Postgres;
use crate::{MIN_BLOB_CHARGE, Quota, StoreResult, Stored};

/// `owner`'s stored bytes, in the transaction of the write that asks.
pub(super) async fn stored(c: &impl GenericClient, owner: &str) -> StoreResult<Stored> {
    let row = c
        .query_one(
            "SELECT
               (SELECT coalesce(sum(v.size), 0)::BIGINT FROM versions v
                  JOIN vals ON vals.id = v.val_id WHERE vals.owner_id = $1),
               (SELECT coalesce(sum(greatest(size, $2)), 0)::BIGINT FROM blobs
                  WHERE owner_id = $1)
               -- Writes in flight count as stored until they are settled.
               + (SELECT coalesce(sum(greatest(size, $2)), 0)::BIGINT FROM blob_reservations
                  WHERE owner_id = $1),
               (SELECT coalesce(sum(bytes), 0)::BIGINT FROM call_log_usage WHERE owner_id = $1)",
            &[&owner, &(MIN_BLOB_CHARGE as i64)],
        )
        .await?;
    let bytes = |i: usize| -> StoreResult<u64> { Ok(row.try_get::<_, i64>(i)?.max(0) as u64) };
    Ok(Stored {
        components: bytes(0)?,
        blobs: bytes(1)?,
        logs: bytes(2)?,
    })
}

#[async_trait]
impl Quota for Postgres {
    async fn stored(&self, owner_id: &str) -> StoreResult<Stored> {
        stored(&self.client().await?, owner_id).await
    }
}
