//! Blob storage: the host import (scope checks: `blob:read`, `blob:write`),
//! its storage (`store`) and its REST routes (`routes`).

mod routes;
pub mod store;

pub use routes::routes;
pub use store::{BlobError, BlobStore};

use super::CallContext;
use crate::auth::Scope;
use crate::runtime::bindings::blob::{BlobEntry, Host};
use crate::runtime::bindings::types::Error;

impl From<BlobError> for Error {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::InvalidKey(_) => Error::Invalid(e.to_string()),
            BlobError::TooLarge(_) | BlobError::Quota(_) => Error::Limit(e.to_string()),
            BlobError::Internal(m) => {
                tracing::error!("blob storage: {m}");
                Error::Internal("blob storage failed; retry".into())
            }
        }
    }
}

impl CallContext {
    /// Run a blob operation for this val's owner on the blocking pool.
    async fn with_blobs<R: Send + 'static>(
        &self,
        op: impl FnOnce(&BlobStore, &rusqlite::Connection, &str) -> Result<R, BlobError>
        + Send
        + 'static,
    ) -> Result<R, Error> {
        let (store, owner) = (self.blobs.clone(), self.owner_id.clone());
        self.db
            .call(move |conn| Ok(op(&store, conn, &owner)))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(Error::from)
    }
}

impl Host for CallContext {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        self.check(Scope::BlobRead)?;
        self.with_blobs(move |s, c, owner| s.get(c, owner, &key))
            .await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.check(Scope::BlobWrite)?;
        self.with_blobs(move |s, c, owner| s.set(c, owner, &key, &value))
            .await
    }

    async fn list(&mut self, prefix: String) -> Result<Vec<BlobEntry>, Error> {
        self.check(Scope::BlobRead)?;
        let entries = self
            .with_blobs(move |s, c, owner| s.list(c, owner, &prefix))
            .await?;
        Ok(entries
            .into_iter()
            .map(|e| BlobEntry {
                key: e.key,
                size: e.size,
                last_modified: e.last_modified_ms.max(0) as u64,
            })
            .collect())
    }

    async fn delete(&mut self, key: String) -> Result<(), Error> {
        self.check(Scope::BlobWrite)?;
        self.with_blobs(move |s, c, owner| s.delete(c, owner, &key))
            .await
    }
}
