//! Env vars: a val's secrets. Values are sealed at rest (`store`), readable
//! by the val through the `env` import (scope `env:read`, `host`) and never
//! returned by the API; its owner lists, sets and deletes them (`routes`).

mod host;
mod routes;
pub mod store;

use std::collections::HashMap;

use wasmtime::component::Linker;

use super::{Capability, CapsRouter, Ctx, HasCap, Settings};
use crate::auth::Principal;
use crate::auth::Scope;
use crate::auth::val_access::{find_changeable, find_owned};
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::secrets::SecretBox;
use store::EnvVarMeta;

/// The env var through which a val reads its call's API token.
pub const CALL_TOKEN_VAR: &str = "valtown";
const MAX_VALUE_LEN: usize = 64 * 1024;

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

    /// The vars of val `id` that `who` owns (names and times only).
    pub async fn list(&self, who: &Principal, id: &str) -> ApiResult<Vec<EnvVarMeta>> {
        let val = find_owned(&self.db, who, id, Scope::EnvRead).await?;
        Ok(self
            .db
            .call(move |conn| store::list_vars(conn, &val.id))
            .await?)
    }

    /// Set var `key` of val `id`, which `who` may change.
    pub async fn set(
        &self,
        who: &Principal,
        id: &str,
        key: String,
        value: String,
        description: Option<String>,
    ) -> ApiResult<EnvVarMeta> {
        let val = find_changeable(&self.db, who, id, Scope::EnvWrite).await?;
        store::validate_key(&key).map_err(|m| ApiError::bad_request("invalid_env_var", m))?;
        if value.len() > MAX_VALUE_LEN {
            return Err(ApiError::too_large("the env var's value", MAX_VALUE_LEN));
        }
        let secrets = self.secrets.clone();
        Ok(self
            .db
            .call(move |conn| {
                let description = description.as_deref();
                store::set_var(conn, &secrets, &val.id, &key, &value, description)
            })
            .await?)
    }

    /// Delete var `key` of val `id`; false when it had no such var.
    pub async fn delete(&self, who: &Principal, id: &str, key: String) -> ApiResult<bool> {
        let val = find_changeable(&self.db, who, id, Scope::EnvWrite).await?;
        Ok(self
            .db
            .call(move |conn| store::delete_var(conn, &val.id, &key))
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

    fn routes() -> CapsRouter {
        routes::routes()
    }

    fn link<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> Ctx<'_, Self>,
    ) -> wasmtime::Result<()> {
        crate::runtime::bindings::env::add_to_linker::<T, HasCap<Self>>(linker, get)
    }
}

#[cfg(test)]
mod tests;
