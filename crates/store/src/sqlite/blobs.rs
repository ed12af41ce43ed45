//! The blob index, in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use valbox_model::now_ms;

use super::{Sqlite, quota};
use crate::{
    BlobEntry, BlobIndex, BlobRefusal, BlobWrite, MIN_BLOB_CHARGE, Publish, Room, StoreResult,
    Unpublish,
};

/// What a blob of `n` bytes is charged.
fn charge(n: u64) -> i64 {
    n.max(MIN_BLOB_CHARGE) as i64
}

/// The version and size of a blob, if it exists.
fn current(conn: &Connection, owner: &str, key: &str) -> StoreResult<Option<(String, u64)>> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(etag, ''), size FROM blobs WHERE owner_id = ?1 AND key = ?2",
        )?
        .query_row([owner, key], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })
        .optional()?)
}

/// Whether `write` fits the quotas as the owner's blobs are now.
fn check(conn: &Connection, write: &BlobWrite) -> StoreResult<Result<(), BlobRefusal>> {
    let (owner, key) = (&write.owner_id, &write.key);
    let now = current(conn, owner, key)?;
    let others: i64 = conn.query_row(
        "SELECT COALESCE(SUM(MAX(size, ?3)), 0) FROM blobs WHERE owner_id = ?1 AND key != ?2",
        params![owner, key, MIN_BLOB_CHARGE as i64],
        |r| r.get(0),
    )?;
    if others + charge(write.size) > write.blob_quota as i64 {
        return Ok(Err(BlobRefusal::BlobQuota(write.blob_quota)));
    }
    let room = Room {
        adding: charge(write.size) - now.map_or(0, |(_, size)| charge(size)),
        ..write.room
    };
    let stored = quota::stored(conn, owner)?;
    if !room.fits(&stored) {
        return Ok(Err(BlobRefusal::Full(stored)));
    }
    Ok(Ok(()))
}

#[async_trait]
impl BlobIndex for Sqlite {
    async fn version(&self, owner_id: &str, key: &str) -> StoreResult<Option<String>> {
        let (owner, key) = (owner_id.to_owned(), key.to_owned());
        self.run(move |conn| Ok(current(conn, &owner, &key)?.map(|(v, _)| v)))
            .await
    }

    async fn check(&self, write: BlobWrite) -> StoreResult<Result<(), BlobRefusal>> {
        self.run(move |conn| check(conn, &write)).await
    }

    async fn commit(
        &self,
        write: BlobWrite,
        publish: Publish,
    ) -> StoreResult<Result<String, BlobRefusal>> {
        let _owner = self.quota_locks.lock(&write.owner_id).await;
        let checked = write.clone();
        if let Err(refusal) = self.run(move |conn| check(conn, &checked)).await? {
            return Ok(Err(refusal));
        }
        let version = match publish().await {
            Ok(version) => version,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let recorded = version.clone();
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO blobs (owner_id, key, size, last_modified, etag)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (owner_id, key) DO UPDATE SET size = ?3, last_modified = ?4, etag = ?5",
                params![write.owner_id, write.key, write.size as i64, now_ms(), recorded],
            )?;
            Ok(())
        })
        .await?;
        Ok(Ok(version))
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

    async fn delete(
        &self,
        owner_id: &str,
        key: &str,
        unpublish: Unpublish,
    ) -> StoreResult<Result<(), BlobRefusal>> {
        let _owner = self.quota_locks.lock(owner_id).await;
        if let Err(refusal) = unpublish().await {
            return Ok(Err(refusal));
        }
        let (owner, key) = (owner_id.to_owned(), key.to_owned());
        self.run(move |conn| {
            conn.execute(
                "DELETE FROM blobs WHERE owner_id = ?1 AND key = ?2",
                [owner, key],
            )?;
            Ok(Ok(()))
        })
        .await
    }
}
