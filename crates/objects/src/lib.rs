//! The object store: where uploaded components and users' blobs keep
//! their bytes. On one machine, files under the data directory; on many,
//! an S3 bucket that every node shares (`--objects s3://…`).
//!
//! An object's version is the store's own ETag, and a write may be made
//! conditional on it (`If-Match`, or `If-None-Match: *`), so the bucket
//! itself decides which of two racing writers wins. Writes are staged
//! first (bytes synced to disk, or held for the upload) and published
//! once the caller's index has accepted them.

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod files;
mod key;
#[cfg(feature = "s3")]
mod s3;

pub use files::Files;
pub use key::ObjectKey;
#[cfg(feature = "s3")]
pub use s3::S3;

use async_trait::async_trait;
use bytes::Bytes;

/// The store could not be reached or failed; the operation may be retried.
#[derive(Debug, thiserror::Error)]
#[error("the object store is unavailable: {0}")]
pub struct Unavailable(pub String);

pub type ObjectsResult<T> = Result<T, Unavailable>;

/// When a write may happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// Only over this version (`If-Match`).
    IfMatch(String),
    /// Only where there is no object (`If-None-Match: *`).
    IfAbsent,
}

/// An object's bytes and the version they are.
#[derive(Clone, Debug)]
pub struct Object {
    pub bytes: Bytes,
    pub version: String,
}

/// What an object is, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub version: String,
    pub size: u64,
}

/// What publishing a staged write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// In place, at this version.
    Done(String),
    /// The condition did not hold: the version now, if there is an object.
    Conflict(Option<String>),
}

#[async_trait]
pub trait Objects: Send + Sync + std::fmt::Debug {
    async fn get(&self, key: &ObjectKey) -> ObjectsResult<Option<Object>>;
    /// The object's version and size, if it exists.
    async fn head(&self, key: &ObjectKey) -> ObjectsResult<Option<Head>>;
    /// Make `bytes` ready to be published at `key`; nothing is visible
    /// until then, and a staged write dropped unpublished leaves nothing.
    async fn stage(&self, key: &ObjectKey, bytes: Bytes) -> ObjectsResult<Box<dyn Staged>>;
    /// Remove the object, if there is one.
    async fn delete(&self, key: &ObjectKey) -> ObjectsResult<()>;
    /// Where the objects are, for the log.
    fn describe(&self) -> String;
    /// The URL by which another program, with this node's credentials,
    /// reaches `path` (slash-separated) in the same store: where Litestream
    /// keeps replicas of users' SQLite databases.
    fn url_of(&self, path: &str) -> String;
}

#[async_trait]
pub trait Staged: Send {
    /// Put the staged bytes in place if `condition` holds.
    async fn publish(self: Box<Self>, condition: Condition) -> ObjectsResult<Written>;
}

/// The object store `url` names: `s3://BUCKET[/PREFIX]?endpoint=…&region=…`
/// (credentials from the standard AWS environment variables).
#[cfg(feature = "s3")]
pub fn open(url: &str) -> anyhow::Result<std::sync::Arc<dyn Objects>> {
    Ok(std::sync::Arc::new(S3::open(url)?))
}

/// The version of `bytes` as a file store gives it: a content hash, as
/// S3's ETag of a single-part upload is.
pub(crate) fn content_version(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(bytes)[..16])
}

#[cfg(test)]
mod tests;
