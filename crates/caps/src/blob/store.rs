//! Blob storage: each owner's blobs are files in their own directory,
//! reached only through a cap-std handle on it, named by the SHA-256 of
//! the key, so no key (slashes, dots, `..`, unicode) can name a path
//! outside it. The metadata store's blob index keeps keys, sizes and
//! versions for listing, quotas and conditional writes. Writes are atomic:
//! temp file, fsync, then (once the index accepts the write) rename, fsync
//! of the directory, and the index row.

use std::io::Write;
use std::path::PathBuf;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use sha2::{Digest, Sha256};

use valbox_model::Denied;
use valbox_store::StoreError;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;

#[derive(Debug)]
pub enum BlobError {
    Denied(Denied),
    InvalidKey(String),
    TooLarge(usize),
    Quota(u64),
    /// Past the owner's quota over all their storage (the message says).
    Storage(String),
    /// A conditional write found the blob at another version (its current
    /// one, or none when it does not exist).
    Conflict(Option<String>),
    Internal(String),
}

/// When a write may happen.
impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobError::Denied(d) => f.write_str(&d.message),
            BlobError::InvalidKey(m) => f.write_str(m),
            BlobError::TooLarge(n) => write!(f, "a blob may hold at most {n} bytes"),
            BlobError::Quota(n) => write!(
                f,
                "this write would take the owner past their blob quota of {n} bytes; delete some blobs first"
            ),
            BlobError::Storage(m) => f.write_str(m),
            BlobError::Conflict(Some(v)) => write!(
                f,
                "the blob changed since it was read (it is at version {v} now); read it again and retry"
            ),
            BlobError::Conflict(None) => f.write_str(
                "the blob does not exist (any more), or exists when it was expected not to; read it again and retry",
            ),
            BlobError::Internal(m) => write!(f, "blob storage failed: {m}"),
        }
    }
}

impl From<Denied> for BlobError {
    fn from(d: Denied) -> Self {
        BlobError::Denied(d)
    }
}

impl From<std::io::Error> for BlobError {
    fn from(e: std::io::Error) -> Self {
        BlobError::Internal(e.to_string())
    }
}

impl From<StoreError> for BlobError {
    fn from(e: StoreError) -> Self {
        BlobError::Internal(e.to_string())
    }
}

/// A value written and synced to a temporary file, not yet in place;
/// removed when dropped uncommitted.
pub struct Staged {
    dir: Dir,
    tmp: Option<String>,
    /// The blob's own file name.
    name: String,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = self.dir.remove_file(tmp);
        }
    }
}

#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
    pub max_blob_bytes: usize,
    pub quota_bytes: u64,
}

pub(crate) fn validate_key(key: &str) -> Result<(), BlobError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(BlobError::InvalidKey(format!(
            "a blob key must be 1 to {MAX_KEY_BYTES} bytes of UTF-8"
        )));
    }
    Ok(())
}

fn file_name(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl BlobStore {
    pub fn new(root: PathBuf, max_blob_bytes: usize, quota_bytes: u64) -> Self {
        Self {
            root,
            max_blob_bytes,
            quota_bytes,
        }
    }

    fn dir(&self, owner: &str) -> Result<Dir, BlobError> {
        let path = self.root.join(owner);
        std::fs::create_dir_all(&path)?;
        Ok(Dir::open_ambient_dir(path, ambient_authority())?)
    }

    pub fn read(&self, owner: &str, key: &str) -> Result<Vec<u8>, BlobError> {
        Ok(self.dir(owner)?.read(file_name(key))?)
    }

    /// Write `value` beside the blob, synced, to be published once the
    /// index accepts it; dropped unpublished, it is removed.
    pub fn stage(&self, owner: &str, key: &str, value: &[u8]) -> Result<Staged, BlobError> {
        validate_key(key)?;
        if value.len() > self.max_blob_bytes {
            return Err(BlobError::TooLarge(self.max_blob_bytes));
        }
        let dir = self.dir(owner)?;
        let tmp = format!(".tmp-{}-{}", file_name(key), uuid::Uuid::new_v4().simple());
        let mut file = dir.open_with(&tmp, OpenOptions::new().write(true).create_new(true))?;
        let staged = Staged {
            dir,
            tmp: Some(tmp),
            name: file_name(key),
        };
        file.write_all(value)?;
        file.sync_all()?;
        Ok(staged)
    }

    /// Remove the blob's file, if there is one.
    pub fn remove(&self, owner: &str, key: &str) -> Result<(), BlobError> {
        match self.dir(owner)?.remove_file(file_name(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

impl Staged {
    /// Make the staged bytes the blob's: rename over it, then sync the
    /// directory so the rename survives a crash.
    pub fn publish(mut self) -> std::io::Result<()> {
        let tmp = self.tmp.take().expect("staged until published");
        if let Err(e) = self.dir.rename(&tmp, &self.dir, &self.name) {
            let _ = self.dir.remove_file(&tmp);
            return Err(e);
        }
        self.dir.open(".")?.sync_all()
    }
}
