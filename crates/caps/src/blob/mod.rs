//! Blob storage: each owner's key-value files. The service checks
//! `blob:read` / `blob:write` for whoever asks (a REST caller or a val's
//! call) and runs the operation in the owner's namespace; `host` is its
//! WIT import. The bytes are objects (files, or S3) named by owner and a
//! hash of the key; the metadata store keeps the index.

mod error;
mod host;

pub use error::{BlobError, MAX_KEY_BYTES};
pub use valbox_objects::Condition;
pub use valbox_store::BlobEntry;

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::Linker;

use super::storage::StorageMeter;
use super::{Capability, Ctx, HasCap, Settings};
use error::validate_key;
use valbox_model::{Holder, Scope, now_ms};
use valbox_objects::{ObjectKey, Objects, Written};
use valbox_store::{BlobIndex, BlobRefusal, BlobWrite, Observe, Reservation, Room};

/// What the blob capability is configured with.
#[derive(Clone, Debug)]
pub struct BlobSettings {
    /// The largest blob, in bytes.
    pub max_bytes: usize,
    /// All of one owner's blobs together.
    pub quota_bytes: u64,
    /// Where the bytes are: files in the data directory, or S3.
    pub objects: Arc<dyn Objects>,
}

/// The blob service: the bytes in the object store, the index in the
/// metadata store.
pub struct Blob {
    pub index: Arc<dyn BlobIndex>,
    pub objects: Arc<dyn Objects>,
    pub max_bytes: usize,
    pub quota_bytes: u64,
    pub meter: StorageMeter,
}

impl Blob {
    /// The largest blob, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The blob's value and version, or `None`: one read of the object,
    /// which carries its own version.
    pub async fn get(
        &self,
        who: &mut impl Holder,
        key: String,
    ) -> Result<Option<(Vec<u8>, String)>, BlobError> {
        who.check(Scope::BlobRead)?;
        validate_key(&key)?;
        let object = self
            .objects
            .get(&ObjectKey::blob(who.owner_id(), &key))
            .await?;
        Ok(object.map(|o| (o.bytes.into(), o.version)))
    }

    /// Store `value` if `condition` holds; returns the new version. Room
    /// is reserved first, then the object store decides the condition,
    /// then the index records what it holds: no lock is held while the
    /// bytes travel, so a large or slow write holds up no other.
    pub async fn set(
        &self,
        who: &mut impl Holder,
        key: String,
        value: Vec<u8>,
        condition: Condition,
    ) -> Result<String, BlobError> {
        who.check(Scope::BlobWrite)?;
        validate_key(&key)?;
        if value.len() > self.max_bytes {
            return Err(BlobError::TooLarge(self.max_bytes));
        }
        let owner = who.owner_id().to_string();
        let object = ObjectKey::blob(&owner, &key);
        if let Condition::IfMatch(version) = &condition
            && !could_be_a_version(version)
        {
            // No object has it; the store would refuse the header instead.
            let now = self.objects.head(&object).await?;
            return Err(BlobError::Conflict(now.map(|h| h.version)));
        }
        let index = self.indexer();
        index.settle_stale(&owner, now_ms()).await?;
        let write = BlobWrite {
            owner_id: owner.clone(),
            key: key.clone(),
            size: value.len() as u64,
            blob_quota: self.quota_bytes,
            room: self.meter.room(&owner, 0).await,
        };
        let room = write.room;
        let reservation = match self.index.reserve(write).await? {
            Ok(reservation) => reservation,
            Err(refusal) => return Err(self.refused(refusal, &room)),
        };
        // Run to the end whatever the caller does: a val stopped at its
        // deadline or a client that hangs up must not leave a write that
        // landed unrecorded.
        let objects = self.objects.clone();
        let finished = tokio::spawn(async move {
            let written = match objects.stage(&object, Bytes::from(value)).await {
                Ok(staged) => staged.publish(condition).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(Written::Done(version)) => {
                    index.settle(&owner, &key, Some(reservation)).await?;
                    Ok(version)
                }
                Ok(Written::Conflict(now)) => {
                    index.index.release(reservation).await?;
                    Err(BlobError::Conflict(now))
                }
                // It may have landed before the store failed: record what
                // the store holds, if it answers now; if not, the
                // reservation goes stale and the owner's next write settles
                // it.
                Err(e) => {
                    let _ = index.settle(&owner, &key, Some(reservation)).await;
                    Err(BlobError::from(e))
                }
            }
        });
        finished
            .await
            .map_err(|e| BlobError::Internal(e.to_string()))?
    }

