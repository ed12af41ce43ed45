//! Blob storage: each owner's key-value files. The service checks
//! `blob:read` / `blob:write` for whoever asks (a REST caller or a val's
//! call) and runs the operation in the owner's namespace; `host` is its
//! WIT import, `routes` its REST routes, `store` its files and index.

mod host;
pub mod store;

pub use store::{BlobEntry, BlobError, BlobStore, Condition, MIN_CHARGE_BYTES};

use wasmtime::component::Linker;

use super::storage::StorageMeter;
use super::{Capability, Ctx, HasCap, Settings};
use valbox_model::{Holder, Scope};
use valbox_store::Db;

/// The blob service: the store and the metadata database its index is in.
pub struct Blob {
    pub db: Db,
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
        // The file is read off the database's lock, which every request
        // needs; a write that lands meanwhile changes the version, and the
        // read is made again.
        for _ in 0..3 {
            let k = key.clone();
            let Some(version) = self.run(who, move |s, c, o| s.version(c, o, &k)).await? else {
                return Ok(None);
            };
            let (store, owner, k) = (self.store.clone(), who.owner_id().to_string(), key.clone());
            let read = blocking(move || store.read(&owner, &k)).await;
            let k = key.clone();
            let now = self.run(who, move |s, c, o| s.version(c, o, &k)).await?;
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
    /// value is written and synced before the database's lock is taken,
    /// so a large write never holds up other requests.
    pub async fn set(
        &self,
        who: &mut impl Holder,
        key: String,
        value: Vec<u8>,
        condition: Condition,
    ) -> Result<String, BlobError> {
        who.check(Scope::BlobWrite)?;
        let len = value.len() as u64;
        let k = key.clone();
        // A write that cannot fit is refused before it touches the disk.
        let meter = self.meter.clone();
        self.run(who, move |s, c, o| s.check_room(c, o, &k, len, &meter))
            .await?;
        let (store, owner, k) = (self.store.clone(), who.owner_id().to_string(), key.clone());
        let staged = blocking(move || store.stage(&owner, &k, &value)).await?;
        let meter = self.meter.clone();
        self.run(who, move |s, c, owner| {
            s.commit(c, owner, &key, staged, &condition, &meter)
        })
        .await
    }

    pub async fn list(
        &self,
        who: &mut impl Holder,
        prefix: String,
    ) -> Result<Vec<BlobEntry>, BlobError> {
        who.check(Scope::BlobRead)?;
        self.run(who, move |s, c, owner| s.list(c, owner, &prefix))
            .await
    }

    pub async fn delete(&self, who: &mut impl Holder, key: String) -> Result<(), BlobError> {
        who.check(Scope::BlobWrite)?;
        self.run(who, move |s, c, owner| s.delete(c, owner, &key))
            .await
    }

    /// Run `op` in the holder's owner's namespace, on the database thread.
    async fn run<R: Send + 'static>(
        &self,
        who: &impl Holder,
        op: impl FnOnce(&BlobStore, &rusqlite::Connection, &str) -> Result<R, BlobError>
        + Send
        + 'static,
    ) -> Result<R, BlobError> {
        let (store, owner) = (self.store.clone(), who.owner_id().to_string());
        self.db
            .call(move |conn| Ok(op(&store, conn, &owner)))
            .await
            .map_err(|e| BlobError::Internal(format!("{e:#}")))?
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
        let limits = &s.config.limits;
        Ok(Self {
            db: s.db.clone(),
            store: BlobStore::new(
                s.config.data_dir.join("blobs"),
                limits.blob_bytes,
                limits.blob_quota_bytes,
            ),
            meter: StorageMeter::new(s.config),
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
