//! Sign-in links and sessions, in PostgreSQL.

use async_trait::async_trait;
use tokio_postgres::Row;

use valbox_model::now_ms;

use super::Postgres;
use crate::{NewSession, SessionRow, Sessions, StoreResult, new_id};

fn session_from_row(r: &Row) -> StoreResult<SessionRow> {
    Ok(SessionRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        csrf: r.try_get("csrf")?,
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

#[async_trait]
impl Sessions for Postgres {
    async fn add_link(&self, user_id: &str, hash: &str, expires_at: i64) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO login_links (hash, user_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[&hash, &user_id, &now_ms(), &expires_at],
            )
            .await?;
        Ok(())
    }

    async fn add_link_within(
        &self,
        user_id: &str,
        hash: &str,
        expires_at: i64,
        max: u32,
        since: i64,
    ) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Nodes counting one user's links take turns.
        tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id])
            .await?;
        let made: i64 = tx
            .query_one(
                "SELECT count(*) FROM login_links WHERE user_id = $1 AND created_at > $2",
                &[&user_id, &since],
            )
            .await?
            .try_get(0)?;
        if made >= i64::from(max) {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO login_links (hash, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[&hash, &user_id, &now_ms(), &expires_at],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn sign_in(&self, link: &str, session: NewSession) -> StoreResult<Option<SessionRow>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let now = now_ms();
        // One UPDATE spends the link: of two nodes redeeming it at once,
        // only one gets its user back.
        let user = tx
            .query_opt(
                "UPDATE login_links SET used_at = $2
                 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
                &[&link, &now],
            )
            .await?;
        let Some(user) = user else {
            tx.commit().await?;
            return Ok(None);
        };
        let row = SessionRow {
            id: new_id(),
            user_id: user.get(0),
            csrf: session.csrf,
            created_at: now,
            last_seen_at: now,
            expires_at: session.expires_at,
            revoked_at: None,
        };
        tx.execute(
            "INSERT INTO sessions (id, hash, user_id, csrf, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
            &[
                &row.id,
                &session.hash,
                &row.user_id,
                &row.csrf,
                &now,
                &row.expires_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    async fn by_hash(&self, hash: &str) -> StoreResult<Option<SessionRow>> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT * FROM sessions WHERE hash = $1", &[&hash])
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn touch(&self, id: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE sessions SET last_seen_at = $2 WHERE id = $1",
                &[&id, &now_ms()],
            )
            .await?;
        Ok(())
    }

    async fn list(&self, user_id: &str) -> StoreResult<Vec<SessionRow>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT * FROM sessions
                 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
                 ORDER BY created_at DESC",
                &[&user_id, &now_ms()],
            )
            .await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn revoke(&self, user_id: &str, id: Option<&str>) -> StoreResult<usize> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE sessions SET revoked_at = $3
                 WHERE user_id = $1 AND ($2::TEXT IS NULL OR id = $2) AND revoked_at IS NULL",
                &[&user_id, &id, &now_ms()],
            )
            .await?;
        Ok(n as usize)
    }
}