    /// The index with the store it follows, for a task of its own.
    fn indexer(&self) -> Index {
        Index {
            index: self.index.clone(),
            objects: self.objects.clone(),
        }
    }

    fn refused(&self, refusal: BlobRefusal, room: &Room) -> BlobError {
        match refusal {
            BlobRefusal::BlobQuota(n) => BlobError::Quota(n),
            BlobRefusal::Full(stored) => BlobError::Storage(self.meter.refusal(room, &stored)),
            BlobRefusal::Unavailable(m) => BlobError::Unavailable(m),
        }
    }

    pub async fn list(
        &self,
        who: &mut impl Holder,
        prefix: String,
    ) -> Result<Vec<BlobEntry>, BlobError> {
        who.check(Scope::BlobRead)?;
        Ok(self.index.list(who.owner_id(), &prefix).await?)
    }

    pub async fn delete(&self, who: &mut impl Holder, key: String) -> Result<(), BlobError> {
        who.check(Scope::BlobWrite)?;
        validate_key(&key)?;
        let owner = who.owner_id().to_string();
        let index = self.indexer();
        // As a write: the index follows the object even if the caller
        // stops waiting.
        let finished = tokio::spawn(async move {
            index.objects.delete(&ObjectKey::blob(&owner, &key)).await?;
            index.settle(&owner, &key, None).await
        });
        finished
            .await
            .map_err(|e| BlobError::Internal(e.to_string()))?
    }
}

/// The index and the store it follows.
struct Index {
    index: Arc<dyn BlobIndex>,
    objects: Arc<dyn Objects>,
}

impl Index {
    /// Record in the index what the object store holds for `key` now.
    async fn settle(
        &self,
        owner: &str,
        key: &str,
        reservation: Option<Reservation>,
    ) -> Result<(), BlobError> {
        let (objects, object) = (self.objects.clone(), ObjectKey::blob(owner, key));
        let observe: Observe = Box::new(move || {
            Box::pin(async move {
                let head = objects.head(&object).await;
                let head = head.map_err(|e| BlobRefusal::Unavailable(e.0))?;
                Ok(head.map(|h| (h.size, h.version)))
            })
        });
        match self.index.settle(owner, key, reservation, observe).await? {
            Ok(()) => Ok(()),
            Err(BlobRefusal::Unavailable(m)) => Err(BlobError::Unavailable(m)),
            Err(other) => Err(BlobError::Internal(format!("{other:?}"))),
        }
    }

    /// Settle the owner's writes whose writers vanished mid-way (a node
    /// that died), as of `at_ms`: their objects may have landed, and must
    /// be counted.
    async fn settle_stale(&self, owner: &str, at_ms: i64) -> Result<(), BlobError> {
        for reservation in self.index.stale(owner, at_ms).await? {
            let key = reservation.key.clone();
            self.settle(owner, &key, Some(reservation)).await?;
        }
        Ok(())
    }
}

/// Whether `version` has the shape of a version an object store gives
/// (hex digests, `-` in a multipart ETag): anything else matches nothing.
fn could_be_a_version(version: &str) -> bool {
    (1..=128).contains(&version.len())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Capability for Blob {
    type Call = ();

    fn open(s: &Settings) -> anyhow::Result<Self> {
        let settings = &s.config.blob;
        Ok(Self {
            index: s.store.blobs.clone(),
            objects: settings.objects.clone(),
            max_bytes: settings.max_bytes,
            quota_bytes: settings.quota_bytes,
            meter: StorageMeter::new(s.config, s.store),
        })
    }

    fn link<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> Ctx<'_, Self>,
    ) -> wasmtime::Result<()> {
        valbox_runtime::bindings::blob::add_to_linker::<T, HasCap<Self>>(linker, get)
    }
}

#[cfg(test)]
mod tests;
