//! One quota over everything an owner stores: the components of every
//! version, blobs, the SQLite database and call logs. Each has its own
//! bound too; this one stops an owner (or strangers calling their vals)
//! from filling the disk by spreading over all of them. Writes that add
//! much (a deploy, a blob) check it first and are refused whole; the
//! metadata store checks it again in the write's own transaction.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::sqlite::database_bytes;
use crate::CapsConfig;
use valbox_store::{Homes, Quota, Room, Store, StoreResult, Stored};

/// What an owner stores, in bytes, against their quota.
#[derive(Clone, Copy, Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageUsage {
    pub components: u64,
    pub blobs: u64,
    pub sqlite: u64,
    pub logs: u64,
    pub total: u64,
    pub quota: u64,
}

/// Measures owners' storage.
#[derive(Clone)]
pub struct StorageMeter {
    quota: u64,
    sqlite_root: PathBuf,
    store: Arc<dyn Quota>,
    homes: Arc<dyn Homes>,
}

impl StorageMeter {
    pub fn new(config: &CapsConfig, store: &Store) -> Self {
        Self {
            quota: config.storage_quota_bytes,
            sqlite_root: config.data_dir.join("sqlite"),
            store: store.quota.clone(),
            homes: store.homes.clone(),
        }
    }

    /// The size of `owner`'s SQLite database (its file and write-ahead
    /// log), which the metadata store does not count: what is here, or in
    /// a cluster what its home node last recorded, whichever is larger.
    async fn sqlite_bytes(&self, owner: &str) -> u64 {
        let here = database_bytes(&self.sqlite_root, owner).await;
        // Unknown is not nothing: the file here still counts.
        let recorded = self.homes.size(owner).await.unwrap_or(0);
        here.max(recorded)
    }

    /// `owner`'s storage now.
    pub async fn usage(&self, owner: &str) -> StoreResult<StorageUsage> {
        let stored = self.store.stored(owner).await?;
        Ok(self.usage_of(&stored, self.sqlite_bytes(owner).await))
    }

    fn usage_of(&self, stored: &Stored, sqlite: u64) -> StorageUsage {
        StorageUsage {
            components: stored.components,
            blobs: stored.blobs,
            sqlite,
            logs: stored.logs,
            total: stored.total() + sqlite,
            quota: self.quota,
        }
    }

    /// The room a write of `adding` bytes (net of what it replaces) needs,
    /// for the store to check as it writes.
    pub async fn room(&self, owner: &str, adding: i64) -> Room {
        Room {
            quota: self.quota,
            outside: self.sqlite_bytes(owner).await,
            adding,
        }
    }

    /// Whether `owner` may store `adding` more bytes now; if not, what to
    /// tell them.
    pub async fn room_for(&self, owner: &str, adding: i64) -> StoreResult<Result<(), String>> {
        let room = self.room(owner, adding).await;
        let stored = self.store.stored(owner).await?;
        Ok(if room.fits(&stored) {
            Ok(())
        } else {
            Err(self.refusal(&room, &stored))
        })
    }

    /// What to tell an owner whose write of `room` did not fit beside
    /// `stored`.
    pub fn refusal(&self, room: &Room, stored: &Stored) -> String {
        let usage = self.usage_of(stored, room.outside);
        format!(
            "this would take your storage past its quota of {} bytes: {} are used \
             (components {}, blobs {}, SQLite {}, logs {}) and this adds {}; \
             delete vals, blobs or rows you no longer need (GET /v1/me shows the figures)",
            self.quota,
            usage.total,
            usage.components,
            usage.blobs,
            usage.sqlite,
            usage.logs,
            room.adding
        )
    }
}
