//! The outbox, in PostgreSQL. A message is claimed by the node that sends
//! it, so that it is sent once however many nodes deliver.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use valbox_model::now_ms;

use super::Postgres;
use crate::{DailyLimit, DueMail, NewMail, Outbox, OutboxRow, StoreResult, new_id};

const DAY_MS: i64 = 86_400_000;

/// How long a claimed message stays with the node that claimed it before
/// another may take it (a node that died while sending).
const CLAIM_MS: i64 = 5 * 60_000;

/// Queue `mail` within its daily budget, counted across nodes: the
/// owner's row is locked while counting.
pub(super) async fn enqueue(
    c: &impl GenericClient,
    mail: &NewMail,
) -> StoreResult<Result<String, DailyLimit>> {
    c.execute(
        "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
        &[&mail.owner_id],
    )
    .await?;
    let sent_today: i64 = c
        .query_one(
            "SELECT count(*) FROM emails WHERE owner_id = $1 AND created_at > $2 AND platform = $3",
            &[&mail.owner_id, &(now_ms() - DAY_MS), &mail.platform],
        )
        .await?
        .try_get(0)?;
    if sent_today >= i64::from(mail.daily_limit) {
        return Ok(Err(DailyLimit(mail.daily_limit)));
    }
    let id = new_id();
    c.execute(
        "INSERT INTO emails (id, owner_id, val_id, message, status, attempts, next_attempt_at,
           created_at, platform)
         VALUES ($1, $2, $3, $4, 'queued', 0, 0, $5, $6)",
        &[
            &id,
            &mail.owner_id,
            &mail.val_id,
            &mail.message,
            &now_ms(),
            &mail.platform,
        ],
    )
    .await?;
    Ok(Ok(id))
}

#[async_trait]
impl Outbox for Postgres {
    async fn enqueue(&self, mail: NewMail) -> StoreResult<Result<String, DailyLimit>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let queued = enqueue(&tx, &mail).await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn list(&self, owner_id: &str) -> StoreResult<Vec<OutboxRow>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, message, status, attempts, last_error, created_at, sent_at
                 FROM emails WHERE owner_id = $1 ORDER BY created_at DESC LIMIT 100",
                &[&owner_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.try_get(0)?,
                    message: r.try_get(1)?,
                    status: r.try_get(2)?,
                    attempts: r.try_get(3)?,
                    last_error: r.try_get(4)?,
                    created_at: r.try_get(5)?,
                    sent_at: r.try_get(6)?,
                })
            })
            .collect()
    }

    async fn queued(&self) -> StoreResult<i64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT count(*) FROM emails WHERE status = 'queued'", &[])
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Claim up to `limit` due messages: each is pushed out of every other
    /// node's reach for a while (`SKIP LOCKED` lets nodes claim side by
    /// side), and its sending is then recorded as sent or failed.
    async fn due(&self, limit: i64) -> StoreResult<Vec<DueMail>> {
        let now = now_ms();
        let rows = self
            .client()
            .await?
            .query(
                "WITH claimed AS (
                   SELECT id FROM emails WHERE status = 'queued' AND next_attempt_at <= $1
                   ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE emails e SET next_attempt_at = $3
                 FROM claimed, users u
                 WHERE e.id = claimed.id AND u.id = e.owner_id
                 RETURNING e.id, u.email, e.message, e.attempts, e.created_at",
                &[&now, &limit, &(now + CLAIM_MS)],
            )
            .await?;
        let mut due: Vec<DueMail> = rows
            .iter()
            .map(|r| {
                Ok(DueMail {
                    id: r.try_get(0)?,
                    to: r.try_get(1)?,
                    message: r.try_get(2)?,
                    attempts: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                })
            })
            .collect::<StoreResult<_>>()?;
        due.sort_by_key(|d| d.created_at);
        Ok(due)
    }

    async fn mark_sent(&self, id: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE emails SET status = 'sent', attempts = attempts + 1, sent_at = $2,
                   last_error = NULL WHERE id = $1",
                &[&id, &now_ms()],
            )
            .await?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        id: &str,
        error: &str,
        retry_in_ms: Option<i64>,
    ) -> StoreResult<()> {
        let (status, next) = match retry_in_ms {
            Some(ms) => ("queued", now_ms() + ms),
            None => ("failed", 0),
        };
        self.client()
            .await?
            .execute(
                "UPDATE emails SET status = $2, attempts = attempts + 1, last_error = $3,
                   next_attempt_at = $4 WHERE id = $1",
                &[&id, &status, &error, &next],
            )
            .await?;
        Ok(())
    }
}
