//! API tokens, in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use valbox_model::{Scopes, now_ms};

use super::{Sqlite, typed, users};
use crate::{NewToken, StoreResult, TokenRow, Tokens, User, new_id};

fn by_hash(conn: &Connection, hash: &str) -> StoreResult<Option<TokenRow>> {
    Ok(conn
        .prepare_cached("SELECT * FROM tokens WHERE hash = ?1")?
        .query_row([hash], token_from_row)
        .optional()?)
}

fn touch(conn: &Connection, id: &str, now: i64) -> StoreResult<()> {
    conn.prepare_cached("UPDATE tokens SET last_used_at = ?1 WHERE id = ?2")?
        .execute(params![now, id])?;
    Ok(())
}

fn token_from_row(r: &Row) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        name: r.get("name")?,
        scopes: typed::column(r, "scopes", Scopes::parse)?,
        created_at: r.get("created_at")?,
        last_used_at: r.get("last_used_at")?,
        expires_at: r.get("expires_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

pub(super) fn insert(conn: &Connection, user_id: &str, token: NewToken) -> StoreResult<TokenRow> {
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
    conn.execute(
        "INSERT INTO tokens (id, user_id, name, hash, scopes, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            row.id,
            row.user_id,
            row.name,
            token.hash,
            row.scopes.to_string(),
            row.created_at,
            row.expires_at
        ],
    )?;
    Ok(row)
}

#[async_trait]
impl Tokens for Sqlite {
    async fn insert(&self, user_id: &str, token: NewToken) -> StoreResult<TokenRow> {
        let user_id = user_id.to_owned();
        self.run(move |conn| insert(conn, &user_id, token)).await
    }

    async fn by_hash(&self, hash: &str) -> StoreResult<Option<TokenRow>> {
        let hash = hash.to_owned();
        self.run(move |conn| by_hash(conn, &hash)).await
    }

    async fn resolve(&self, hash: &str, now: i64) -> StoreResult<Option<(TokenRow, User)>> {
        let hash = hash.to_owned();
        self.run(move |conn| {
            let Some(row) = by_hash(conn, &hash)? else {
                return Ok(None);
            };
            if row.refusal(now).is_none() && row.last_use_is_stale(now) {
                touch(conn, &row.id, now)?;
            }
            Ok(users::by_id(conn, &row.user_id)?.map(|user| (row, user)))
        })
        .await
    }

    async fn list(&self, user_id: &str) -> StoreResult<Vec<TokenRow>> {
        let user_id = user_id.to_owned();
        self.run(move |conn| {
            let mut stmt =
                conn.prepare("SELECT * FROM tokens WHERE user_id = ?1 ORDER BY created_at, id")?;
            let rows = stmt.query_map([user_id], token_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn live(&self, user_id: &str, id: &str) -> StoreResult<Option<TokenRow>> {
        let (user_id, id) = (user_id.to_owned(), id.to_owned());
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT * FROM tokens WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                    params![id, user_id],
                    token_from_row,
                )
                .optional()?)
        })
        .await
    }

    async fn revoke(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let (user_id, id) = (user_id.to_owned(), id.to_owned());
        self.run(move |conn| {
            Ok(conn.execute(
                "UPDATE tokens SET revoked_at = ?3
                 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                params![id, user_id, now_ms()],
            )? > 0)
        })
        .await
    }

    async fn revoke_by_hash(&self, hash: &str) -> StoreResult<Option<String>> {
        let hash = hash.to_owned();
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "UPDATE tokens SET revoked_at = ?2 WHERE hash = ?1 AND revoked_at IS NULL
                     RETURNING user_id",
                    params![hash, now_ms()],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn set_scopes(&self, user_id: &str, id: &str, scopes: &Scopes) -> StoreResult<bool> {
        let (user_id, id, scopes) = (user_id.to_owned(), id.to_owned(), scopes.to_string());
        self.run(move |conn| {
            Ok(conn.execute(
                "UPDATE tokens SET scopes = ?3
                 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                params![id, user_id, scopes],
            )? > 0)
        })
        .await
    }
}
