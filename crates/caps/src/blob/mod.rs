//! Blob storage: each owner's key-value files. The service checks
//! `blob:read` / `blob:write` for whoever asks (a REST caller or a val's
//! call) and runs the operation in the owner's namespace; `host` is its
//! WIT import, `store` its files; the metadata store keeps its index.

mod host;
pub mod store;

pub use store::{BlobError, BlobStore};
pub use valbox_store::{BlobEntry, Condition};

use std::sync::Arc;

use wasmtime::component::Linker;

use super::storage::StorageMeter;
use super::{Capability, Ctx, HasCap, Settings};
use store::validate_key;
use valbox_model::{Holder, Scope};
use valbox_store::{BlobIndex, BlobRefusal, BlobWrite, Room};

/// What the blob capability is configured with.
#[derive(Clone, Debug)]
pub struct BlobSettings {
    /// The largest blob, in bytes.
    pub max_bytes: usize,
    /// All of one owner's blobs together.
    pub quota_bytes: u64,
}

/// The blob service: the files, and the index in the metadata store.
pub struct Blob {
    pub index: Arc<dyn BlobIndex>,
    pub store: BlobStore,
    pub meter: StorageMeter,
}

impl Blob {
    /// The largest blob, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.store.max_blob_bytes
    }

    /// The blob's value and version, or `None`.
    pub async fn get(
        &self,
        who: &mut impl Holder,
        key: String,
    ) -> Result<Option<(Vec<u8>, String)>, BlobError> {
        who.check(Scope::BlobRead)?;
        validate_key(&key)?;
        let owner = who.owner_id().to_string();
        // The file is read apart from the index; a write that lands
        // meanwhile changes the version, and the read is made again.
        for _ in 0..3 {
            let Some(version) = self.index.version(&owner, &key).await? else {
                return Ok(None);
            };
            let (store, o, k) = (self.store.clone(), owner.clone(), key.clone());
            let read = blocking(move || store.read(&o, &k)).await;
            let now = self.index.version(&owner, &key).await?;
            match read {
                Ok(bytes) if now.as_deref() == Some(version.as_str()) => {
                    return Ok(Some((bytes, version)));
                }
                Err(e) if now.as_deref() == Some(version.as_str()) => return Err(e),
                _ => {}
            }
        }
        Err(BlobError::Conflict(None))
    }

    /// Store `value` if `condition` holds; returns the new version. The
    /// value is written and synced before the index is asked, so a large
    /// write never holds up other requests.
    pub async fn set(
        &self,
        who: &mut impl Holder,
        key: String,
        value: Vec<u8>,
        condition: Condition,
    ) -> Result<String, BlobError> {
        who.check(Scope::BlobWrite)?;
        validate_key(&key)?;
        if value.len() > self.store.max_blob_bytes {
            return Err(BlobError::TooLarge(self.store.max_blob_bytes));
        }
        let owner = who.owner_id().to_string();
        let write = BlobWrite {
            owner_id: owner.clone(),
            key: key.clone(),
            size: value.len() as u64,
            condition,
            blob_quota: self.store.quota_bytes,
            room: self.meter.room(&owner, 0).await,
        };
        // A write that cannot fit is refused before it touches the disk.
        if let Err(refusal) = self.index.check(write.clone()).await? {
            return Err(self.refused(refusal, &write.room));
        }
        let (store, o, k) = (self.store.clone(), owner.clone(), key.clone());
        let staged = blocking(move || store.stage(&o, &k, &value)).await?;
        let room = write.room;
        match self
            .index
            .commit(write, Box::new(|| staged.publish()))
            .await?
        {
            Ok(version) => Ok(version),
            Err(refusal) => Err(self.refused(refusal, &room)),
        }
    }

    fn refused(&self, refusal: BlobRefusal, room: &Room) -> BlobError {
        match refusal {
            BlobRefusal::Conflict(now) => BlobError::Conflict(now),
            BlobRefusal::BlobQuota(n) => BlobError::Quota(n),
            BlobRefusal::Full(stored) => BlobError::Storage(self.meter.refusal(room, &stored)),
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
        self.index.delete(&owner, &key).await?;
        let store = self.store.clone();
        blocking(move || store.remove(&owner, &key)).await
    }
}

/// Run file work on the blocking pool.
async fn blocking<R: Send + 'static>(
    op: impl FnOnce() -> Result<R, BlobError> + Send + 'static,
) -> Result<R, BlobError> {
    tokio::task::spawn_blocking(op)
        .await
        .map_err(|e| BlobError::Internal(e.to_string()))?
}

impl Capability for Blob {
    type Call = ();

    fn open(s: &Settings) -> anyhow::Result<Self> {
        let settings = &s.config.blob;
        Ok(Self {
            index: s.store.blobs.clone(),
            store: BlobStore::new(
                s.config.data_dir.join("blobs"),
                settings.max_bytes,
                settings.quota_bytes,
            ),
            meter: StorageMeter::new(s.config, s.store.quota.clone()),
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
