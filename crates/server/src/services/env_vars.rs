//! A val's env vars as its owner manages them, over the REST API and the
//! web UI alike: who may, then the capability's sealed store.

use valbox_model::{Principal, Scope};
use valbox_store::EnvVarMeta;

use crate::app::App;
use crate::services::error::ServiceResult;
use crate::services::val_access::{find_changeable, find_owned};

/// The vars of val `id`, which `who` owns (names and times only).
pub async fn list(app: &App, who: &Principal, id: &str) -> ServiceResult<Vec<EnvVarMeta>> {
    let val = find_owned(&app.store, who, id, Scope::EnvRead).await?;
    Ok(app.caps.env.list(&val.id).await?)
}

/// Set var `key` of val `id`, which `who` may change.
pub async fn set(
    app: &App,
    who: &Principal,
    id: &str,
    key: String,
    value: String,
    description: Option<String>,
) -> ServiceResult<EnvVarMeta> {
    let val = find_changeable(&app.store, who, id, Scope::EnvWrite).await?;
    let set = app.caps.env.set(&val.id, key, value, description).await?;
    crate::services::call::retire_reused(app, &val.id);
    Ok(set)
}

/// Delete var `key` of val `id`; false when it had no such var.
pub async fn delete(app: &App, who: &Principal, id: &str, key: String) -> ServiceResult<bool> {
    let val = find_changeable(&app.store, who, id, Scope::EnvWrite).await?;
    let deleted = app.caps.env.delete(&val.id, key).await?;
    crate::services::call::retire_reused(app, &val.id);
    Ok(deleted)
}
