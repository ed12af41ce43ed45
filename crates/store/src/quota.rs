//! What an owner stores in the metadata store's keeping, for the one
//! storage quota over everything they store (`caps::storage`).

use async_trait::async_trait;

use crate::StoreResult;

/// Bytes an owner stores, by kind, as the metadata store counts them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stored {
    /// The components of every version of every val.
    pub components: u64,
    /// Blobs, each charged at least [`MIN_BLOB_CHARGE`].
    pub blobs: u64,
    /// Call log records.
    pub logs: u64,
}

impl Stored {
    pub fn total(&self) -> u64 {
        self.components + self.blobs + self.logs
    }
}

/// Each blob is charged at least a disk block.
pub const MIN_BLOB_CHARGE: u64 = 4096;

/// The room a write must find, checked in the same transaction as the
/// write: `adding` bytes (net of what it replaces) must fit under `quota`
/// with what is stored and `outside` bytes the store does not count (the
/// owner's SQLite file).
#[derive(Clone, Copy, Debug)]
pub struct Room {
    pub quota: u64,
    pub outside: u64,
    pub adding: i64,
}

impl Room {
    /// Whether the write fits beside `stored`.
    pub fn fits(&self, stored: &Stored) -> bool {
        self.adding <= 0
            || (stored.total() + self.outside).saturating_add(self.adding as u64) <= self.quota
    }
}

#[async_trait]
pub trait Quota: Send + Sync {
    async fn stored(&self, owner_id: &str) -> StoreResult<Stored>;
}
