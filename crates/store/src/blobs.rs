//! The blob index: each owner's blob keys with their sizes and versions
//! (the object store's ETags), for listing and for the quotas. The bytes
//! live in the object store, which decides which conditional write wins;
//! the index holds room for writes in flight and records what was made.

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
    /// Past the blob quota.
    BlobQuota(u64),
    /// Past the storage quota: what is stored now.
    Full(Stored),
    /// The object store could not be reached (what it said).
    Unavailable(String),
}

/// Room held for a write in flight, counted against the owner's quotas
/// until the write is settled or released. A write whose writer vanished
/// (a node died, a task was lost) is settled by the owner's next write
/// once its reservation is stale: the object may have landed, so its room
/// is never simply dropped.
#[derive(Clone, Debug)]
pub struct Reservation {
    pub id: i64,
    pub owner_id: String,
    pub key: String,
}

/// When a reservation is stale: longer than any write to the object store
/// may take.
pub const RESERVATION_TTL_MS: i64 = 120_000;

/// Asks the object store what it holds for a key now: its size and
/// version, or `None`.
pub type Observe =
    Box<dyn FnOnce() -> BoxFuture<'static, Result<Option<(u64, String)>, BlobRefusal>> + Send>;

/// A write takes three steps, so that no lock is held while bytes travel
/// to the object store (which decides which conditional write wins):
/// `reserve` room under the owner's quota lock, write the object, then
/// `settle` (made) or `release` (not made).
#[async_trait]
pub trait BlobIndex: Send + Sync {
    /// Hold room for `write` if it fits the quotas, counting the writes in
    /// flight; otherwise why it does not.
    async fn reserve(&self, write: BlobWrite) -> StoreResult<Result<Reservation, BlobRefusal>>;
    /// Give back the room of a write that was not made.
    async fn release(&self, reservation: Reservation) -> StoreResult<()>;
    /// The owner's reservations older than [`RESERVATION_TTL_MS`] at
    /// `at_ms` (now, but for tests), whose writers are gone: each is to be
    /// settled.
    async fn stale(&self, owner_id: &str, at_ms: i64) -> StoreResult<Vec<Reservation>>;
    /// Record the key as the object store holds it now, then give back
    /// `reservation`. `observe` runs under the owner's quota lock, so that
    /// of two settles racing, the later one records the newer state.
    async fn settle(
        &self,
        owner_id: &str,
        key: &str,
        reservation: Option<Reservation>,
        observe: Observe,
    ) -> StoreResult<Result<(), BlobRefusal>>;
    /// The owner's blobs whose keys start with `prefix`, by key.
    async fn list(&self, owner_id: &str, prefix: &str) -> StoreResult<Vec<BlobEntry>>;
}
