//! Blob storage: each owner's key-value files. The service checks
//! `blob:read` / `blob:write` for whoever asks (a REST caller or a val's
//! call) and runs the operation in the owner's namespace; `host` is its
//! WIT import, `routes` its REST routes, `store` its files and index.

mod host;
mod routes;
pub mod store;

pub use store::{BlobEntry, BlobError, BlobStore, Condition};

use wasmtime::component::Linker;

use super::{Capability, CapsRouter, Ctx, HasCap, Settings};
use crate::auth::{Holder, Scope};
use crate::db::Db;

/// The blob service: the store and the metadata database its index is in.
pub struct Blob {
    pub db: Db,
    pub store: BlobStore,
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
        self.run(who, move |s, c, owner| s.get(c, owner, &key))
            .await
    }

    /// Store `value` if `condition` holds; returns the new version.
    pub async fn set(
        &self,
        who: &mut impl Holder,
        key: String,
        value: Vec<u8>,
        condition: Condition,
    ) -> Result<String, BlobError> {
        who.check(Scope::BlobWrite)?;
        self.run(who, move |s, c, owner| {
            s.set(c, owner, &key, &value, &condition)
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
        })
    }

    fn routes() -> CapsRouter {
        routes::routes()
    }

    fn link<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> Ctx<'_, Self>,
    ) -> wasmtime::Result<()> {
        crate::runtime::bindings::blob::add_to_linker::<T, HasCap<Self>>(linker, get)
    }
}

#[cfg(test)]
mod tests;
