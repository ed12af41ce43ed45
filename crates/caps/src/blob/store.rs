//! Blob storage: each owner's blobs are files in their own directory,
//! reached only through a cap-std handle on it, named by the SHA-256 of
//! the key, so no key (slashes, dots, `..`, unicode) can name a path
//! outside it. An index in the metadata DB keeps keys, sizes and times for
//! listing and quotas. Writes are atomic: temp file, fsync, rename, fsync
//! of the directory, then the index row.

use std::io::Write;
use std::path::PathBuf;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::storage::StorageMeter;
use valbox_model::Denied;
use valbox_model::now_ms;

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
#[derive(Clone, Debug)]
pub enum Condition {
    Always,
    /// Only while the blob is at this version.
    IfMatch(String),
    /// Only while the blob does not exist.
    IfAbsent,
}

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

impl From<rusqlite::Error> for BlobError {
    fn from(e: rusqlite::Error) -> Self {
        BlobError::Internal(e.to_string())
    }
}

/// A value written and synced to a temporary file, not yet in place;
/// removed when dropped uncommitted.
pub struct Staged {
    dir: Dir,
    tmp: Option<String>,
    len: u64,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = self.dir.remove_file(tmp);
        }
    }
}

pub struct BlobEntry {
    pub key: String,
    pub size: u64,
    pub last_modified_ms: i64,
}

#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
    pub max_blob_bytes: usize,
    pub quota_bytes: u64,
}

/// The least a blob counts against its owner's quota.
pub const MIN_CHARGE_BYTES: u64 = 4096;

fn validate_key(key: &str) -> Result<(), BlobError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(BlobError::InvalidKey(format!(
            "a blob key must be 1 to {MAX_KEY_BYTES} bytes of UTF-8"
        )));
    }
    Ok(())
}

/// The version of `owner`'s blob `key`, if it exists.
fn version_of(conn: &Connection, owner: &str, key: &str) -> Result<Option<String>, BlobError> {
    Ok(conn
        .query_row(
            "SELECT COALESCE(etag, '') FROM blobs WHERE owner_id = ?1 AND key = ?2",
            [owner, key],
            |r| r.get(0),
        )
        .optional()?)
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

    /// The owner's directory, created on first use. Owner ids are UUIDs
    /// minted by this server, never user input.
    fn dir(&self, owner: &str) -> Result<Dir, BlobError> {
        let path = self.root.join(owner);
        std::fs::create_dir_all(&path)?;
        Ok(Dir::open_ambient_dir(path, ambient_authority())?)
    }

    /// The blob's value and version, or `None`.
    pub fn get(
        &self,
        conn: &Connection,
        owner: &str,
        key: &str,
    ) -> Result<Option<(Vec<u8>, String)>, BlobError> {
        let Some(version) = self.version(conn, owner, key)? else {
            return Ok(None);
        };
        Ok(Some((self.read(owner, key)?, version)))
    }

    /// The blob's version, or `None`: from the index alone.
    pub fn version(
        &self,
        conn: &Connection,
        owner: &str,
        key: &str,
    ) -> Result<Option<String>, BlobError> {
        validate_key(key)?;
        version_of(conn, owner, key)
    }

    /// The blob's bytes as the file holds them now: no database needed.
    pub fn read(&self, owner: &str, key: &str) -> Result<Vec<u8>, BlobError> {
        Ok(self.dir(owner)?.read(file_name(key))?)
    }

    /// Write `value` to a temporary file in the owner's directory and sync
    /// it: the slow part of a write, which needs no database.
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
            len: value.len() as u64,
        };
        file.write_all(value)?;
        file.sync_all()?;
        Ok(staged)
    }

    /// Put a staged value in place if `condition` holds and it fits the
    /// quota; returns the blob's new version. Writes to one database are
    /// serialised (this runs with its connection), so the check and the
    /// write are one step. A staged value that is not committed is removed.
    pub fn commit(
        &self,
        conn: &Connection,
        owner: &str,
        key: &str,
        mut staged: Staged,
        condition: &Condition,
        meter: &StorageMeter,
    ) -> Result<String, BlobError> {
        let current = version_of(conn, owner, key)?;
        let holds = match condition {
            Condition::Always => true,
            Condition::IfMatch(v) => current.as_deref() == Some(v.as_str()),
            Condition::IfAbsent => current.is_none(),
        };
        if !holds {
            return Err(BlobError::Conflict(current));
        }
        self.check_room(conn, owner, key, staged.len, meter)?;
        let tmp = staged.tmp.take().expect("staged until committed");
        let dir = &staged.dir;
        if let Err(e) = dir.rename(&tmp, dir, file_name(key)) {
            let _ = dir.remove_file(&tmp);
            return Err(e.into());
        }
        dir.open(".")?.sync_all()?;
        let version = uuid::Uuid::new_v4().simple().to_string();
        conn.execute(
            "INSERT INTO blobs (owner_id, key, size, last_modified, etag) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (owner_id, key) DO UPDATE SET size = ?3, last_modified = ?4, etag = ?5",
            params![owner, key, staged.len as i64, now_ms(), version],
        )?;
        Ok(version)
    }

    /// Whether a value of `len` bytes under `key` fits the owner's blob
    /// quota and their quota over all their storage.
    pub fn check_room(
        &self,
        conn: &Connection,
        owner: &str,
        key: &str,
        len: u64,
        meter: &StorageMeter,
    ) -> Result<(), BlobError> {
        self.check_quota(conn, owner, key, len)?;
        let replaced: Option<i64> = conn
            .query_row(
                "SELECT size FROM blobs WHERE owner_id = ?1 AND key = ?2",
                [owner, key],
                |r| r.get(0),
            )
            .optional()?;
        let charge = |n: u64| n.max(MIN_CHARGE_BYTES) as i64;
        let more = charge(len) - replaced.map_or(0, |n| charge(n.max(0) as u64));
        meter
            .room_for(conn, owner, more)?
            .map_err(BlobError::Storage)
    }

    /// Whether a value of `len` bytes under `key` fits the owner's quota.
    /// Each blob is charged at least a disk block, as the disk does, so a
    /// quota also bounds how many (empty) blobs an owner can make.
    pub fn check_quota(
        &self,
        conn: &Connection,
        owner: &str,
        key: &str,
        len: u64,
    ) -> Result<(), BlobError> {
        let others: i64 = conn.query_row(
            "SELECT COALESCE(SUM(MAX(size, ?3)), 0) FROM blobs WHERE owner_id = ?1 AND key != ?2",
            params![owner, key, MIN_CHARGE_BYTES as i64],
            |r| r.get(0),
        )?;
        if others as u64 + len.max(MIN_CHARGE_BYTES) > self.quota_bytes {
            return Err(BlobError::Quota(self.quota_bytes));
        }
        Ok(())
    }

    /// Every entry whose key starts with `prefix`, sorted by key.
    pub fn list(
        &self,
        conn: &Connection,
        owner: &str,
        prefix: &str,
    ) -> Result<Vec<BlobEntry>, BlobError> {
        let mut stmt = conn.prepare(
            "SELECT key, size, last_modified FROM blobs
             WHERE owner_id = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
        )?;
        let rows = stmt.query_map([owner, prefix], |r| {
            Ok(BlobEntry {
                key: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
                last_modified_ms: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Delete `key`; deleting a missing key is not an error.
    pub fn delete(&self, conn: &Connection, owner: &str, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        conn.execute(
            "DELETE FROM blobs WHERE owner_id = ?1 AND key = ?2",
            [owner, key],
        )?;
        match self.dir(owner)?.remove_file(file_name(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
