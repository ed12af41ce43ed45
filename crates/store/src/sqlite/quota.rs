//! What an owner stores, counted in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, ToSql};

use super::Sqlite;
use valbox_model::now_ms;

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
        // Writes in flight count as stored until they settle or expire.
        blobs: sum(
            "SELECT (SELECT coalesce(sum(max(size, ?2)), 0) FROM blobs WHERE owner_id = ?1)
                  + (SELECT coalesce(sum(max(size, ?2)), 0) FROM blob_reservations
                       WHERE owner_id = ?1 AND expires_at > ?3)",
            &[&owner, &(MIN_BLOB_CHARGE as i64), &now_ms()],
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

/// One lock per stripe of owners, held while a blob write or delete asks
/// the object store what it now holds and records it: of two such
/// settles, the later records the newer state. (Quota checks need no
/// lock: they run on the one connection, each in one step.)
pub(super) struct QuotaLocks([tokio::sync::Mutex<()>; 64]);

impl QuotaLocks {
    pub(super) fn new() -> Self {
        Self(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }

    pub(super) async fn lock(&self, owner: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(owner);
        self.0[hash as usize % self.0.len()].lock().await
    }
}
