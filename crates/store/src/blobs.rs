//! The blob index: each owner's blob keys with their sizes and versions
//! (the object store's ETags), for listing and for the quotas. The bytes
//! live in the object store, which decides which conditional write wins;
//! the index runs one owner's writes one at a time and records each.

use async_trait::async_trait;
use futures_util::future::BoxFuture;

use crate::{Room, StoreResult, Stored};

/// A blob as listed.
#[derive(Clone, Debug)]
pub struct BlobEntry {
    pub key: String,
    pub size: u64,
    pub last_modified_ms: i64,
}

/// A write to index: its size and the room it needs.
#[derive(Clone, Debug)]
pub struct BlobWrite {
    pub owner_id: String,
    pub key: String,
    pub size: u64,
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
    /// The object store could not be reached (what it said).
    Unavailable(String),
}

/// Puts the written bytes in place in the object store, once the index
/// has accepted the write and before it records it; the new version.
pub type Publish = Box<dyn FnOnce() -> BoxFuture<'static, Result<String, BlobRefusal>> + Send>;

/// Removes the blob's bytes from the object store, before its entry goes.
pub type Unpublish = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), BlobRefusal>> + Send>;

#[async_trait]
pub trait BlobIndex: Send + Sync {
    /// The blob's version, if it exists.
    async fn version(&self, owner_id: &str, key: &str) -> StoreResult<Option<String>>;
    /// Whether `write` fits the quotas now (checked again as it commits).
    async fn check(&self, write: BlobWrite) -> StoreResult<Result<(), BlobRefusal>>;
    /// Check `write`, `publish` it, and record it at the version the
    /// object store gave, as one step of the owner's; that version.
    async fn commit(
        &self,
        write: BlobWrite,
        publish: Publish,
    ) -> StoreResult<Result<String, BlobRefusal>>;
    /// The owner's blobs whose keys start with `prefix`, by key.
    async fn list(&self, owner_id: &str, prefix: &str) -> StoreResult<Vec<BlobEntry>>;
    /// `unpublish` the blob and forget it, as one step of the owner's.
    async fn delete(
        &self,
        owner_id: &str,
        key: &str,
        unpublish: Unpublish,
    ) -> StoreResult<Result<(), BlobRefusal>>;
}
