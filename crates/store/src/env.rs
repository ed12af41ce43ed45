//! Env vars, sealed: the store keeps only ciphertexts (`secrets`), the
//! environment capability seals and opens them.

use async_trait::async_trait;

use crate::StoreResult;

/// An env var without its value.
#[derive(Clone, Debug)]
pub struct EnvVarMeta {
    pub key: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An env var's value as stored: sealed, with the nonce it was sealed with.
#[derive(Clone, Debug)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

#[async_trait]
pub trait EnvVars: Send + Sync {
    /// Set (or replace) a var; `None` keeps the description it had.
    async fn set(
        &self,
        val_id: &str,
        key: &str,
        value: Sealed,
        description: Option<&str>,
    ) -> StoreResult<EnvVarMeta>;
    /// A val's vars, by key.
    async fn list(&self, val_id: &str) -> StoreResult<Vec<EnvVarMeta>>;
    /// Whether there was such a var.
    async fn delete(&self, val_id: &str, key: &str) -> StoreResult<bool>;
    /// A val's vars, sealed, for a call.
    async fn sealed(&self, val_id: &str) -> StoreResult<Vec<(String, Sealed)>>;
}
