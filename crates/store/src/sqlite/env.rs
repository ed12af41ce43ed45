//! Env vars, sealed, in SQLite.

use async_trait::async_trait;
use rusqlite::{Row, params};

use valbox_model::now_ms;

use super::Sqlite;
use crate::{EnvVarMeta, EnvVars, Sealed, StoreResult};

fn meta_from_row(r: &Row) -> rusqlite::Result<EnvVarMeta> {
    Ok(EnvVarMeta {
        key: r.get(0)?,
        description: r.get(1)?,
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
    })
}

#[async_trait]
impl EnvVars for Sqlite {
    async fn set(
        &self,
        val_id: &str,
        key: &str,
        value: Sealed,
        description: Option<&str>,
    ) -> StoreResult<EnvVarMeta> {
        let (val_id, key) = (val_id.to_owned(), key.to_owned());
        let description = description.map(str::to_owned);
        self.run(move |conn| {
            Ok(conn.query_row(
                "INSERT INTO env_vars
                   (val_id, key, nonce, ciphertext, description, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, COALESCE(?5, ''), ?6, ?6)
                 ON CONFLICT (val_id, key) DO UPDATE SET nonce = ?3, ciphertext = ?4,
                   description = COALESCE(?5, description), updated_at = ?6
                 RETURNING key, description, created_at, updated_at",
                params![
                    val_id,
                    key,
                    value.nonce,
                    value.ciphertext,
                    description,
                    now_ms()
                ],
                meta_from_row,
            )?)
        })
        .await
    }

    async fn list(&self, val_id: &str) -> StoreResult<Vec<EnvVarMeta>> {
        let val_id = val_id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT key, description, created_at, updated_at FROM env_vars
                 WHERE val_id = ?1 ORDER BY key",
            )?;
            let rows = stmt.query_map([val_id], meta_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn delete(&self, val_id: &str, key: &str) -> StoreResult<bool> {
        let (val_id, key) = (val_id.to_owned(), key.to_owned());
        self.run(move |conn| {
            Ok(conn.execute(
                "DELETE FROM env_vars WHERE val_id = ?1 AND key = ?2",
                [val_id, key],
            )? > 0)
        })
        .await
    }

    async fn sealed(&self, val_id: &str) -> StoreResult<Vec<(String, Sealed)>> {
        let val_id = val_id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT key, nonce, ciphertext FROM env_vars WHERE val_id = ?1")?;
            let rows = stmt.query_map([val_id], |r| {
                let sealed = Sealed {
                    nonce: r.get(1)?,
                    ciphertext: r.get(2)?,
                };
                Ok((r.get(0)?, sealed))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
