//! The blob index: each owner's blob keys with their sizes and versions
//! (ETags). The bytes live in an object store; the index decides which
//! conditional write wins and what fits the quotas.

use async_trait::async_trait;

use crate::{Room, StoreResult, Stored};

/// A blob as listed.
#[derive(Clone, Debug)]
pub struct BlobEntry {
    pub key: String,
    pub size: u64,
    pub last_modified_ms: i64,
}

/// When a write may go ahead.
#[derive(Clone, Debug)]
pub enum Condition {
    Always,
    /// Only over this version.
    IfMatch(String),
    /// Only where there is no blob.
    IfAbsent,
}

/// A write to index: its size, condition and the room it needs.
#[derive(Clone, Debug)]
pub struct BlobWrite {
    pub owner_id: String,
    pub key: String,
    pub size: u64,
    pub condition: Condition,
    /// The owner's blobs together may be at most this many bytes.
    pub blob_quota: u64,
    /// The owner's storage quota; `adding` is worked out by the index.
    pub room: Room,
}

/// Why a write was not made.
#[derive(Clone, Debug)]
pub enum BlobRefusal {
    /// The condition did not hold: the version now, if there is a blob.
    Conflict(Option<String>),
    /// Past the blob quota.
    BlobQuota(u64),
    /// Past the storage quota: what is stored now.
    Full(Stored),
}

/// Makes the written bytes the blob's (a rename in place), once the index
/// has accepted the write and before it records it.
pub type Publish = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

#[async_trait]
pub trait BlobIndex: Send + Sync {
    /// The blob's version, if it exists.
    async fn version(&self, owner_id: &str, key: &str) -> StoreResult<Option<String>>;
    /// Whether `write` would be accepted now (checked again as it commits).
    async fn check(&self, write: BlobWrite) -> StoreResult<Result<(), BlobRefusal>>;
    /// Check `write`, `publish` it, and record it with a new version,
    /// as one step; the new version.
    async fn commit(
        &self,
        write: BlobWrite,
        publish: Publish,
    ) -> StoreResult<Result<String, BlobRefusal>>;
    /// The owner's blobs whose keys start with `prefix`, by key.
    async fn list(&self, owner_id: &str, prefix: &str) -> StoreResult<Vec<BlobEntry>>;
    async fn delete(&self, owner_id: &str, key: &str) -> StoreResult<()>;
}
