//! API tokens, in PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use valbox_model::{Scopes, now_ms};

use super::{Postgres, typed, users};
use crate::{NewToken, StoreResult, TokenRow, Tokens, User, new_id};

fn token_from_row(r: &Row) -> StoreResult<TokenRow> {
    Ok(TokenRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        scopes: typed(r, "scopes", Scopes::parse)?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

pub(super) async fn insert(
    c: &impl GenericClient,
    user_id: &str,
    token: NewToken,
) -> StoreResult<TokenRow> {
    let row = TokenRow {
        id: new_id(),
        user_id: user_id.into(),
        name: token.name,
        scopes: token.scopes,
        created_at: now_ms(),
        last_used_at: None,
        expires_at: token.expires_at,
        revoked_at: None,
    };
    c.execute(
        "INSERT INTO tokens (id, user_id, name, hash, scopes, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &row.id,
            &row.user_id,
            &row.name,
            &token.hash,
            &row.scopes.to_string(),
            &row.created_at,
            &row.expires_at,
        ],
    )
    .await?;
    Ok(row)
}

async fn by_hash(c: &impl GenericClient, hash: &str) -> StoreResult<Option<TokenRow>> {
    let row = c
        .query_opt("SELECT * FROM tokens WHERE hash = $1", &[&hash])
        .await?;
    row.as_ref().map(token_from_row).transpose()
}

#[async_trait]
impl Tokens for Postgres {
    async fn insert(&self, user_id: &str, token: NewToken) -> StoreResult<TokenRow> {
        insert(&self.client().await?, user_id, token).await
    }

    async fn by_hash(&self, hash: &str) -> StoreResult<Option<TokenRow>> {
        by_hash(&self.client().await?, hash).await
    }

    async fn resolve(&self, hash: &str, now: i64) -> StoreResult<Option<(TokenRow, User)>> {
        let client = self.client().await?;
        let Some(row) = by_hash(&client, hash).await? else {
            return Ok(None);
        };
        if row.refusal(now).is_none() && row.last_use_is_stale(now) {
            client
                .execute(
                    "UPDATE tokens SET last_used_at = $1 WHERE id = $2",
                    &[&now, &row.id],
                )
                .await?;
        }
        Ok(users::by_id(&client, &row.user_id)
            .await?
            .map(|user| (row, user)))
    }

    async fn list(&self, user_id: &str) -> StoreResult<Vec<TokenRow>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT * FROM tokens WHERE user_id = $1 ORDER BY created_at, id",
                &[&user_id],
            )
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn live(&self, user_id: &str, id: &str) -> StoreResult<Option<TokenRow>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT * FROM tokens WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                &[&id, &user_id],
            )
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn revoke(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE tokens SET revoked_at = $3
                 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                &[&id, &user_id, &now_ms()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn revoke_by_hash(&self, hash: &str) -> StoreResult<Option<String>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "UPDATE tokens SET revoked_at = $2 WHERE hash = $1 AND revoked_at IS NULL
                 RETURNING user_id",
                &[&hash, &now_ms()],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_scopes(&self, user_id: &str, id: &str, scopes: &Scopes) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE tokens SET scopes = $3
                 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                &[&id, &user_id, &scopes.to_string()],
            )
            .await?;
        Ok(n > 0)
    }
}
