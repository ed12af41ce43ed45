//! What an owner stores, counted in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, ToSql};

use super::Sqlite;
use crate::{MIN_BLOB_CHARGE, Quota, StoreResult, Stored};

/// `owner`'s stored bytes, in the transaction of the write that asks.
pub(super) fn stored(conn: &Connection, owner: &str) -> StoreResult<Stored> {
    let sum = |sql: &str, params: &[&dyn ToSql]| -> StoreResult<u64> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row(params, |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)?)
    };
    Ok(Stored {
        components: sum(
            "SELECT coalesce(sum(v.size), 0) FROM versions v
             JOIN vals ON vals.id = v.val_id WHERE vals.owner_id = ?1",
            &[&owner],
        )?,
        // Writes in flight count as stored until they are settled.
        blobs: sum(
            "SELECT (SELECT coalesce(sum(max(size, ?2)), 0) FROM blobs WHERE owner_id = ?1)
                  + (SELECT coalesce(sum(max(size, ?2)), 0) FROM blob_reservations
                       WHERE owner_id = ?1)",
            &[&owner, &(MIN_BLOB_CHARGE as i64)],
        )?,
        logs: sum(
            "SELECT coalesce(sum(bytes), 0) FROM call_log_usage WHERE owner_id = ?1",
            &[&owner],
        )?,
    })
}

#[async_trait]
impl Quota for Sqlite {
    async fn stored(&self, owner_id: &str) -> StoreResult<Stored> {
        let owner = owner_id.to_owned();
        self.run(move |conn| stored(conn, &owner)).await
    }
}
