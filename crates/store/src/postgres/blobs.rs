//! The blob index, in PostgreSQL. One owner's writes go one at a time
//! (an advisory lock per owner, the same one deploys take), so the quotas
//! hold across nodes and the index records writes in the order the object
//! store made them.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use valbox_model::now_ms;

use super::{Postgres, lock_quota, quota};
use crate::{
    BlobEntry, BlobIndex, BlobRefusal, BlobWrite, MIN_BLOB_CHARGE, Publish, Room, StoreResult,
    Unpublish,
};

fn charge(n: u64) -> i64 {
    n.max(MIN_BLOB_CHARGE) as i64
}

async fn current(
    c: &impl GenericClient,
    owner: &str,
    key: &str,
) -> StoreResult<Option<(String, u64)>> {
    let row = c
        .query_opt(
            "SELECT etag, size FROM blobs WHERE owner_id = $1 AND key = $2",
            &[&owner, &key],
        )
        .await?;
    row.map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)?.max(0) as u64)))
        .transpose()
}

async fn check(c: &impl GenericClient, write: &BlobWrite) -> StoreResult<Result<(), BlobRefusal>> {
    let (owner, key) = (&write.owner_id, &write.key);
    let now = current(c, owner, key).await?;
    let others: i64 = c
        .query_one(
            "SELECT coalesce(sum(greatest(size, $3)), 0)::BIGINT FROM blobs
             WHERE owner_id = $1 AND key != $2",
            &[owner, key, &(MIN_BLOB_CHARGE as i64)],
        )
        .await?
        .try_get(0)?;
    if others + charge(write.size) > write.blob_quota as i64 {
        return Ok(Err(BlobRefusal::BlobQuota(write.blob_quota)));
    }
    let room = Room {
        adding: charge(write.size) - now.map_or(0, |(_, size)| charge(size)),
        ..write.room
    };
    let stored = quota::stored(c, owner).await?;
    if !room.fits(&stored) {
        return Ok(Err(BlobRefusal::Full(stored)));
    }
    Ok(Ok(()))
}

#[async_trait]
impl BlobIndex for Postgres {
    async fn version(&self, owner_id: &str, key: &str) -> StoreResult<Option<String>> {
        let now = current(&self.client().await?, owner_id, key).await?;
        Ok(now.map(|(v, _)| v))
    }

    async fn check(&self, write: BlobWrite) -> StoreResult<Result<(), BlobRefusal>> {
        check(&self.client().await?, &write).await
    }

    async fn commit(
        &self,
        write: BlobWrite,
        publish: Publish,
    ) -> StoreResult<Result<String, BlobRefusal>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_quota(&tx, &write.owner_id).await?;
        if let Err(refusal) = check(&tx, &write).await? {
            return Ok(Err(refusal));
        }
        let version = match publish().await {
            Ok(version) => version,
            Err(refusal) => return Ok(Err(refusal)),
        };
        tx.execute(
            "INSERT INTO blobs (owner_id, key, size, last_modified, etag)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (owner_id, key) DO UPDATE SET size = $3, last_modified = $4, etag = $5",
            &[
                &write.owner_id,
                &write.key,
                &(write.size as i64),
                &now_ms(),
                &version,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(version))
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

    async fn delete(
        &self,
        owner_id: &str,
        key: &str,
        unpublish: Unpublish,
    ) -> StoreResult<Result<(), BlobRefusal>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_quota(&tx, owner_id).await?;
        if let Err(refusal) = unpublish().await {
            return Ok(Err(refusal));
        }
        tx.execute(
            "DELETE FROM blobs WHERE owner_id = $1 AND key = $2",
            &[&owner_id, &key],
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
}
