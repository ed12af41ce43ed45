//! Env vars: a val's secrets. Values are sealed at rest (`store`), readable
//! by the val through the `env` import (scope `env:read`, `host`) and never
//! returned by the API; its owner lists, sets and deletes them (the
//! server's `/v1/vals/{id}/environment_variables`, which decides who may).

mod host;
pub mod store;

use std::collections::HashMap;

use wasmtime::component::Linker;

use super::{Capability, Ctx, HasCap, Settings};
use store::EnvVarMeta;
use valbox_store::Db;
use valbox_store::secrets::SecretBox;

/// The env var through which a val reads its call's API token.
pub const CALL_TOKEN_VAR: &str = "valtown";
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Why an env var could not be set or read.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{0}")]
    InvalidKey(String),
    #[error("the env var's value is larger than the limit of {MAX_VALUE_LEN} bytes")]
    TooLarge,
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// The env var service: sealed values in the metadata database.
pub struct Env {
    db: Db,
    secrets: SecretBox,
}

/// What one call has of env: the val's vars, unsealed on first read.
#[derive(Default)]
pub struct EnvCall {
    vars: Option<HashMap<String, String>>,
}

impl Env {
    /// Every var of `val_id`, unsealed.
    async fn values(&self, val_id: &str) -> anyhow::Result<HashMap<String, String>> {
        let (val_id, secrets) = (val_id.to_string(), self.secrets.clone());
        self.db
            .call(move |conn| store::load_values(conn, &secrets, &val_id))
            .await
    }

    /// The vars of val `val_id` (names and times only). The caller has
    /// checked that the asker owns the val.
    pub async fn list(&self, val_id: &str) -> Result<Vec<EnvVarMeta>, EnvError> {
        let val_id = val_id.to_string();
        Ok(self
            .db
            .call(move |conn| store::list_vars(conn, &val_id))
            .await?)
    }

    /// Set var `key` of val `val_id`, which the asker may change.
    pub async fn set(
        &self,
        val_id: &str,
        key: String,
        value: String,
        description: Option<String>,
    ) -> Result<EnvVarMeta, EnvError> {
        store::validate_key(&key).map_err(EnvError::InvalidKey)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(EnvError::TooLarge);
        }
        let (val_id, secrets) = (val_id.to_string(), self.secrets.clone());
        Ok(self
            .db
            .call(move |conn| {
                let description = description.as_deref();
                store::set_var(conn, &secrets, &val_id, &key, &value, description)
            })
            .await?)
    }

    /// Delete var `key` of val `val_id`; false when it had no such var.
    pub async fn delete(&self, val_id: &str, key: String) -> Result<bool, EnvError> {
        let val_id = val_id.to_string();
        Ok(self
            .db
            .call(move |conn| store::delete_var(conn, &val_id, &key))
            .await?)
    }
}

impl Capability for Env {
    type Call = EnvCall;

    fn open(s: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            db: s.db.clone(),
            secrets: s.secrets.clone(),
        })
    }

    fn link<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> Ctx<'_, Self>,
    ) -> wasmtime::Result<()> {
        valbox_runtime::bindings::env::add_to_linker::<T, HasCap<Self>>(linker, get)
    }
}

#[cfg(test)]
mod tests;
