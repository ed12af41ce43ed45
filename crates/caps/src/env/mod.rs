//! Env vars: a val's secrets. Values are sealed at rest (in the metadata
//! store, under the server's key; `vars` checks names), readable
//! by the val through the `env` import (scope `env:read`, `host`) and never
//! returned by the API; its owner lists, sets and deletes them (the
//! server's `/v1/vals/{id}/environment_variables`, which decides who may).

mod host;
pub mod vars;

pub(crate) use host::environment;

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::Linker;

use super::{Capability, Ctx, HasCap, Settings};
use valbox_store::secrets::SecretBox;
use valbox_store::{EnvVarMeta, EnvVars, Sealed, StoreError};
use vars::sealing_context;

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
    Store(#[from] StoreError),
    /// A stored value this server's key cannot open.
    #[error("an env var could not be unsealed: {0}")]
    Sealed(anyhow::Error),
}

/// The env var service: sealed values in the metadata store.
pub struct Env {
    vars: Arc<dyn EnvVars>,
    secrets: SecretBox,
}

/// What one call has of env: the val's vars, unsealed on first read.
#[derive(Default)]
pub struct EnvCall {
    vars: Option<HashMap<String, String>>,
}

impl Env {
    /// Every var of `val_id`, unsealed.
    async fn values(&self, val_id: &str) -> Result<HashMap<String, String>, EnvError> {
        let mut values = HashMap::new();
        for (key, sealed) in self.vars.sealed(val_id).await? {
            let context = sealing_context(val_id, &key);
            let plain = self
                .secrets
                .open(&sealed.nonce, &sealed.ciphertext, &context)
                .map_err(EnvError::Sealed)?;
            values.insert(key, String::from_utf8_lossy(&plain).into_owned());
        }
        Ok(values)
    }

    /// The vars of val `val_id` (names and times only). The caller has
    /// checked that the asker owns the val.
    pub async fn list(&self, val_id: &str) -> Result<Vec<EnvVarMeta>, EnvError> {
        Ok(self.vars.list(val_id).await?)
    }

    /// Set var `key` of val `val_id`, which the asker may change.
    pub async fn set(
        &self,
        val_id: &str,
        key: String,
        value: String,
        description: Option<String>,
    ) -> Result<EnvVarMeta, EnvError> {
        vars::validate_key(&key).map_err(EnvError::InvalidKey)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(EnvError::TooLarge);
        }
        let context = sealing_context(val_id, &key);
        let (nonce, ciphertext) = self
            .secrets
            .seal(value.as_bytes(), &context)
            .map_err(EnvError::Sealed)?;
        let sealed = Sealed { nonce, ciphertext };
        Ok(self
            .vars
            .set(val_id, &key, sealed, description.as_deref())
            .await?)
    }

    /// Delete var `key` of val `val_id`; false when it had no such var.
    pub async fn delete(&self, val_id: &str, key: String) -> Result<bool, EnvError> {
        Ok(self.vars.delete(val_id, &key).await?)
    }
}

impl Capability for Env {
    type Call = EnvCall;

    fn open(s: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            vars: s.store.env.clone(),
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
