//! Env vars: a val's secrets. Values are encrypted at rest, readable by the
//! val through `env.get` (scope `env:read`) and never returned by the API.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value, json};

use super::CallContext;
use crate::api::{Authed, JsonBody, iso8601};
use crate::app::App;
use crate::auth::Scope;
use crate::db::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::runtime::bindings::env::Host;
use crate::runtime::bindings::types::Error;
use crate::secrets::SecretBox;
use crate::services::val_access::{find_changeable, find_owned};

/// The env var through which a val reads its call's API token.
pub const CALL_TOKEN_VAR: &str = "valtown";
const MAX_KEY_LEN: usize = 128;
const MAX_VALUE_LEN: usize = 64 * 1024;

impl Host for CallContext {
    async fn get(&mut self, name: String) -> Result<Option<String>, Error> {
        self.check(Scope::EnvRead)?;
        if name == CALL_TOKEN_VAR {
            return Ok(Some(self.call_token.clone()));
        }
        if self.env_cache.is_none() {
            let (val_id, secrets) = (self.val_id.clone(), self.secrets.clone());
            let vars = self
                .db
                .call(move |conn| load_values(conn, &secrets, &val_id))
                .await
                .map_err(|e| {
                    tracing::error!("loading env vars: {e:#}");
                    Error::Internal("could not load env vars".into())
                })?;
            self.env_cache = Some(vars);
        }
        Ok(self
            .env_cache
            .as_ref()
            .and_then(|vars| vars.get(&name).cloned()))
    }
}

/// What the API shows of an env var: never its value.
pub struct EnvVarMeta {
    pub key: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl EnvVarMeta {
    fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "description": self.description,
            "createdAt": iso8601(self.created_at),
            "updatedAt": iso8601(self.updated_at),
        })
    }
}

fn sealing_context(val_id: &str, key: &str) -> String {
    format!("env/{val_id}/{key}")
}

pub fn validate_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let starts_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_ok
        || key.len() > MAX_KEY_LEN
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "invalid env var name `{key}`: use letters, digits and `_`, not starting with a digit, at most {MAX_KEY_LEN} characters"
        ));
    }
    if key == CALL_TOKEN_VAR {
        return Err(format!(
            "`{CALL_TOKEN_VAR}` is reserved for the call's own API token"
        ));
    }
    Ok(())
}

pub fn set_var(
    conn: &Connection,
    secrets: &SecretBox,
    val_id: &str,
    key: &str,
    value: &str,
    description: Option<&str>,
) -> anyhow::Result<EnvVarMeta> {
    let (nonce, sealed) = secrets.seal(value.as_bytes(), &sealing_context(val_id, key))?;
    let now = now_ms();
    conn.execute(
        "INSERT INTO env_vars (val_id, key, nonce, ciphertext, description, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, COALESCE(?5, ''), ?6, ?6)
         ON CONFLICT (val_id, key) DO UPDATE SET nonce = ?3, ciphertext = ?4,
           description = COALESCE(?5, description), updated_at = ?6",
        params![val_id, key, nonce, sealed, description, now],
    )?;
    Ok(get_meta(conn, val_id, key)?.expect("row just written"))
}

fn get_meta(conn: &Connection, val_id: &str, key: &str) -> anyhow::Result<Option<EnvVarMeta>> {
    Ok(conn
        .query_row(
            "SELECT key, description, created_at, updated_at FROM env_vars WHERE val_id = ?1 AND key = ?2",
            [val_id, key],
            meta_from_row,
        )
        .optional()?)
}

fn meta_from_row(r: &rusqlite::Row) -> rusqlite::Result<EnvVarMeta> {
    Ok(EnvVarMeta {
        key: r.get(0)?,
        description: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
    })
}

pub fn list_vars(conn: &Connection, val_id: &str) -> anyhow::Result<Vec<EnvVarMeta>> {
    let mut stmt = conn.prepare(
        "SELECT key, description, created_at, updated_at FROM env_vars WHERE val_id = ?1 ORDER BY key",
    )?;
    let rows = stmt.query_map([val_id], meta_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete_var(conn: &Connection, val_id: &str, key: &str) -> anyhow::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM env_vars WHERE val_id = ?1 AND key = ?2",
        [val_id, key],
    )? > 0)
}

fn load_values(
    conn: &Connection,
    secrets: &SecretBox,
    val_id: &str,
) -> anyhow::Result<HashMap<String, String>> {
    let mut stmt = conn.prepare("SELECT key, nonce, ciphertext FROM env_vars WHERE val_id = ?1")?;
    let mut rows = stmt.query([val_id])?;
    let mut vars = HashMap::new();
    while let Some(r) = rows.next()? {
        let key: String = r.get(0)?;
        let nonce: Vec<u8> = r.get(1)?;
        let sealed: Vec<u8> = r.get(2)?;
        let plain = secrets.open(&nonce, &sealed, &sealing_context(val_id, &key))?;
        vars.insert(key, String::from_utf8_lossy(&plain).into_owned());
    }
    Ok(vars)
}

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/v2/vals/{id}/environment_variables",
            get(list_route).post(create_route),
        )
        .route(
            "/v2/vals/{id}/environment_variables/{key}",
            put(update_route).delete(delete_route),
        )
}

#[derive(Deserialize)]
struct CreateBody {
    key: String,
    value: String,
    description: Option<String>,
}

#[derive(Deserialize)]
struct UpdateBody {
    value: String,
    description: Option<String>,
}

async fn list_route(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let val = find_owned(&app, &who, &id, Scope::EnvRead).await?;
    let vars = app.db.call(move |conn| list_vars(conn, &val.id)).await?;
    let data: Vec<Value> = vars.iter().map(EnvVarMeta::to_json).collect();
    Ok(Json(
        json!({ "data": data, "links": { "self": format!("/v2/vals/{id}/environment_variables") } }),
    ))
}

async fn create_route(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let meta = write_var(&app, &who, &id, body.key, body.value, body.description).await?;
    Ok((StatusCode::CREATED, Json(meta.to_json())))
}

async fn update_route(
    State(app): State<App>,
    Authed(who): Authed,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<Json<Value>> {
    let meta = write_var(&app, &who, &id, key, body.value, body.description).await?;
    Ok(Json(meta.to_json()))
}

async fn write_var(
    app: &App,
    who: &crate::auth::Principal,
    id: &str,
    key: String,
    value: String,
    description: Option<String>,
) -> ApiResult<EnvVarMeta> {
    let val = find_changeable(app, who, id, Scope::EnvWrite).await?;
    validate_key(&key).map_err(|m| ApiError::bad_request("invalid_env_var", m))?;
    if value.len() > MAX_VALUE_LEN {
        return Err(ApiError::too_large("the env var's value", MAX_VALUE_LEN));
    }
    let secrets = app.secrets.clone();
    Ok(app
        .db
        .call(move |conn| {
            set_var(
                conn,
                &secrets,
                &val.id,
                &key,
                &value,
                description.as_deref(),
            )
        })
        .await?)
}

async fn delete_route(
    State(app): State<App>,
    Authed(who): Authed,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let val = find_changeable(&app, &who, &id, Scope::EnvWrite).await?;
    let k = key.clone();
    if app
        .db
        .call(move |conn| delete_var(conn, &val.id, &k))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "the val has no env var `{key}`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        assert!(validate_key("API_KEY").is_ok());
        assert!(validate_key("_x1").is_ok());
        assert!(validate_key("1X").is_err());
        assert!(validate_key("A-B").is_err());
        assert!(validate_key("").is_err());
        assert!(validate_key("valtown").unwrap_err().contains("reserved"));
    }
}
