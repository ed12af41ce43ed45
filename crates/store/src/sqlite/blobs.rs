//! The blob index, in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use valbox_model::now_ms;

use super::{Sqlite, quota};
use crate::{
    BlobEntry, BlobIndex, BlobRefusal, BlobWrite, MIN_BLOB_CHARGE, Observe, RESERVATION_TTL_MS,
    Reservation, Room, StoreResult,
};

/// What a blob of `n` bytes is charged.
fn charge(n: u64) -> i64 {
    n.max(MIN_BLOB_CHARGE) as i64
}

/// What the key's blob is charged now, if it exists.
fn current_charge(conn: &Connection, owner: &str, key: &str) -> StoreResult<i64> {
    let size: Option<i64> = conn
        .prepare_cached("SELECT size FROM blobs WHERE owner_id = ?1 AND key = ?2")?
        .query_row([owner, key], |r| r.get(0))
        .optional()?;
    Ok(size.map_or(0, |n| charge(n.max(0) as u64)))
}

/// Whether `write` fits the quotas as the owner's blobs and writes in
/// flight are now.
fn check(conn: &Connection, write: &BlobWrite) -> StoreResult<Result<(), BlobRefusal>> {
    let replaced = current_charge(conn, &write.owner_id, &write.key)?;
    let stored = quota::stored(conn, &write.owner_id)?;
    if stored.blobs as i64 - replaced + charge(write.size) > write.blob_quota as i64 {
        return Ok(Err(BlobRefusal::BlobQuota(write.blob_quota)));
    }
    let room = Room {
        adding: charge(write.size) - replaced,
        ..write.room
    };
    if !room.fits(&stored) {
        return Ok(Err(BlobRefusal::Full(stored)));
    }
    Ok(Ok(()))
}

#[async_trait]
impl BlobIndex for Sqlite {
    async fn reserve(&self, write: BlobWrite) -> StoreResult<Result<Reservation, BlobRefusal>> {
        // One connection: the check and the reservation are one step.
        self.run(move |conn| {
            if let Err(refusal) = check(conn, &write)? {
                return Ok(Err(refusal));
            }
            conn.execute(
                "INSERT INTO blob_reservations (owner_id, key, size, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    write.owner_id,
                    write.key,
                    write.size as i64,
                    now_ms() + RESERVATION_TTL_MS
                ],
            )?;
            Ok(Ok(Reservation {
                id: conn.last_insert_rowid(),
                owner_id: write.owner_id,
                key: write.key,
            }))
        })
        .await
    }

    async fn release(&self, reservation: Reservation) -> StoreResult<()> {
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM blob_reservations WHERE id = ?1",
                [reservation.id],
            )?;
            Ok(())
        })
        .await
    }

    async fn stale(&self, owner_id: &str, at_ms: i64) -> StoreResult<Vec<Reservation>> {
        let owner = owner_id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, key FROM blob_reservations WHERE owner_id = ?1 AND expires_at <= ?2",
            )?;
            let rows = stmt.query_map(params![owner, at_ms], |r| {
                Ok(Reservation {
                    id: r.get(0)?,
                    owner_id: owner.clone(),
                    key: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn settle(
        &self,
        owner_id: &str,
        key: &str,
        reservation: Option<Reservation>,
        observe: Observe,
    ) -> StoreResult<Result<(), BlobRefusal>> {
        let _owner = self.owner_locks.lock(owner_id).await;
        let observed = match observe().await {
            Ok(observed) => observed,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let (owner, key) = (owner_id.to_owned(), key.to_owned());
        self.run(move |conn| {
            let tx = conn.transaction()?;
            match observed {
                Some((size, etag)) => tx.execute(
                    "INSERT INTO blobs (owner_id, key, size, last_modified, etag)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (owner_id, key)
                     DO UPDATE SET size = ?3, last_modified = ?4, etag = ?5",
                    params![owner, key, size as i64, now_ms(), etag],
                )?,
                None => tx.execute(
                    "DELETE FROM blobs WHERE owner_id = ?1 AND key = ?2",
                    [&owner, &key],
                )?,
            };
            if let Some(reservation) = reservation {
                tx.execute(
                    "DELETE FROM blob_reservations WHERE id = ?1",
                    [reservation.id],
                )?;
            }
            tx.commit()?;
            Ok(Ok(()))
        })
        .await
    }

    async fn list(&self, owner_id: &str, prefix: &str) -> StoreResult<Vec<BlobEntry>> {
        let (owner, prefix) = (owner_id.to_owned(), prefix.to_owned());
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT key, size, last_modified FROM blobs
                 WHERE owner_id = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
            )?;
            let rows = stmt.query_map([owner, prefix], |r| {
                Ok(BlobEntry {
                    key: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    last_modified_ms: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
