//! What can go wrong with a blob operation, in words a user can act on.

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
    /// The object store (or the metadata store) cannot be reached now.
    Unavailable(String),
    Internal(String),
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
            BlobError::Unavailable(m) => write!(
                f,
                "blob storage is unavailable for the moment ({m}); retry shortly"
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

impl From<StoreError> for BlobError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => BlobError::Unavailable(e.to_string()),
            e => BlobError::Internal(e.to_string()),
        }
    }
}

impl From<valbox_objects::Unavailable> for BlobError {
    fn from(e: valbox_objects::Unavailable) -> Self {
        BlobError::Unavailable(e.0)
    }
}

pub(crate) fn validate_key(key: &str) -> Result<(), BlobError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(BlobError::InvalidKey(format!(
            "a blob key must be 1 to {MAX_KEY_BYTES} bytes of UTF-8"
        )));
    }
    Ok(())
}
