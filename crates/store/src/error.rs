//! The store's one error type. "Not found" is not an error here: lookups
//! return `Option`, and refusals a caller must explain (a quota, a guard)
//! come back as values of their own.

/// What went wrong in a metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A name or key that must be unique is taken.
    #[error("{0}")]
    Conflict(String),
    /// The store failed: the caller's request was fine.
    #[error("the metadata store failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store cannot be reached (restarting, say): retry shortly.
    #[error("the metadata store is not reachable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<anyhow::Error> for StoreError {
    fn from(e: anyhow::Error) -> Self {
        StoreError::Backend(e.into())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(Box::new(e))
    }
}
