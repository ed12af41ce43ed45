//! The blob index, in PostgreSQL. Reserving and settling take the
//! owner's advisory lock (the one deploys take), so the quotas hold across
//! nodes and of two settles the later records the newer state.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use valbox_model::now_ms;

use super::{Postgres, lock_quota, quota};
use crate::{
    BlobEntry, BlobIndex, BlobRefusal, BlobWrite, MIN_BLOB_CHARGE, Observe, RESERVATION_TTL_MS,
    Reservation, Room, StoreResult,
};

fn charge(n: u64) -> i64 {
    n.max(MIN_BLOB_CHARGE) as i64
}

/// What the key's blob is charged now, if it exists.
async fn current_charge(c: &impl GenericClient, owner: &str, key: &str) -> StoreResult<i64> {
    let row = c
        .query_opt(
            "SELECT size FROM blobs WHERE owner_id = $1 AND key = $2",
            &[&owner, &key],
        )
        .await?;
    let size = row.map(|r| r.try_get::<_, i64>(0)).transpose()?;
    Ok(size.map_or(0, |n| charge(n.max(0) as u64)))
}

/// Whether `write` fits the quotas as the owner's blobs and writes in
/// flight are now.
async fn check(c: &impl GenericClient, write: &BlobWrite) -> StoreResult<Result<(), BlobRefusal>> {
    let replaced = current_charge(c, &write.owner_id, &write.key).await?;
    let stored = quota::stored(c, &write.owner_id).await?;
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
impl BlobIndex for Postgres {
    async fn reserve(&self, write: BlobWrite) -> StoreResult<Result<Reservation, BlobRefusal>> {
        let _owner = self.owner_locks.lock(&write.owner_id).await;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_quota(&tx, &write.owner_id).await?;
        if let Err(refusal) = check(&tx, &write).await? {
            return Ok(Err(refusal));
        }
        let row = tx
            .query_one(
                "INSERT INTO blob_reservations (owner_id, key, size, expires_at)
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[
                    &write.owner_id,
                    &write.key,
                    &(write.size as i64),
                    &(now_ms() + RESERVATION_TTL_MS),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(Ok(Reservation {
            id: row.try_get(0)?,
            owner_id: write.owner_id,
            key: write.key,
        }))
    }

    async fn release(&self, reservation: Reservation) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "DELETE FROM blob_reservations WHERE id = $1",
                &[&reservation.id],
            )
            .await?;
        Ok(())
    }

    async fn stale(&self, owner_id: &str, at_ms: i64) -> StoreResult<Vec<Reservation>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, key FROM blob_reservations WHERE owner_id = $1 AND expires_at <= $2",
                &[&owner_id, &at_ms],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Reservation {
                    id: r.try_get(0)?,
                    owner_id: owner_id.to_owned(),
                    key: r.try_get(1)?,
                })
            })
            .collect()
    }

    async fn settle(
        &self,
        owner_id: &str,
        key: &str,
        reservation: Option<Reservation>,
        observe: Observe,
    ) -> StoreResult<Result<(), BlobRefusal>> {
        let _owner = self.owner_locks.lock(owner_id).await;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_quota(&tx, owner_id).await?;
        let observed = match observe().await {
            Ok(observed) => observed,
            Err(refusal) => return Ok(Err(refusal)),
        };
        match observed {
            Some((size, etag)) => {
                tx.execute(
                    "INSERT INTO blobs (owner_id, key, size, last_modified, etag)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (owner_id, key)
                     DO UPDATE SET size = $3, last_modified = $4, etag = $5",
                    &[&owner_id, &key, &(size as i64), &now_ms(), &etag],
                )
                .await?
            }
            None => {
                tx.execute(
                    "DELETE FROM blobs WHERE owner_id = $1 AND key = $2",
                    &[&owner_id, &key],
                )
                .await?
            }
        };
        if let Some(reservation) = reservation {
            tx.execute(
                "DELETE FROM blob_reservations WHERE id = $1",
                &[&reservation.id],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    async fn list(&self, owner_id: &str, prefix: &str) -> StoreResult<Vec<BlobEntry>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT key, size, last_modified FROM blobs
                 WHERE owner_id = $1 AND starts_with(key, $2) ORDER BY key COLLATE \"C\"",
                &[&owner_id, &prefix],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(BlobEntry {
                    key: r.try_get(0)?,
                    size: r.try_get::<_, i64>(1)?.max(0) as u64,
                    last_modified_ms: r.try_get(2)?,
                })
            })
            .collect()
    }
}
