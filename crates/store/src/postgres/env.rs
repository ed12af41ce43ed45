//! Env vars, sealed, in PostgreSQL.

use async_trait::async_trait;
use tokio_postgres::Row;

use valbox_model::now_ms;

use super::Postgres;
use crate::{EnvVarMeta, EnvVars, Sealed, StoreResult};

fn meta_from_row(r: &Row) -> StoreResult<EnvVarMeta> {
    Ok(EnvVarMeta {
        key: r.try_get(0)?,
        description: r.try_get(1)?,
        created_at: r.try_get(2)?,
        updated_at: r.try_get(3)?,
    })
}

#[async_trait]
impl EnvVars for Postgres {
    async fn set(
        &self,
        val_id: &str,
        key: &str,
        value: Sealed,
        description: Option<&str>,
    ) -> StoreResult<EnvVarMeta> {
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO env_vars
                   (val_id, key, nonce, ciphertext, description, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, COALESCE($5, ''), $6, $6)
                 ON CONFLICT (val_id, key) DO UPDATE SET nonce = $3, ciphertext = $4,
                   description = COALESCE($5, env_vars.description), updated_at = $6
                 RETURNING key, description, created_at, updated_at",
                &[
                    &val_id,
                    &key,
                    &value.nonce,
                    &value.ciphertext,
                    &description,
                    &now_ms(),
                ],
            )
            .await?;
        meta_from_row(&row)
    }

    async fn list(&self, val_id: &str) -> StoreResult<Vec<EnvVarMeta>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT key, description, created_at, updated_at FROM env_vars
                 WHERE val_id = $1 ORDER BY key",
                &[&val_id],
            )
            .await?;
        rows.iter().map(meta_from_row).collect()
    }

    async fn delete(&self, val_id: &str, key: &str) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "DELETE FROM env_vars WHERE val_id = $1 AND key = $2",
                &[&val_id, &key],
            )
            .await?;
        Ok(n > 0)
    }

    async fn sealed(&self, val_id: &str) -> StoreResult<Vec<(String, Sealed)>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT key, nonce, ciphertext FROM env_vars WHERE val_id = $1",
                &[&val_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let sealed = Sealed {
                    nonce: r.try_get(1)?,
                    ciphertext: r.try_get(2)?,
                };
                Ok((r.try_get(0)?, sealed))
            })
            .collect()
    }
}
