//! Env vars at rest: sealed per val and key in the metadata database.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::CALL_TOKEN_VAR;
use valbox_model::iso8601;
use valbox_model::now_ms;
use valbox_store::secrets::SecretBox;

const MAX_KEY_LEN: usize = 128;

/// What the API shows of an env var: never its value.
#[derive(Debug)]
pub struct EnvVarMeta {
    pub key: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An env var as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarJson {
    key: String,
    description: String,
    created_at: String,
    updated_at: String,
}

impl From<EnvVarMeta> for EnvVarJson {
    fn from(m: EnvVarMeta) -> Self {
        Self {
            key: m.key,
            description: m.description,
            created_at: iso8601(m.created_at),
            updated_at: iso8601(m.updated_at),
        }
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

pub fn load_values(
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
