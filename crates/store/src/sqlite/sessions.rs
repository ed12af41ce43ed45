//! Sign-in links and sessions, in SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use valbox_model::now_ms;

use super::Sqlite;
use crate::{NewSession, SessionRow, Sessions, StoreResult, new_id};

fn session_from_row(r: &Row) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get("id")?,
        user_id: r.get("user_id")?,
        csrf: r.get("csrf")?,
        created_at: r.get("created_at")?,
        last_seen_at: r.get("last_seen_at")?,
        expires_at: r.get("expires_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

#[async_trait]
impl Sessions for Sqlite {
    async fn add_link(&self, user_id: &str, hash: &str, expires_at: i64) -> StoreResult<()> {
        let (user_id, hash) = (user_id.to_owned(), hash.to_owned());
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO login_links (hash, user_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![hash, user_id, now_ms(), expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn add_link_within(
        &self,
        user_id: &str,
        hash: &str,
        expires_at: i64,
        max: u32,
        since: i64,
    ) -> StoreResult<bool> {
        let (user_id, hash) = (user_id.to_owned(), hash.to_owned());
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let made: u32 = tx.query_row(
                "SELECT count(*) FROM login_links WHERE user_id = ?1 AND created_at > ?2",
                params![user_id, since],
                |r| r.get(0),
            )?;
            if made >= max {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO login_links (hash, user_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![hash, user_id, now_ms(), expires_at],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn sign_in(&self, link: &str, session: NewSession) -> StoreResult<Option<SessionRow>> {
        let link = link.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let now = now_ms();
            let user_id: Option<String> = tx
                .query_row(
                    "UPDATE login_links SET used_at = ?2
                     WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING user_id",
                    params![link, now],
                    |r| r.get(0),
                )
                .optional()?;
            // A used or unknown link is spent either way: commit.
            let Some(user_id) = user_id else {
                tx.commit()?;
                return Ok(None);
            };
            let row = SessionRow {
                id: new_id(),
                user_id,
                csrf: session.csrf,
                created_at: now,
                last_seen_at: now,
                expires_at: session.expires_at,
                revoked_at: None,
            };
            tx.execute(
                "INSERT INTO sessions (id, hash, user_id, csrf, created_at, last_seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
                params![row.id, session.hash, row.user_id, row.csrf, now, row.expires_at],
            )?;
            tx.commit()?;
            Ok(Some(row))
        })
        .await
    }

    async fn by_hash(&self, hash: &str) -> StoreResult<Option<SessionRow>> {
        let hash = hash.to_owned();
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT * FROM sessions WHERE hash = ?1",
                    [hash],
                    session_from_row,
                )
                .optional()?)
        })
        .await
    }

    async fn touch(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.run(move |conn| {
            conn.execute(
                "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1",
                params![id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    async fn list(&self, user_id: &str) -> StoreResult<Vec<SessionRow>> {
        let user_id = user_id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT * FROM sessions
                 WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
                 ORDER BY created_at DESC",
            )?;
            let rows = stmt.query_map(params![user_id, now_ms()], session_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn revoke(&self, user_id: &str, id: Option<&str>) -> StoreResult<usize> {
        let (user_id, id) = (user_id.to_owned(), id.map(str::to_owned));
        self.run(move |conn| {
            Ok(conn.execute(
                "UPDATE sessions SET revoked_at = ?3
                 WHERE user_id = ?1 AND (?2 IS NULL OR id = ?2) AND revoked_at IS NULL",
                params![user_id, id, now_ms()],
            )?)
        })
        .await
    }
}
