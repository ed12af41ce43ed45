//! The outbox, in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use valbox_model::now_ms;

use super::Sqlite;
use crate::{DailyLimit, DueMail, NewMail, Outbox, OutboxRow, StoreResult, new_id};

const DAY_MS: i64 = 86_400_000;

/// How long a claimed message waits before it is due again, unmarked.
const CLAIM_MS: i64 = 5 * 60_000;

/// Queue `mail` within its daily budget.
pub(super) fn enqueue(
    conn: &Connection,
    mail: &NewMail,
) -> StoreResult<Result<String, DailyLimit>> {
    let sent_today: u32 = conn.query_row(
        "SELECT count(*) FROM emails WHERE owner_id = ?1 AND created_at > ?2 AND platform = ?3",
        params![mail.owner_id, now_ms() - DAY_MS, mail.platform],
        |r| r.get(0),
    )?;
    if sent_today >= mail.daily_limit {
        return Ok(Err(DailyLimit(mail.daily_limit)));
    }
    let id = new_id();
    conn.execute(
        "INSERT INTO emails (id, owner_id, val_id, message, status, attempts, next_attempt_at,
           created_at, platform)
         VALUES (?1, ?2, ?3, ?4, 'queued', 0, 0, ?5, ?6)",
        params![
            id,
            mail.owner_id,
            mail.val_id,
            mail.message,
            now_ms(),
            mail.platform
        ],
    )?;
    Ok(Ok(id))
}

#[async_trait]
impl Outbox for Sqlite {
    async fn enqueue(&self, mail: NewMail) -> StoreResult<Result<String, DailyLimit>> {
        self.run(move |conn| {
            // IMMEDIATE: the count and the insert see the same outbox.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let queued = enqueue(&tx, &mail)?;
            tx.commit()?;
            Ok(queued)
        })
        .await
    }

    async fn list(&self, owner_id: &str) -> StoreResult<Vec<OutboxRow>> {
        let owner = owner_id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, message, status, attempts, last_error, created_at, sent_at FROM emails
                 WHERE owner_id = ?1 ORDER BY created_at DESC LIMIT 100",
            )?;
            let rows = stmt.query_map([owner], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    message: r.get(1)?,
                    status: r.get(2)?,
                    attempts: r.get(3)?,
                    last_error: r.get(4)?,
                    created_at: r.get(5)?,
                    sent_at: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn queued(&self) -> StoreResult<i64> {
        self.run(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM emails WHERE status = 'queued'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn due(&self, limit: i64) -> StoreResult<Vec<DueMail>> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let mut stmt = tx.prepare(
                "SELECT e.id, u.email, e.message, e.attempts, e.created_at
                 FROM emails e JOIN users u ON u.id = e.owner_id
                 WHERE e.status = 'queued' AND e.next_attempt_at <= ?1
                 ORDER BY e.created_at LIMIT ?2",
            )?;
            let now = now_ms();
            let rows = stmt.query_map(params![now, limit], |r| {
                Ok(DueMail {
                    id: r.get(0)?,
                    to: r.get(1)?,
                    message: r.get(2)?,
                    attempts: r.get(3)?,
                    created_at: r.get(4)?,
                })
            })?;
            let due: Vec<DueMail> = rows.collect::<Result<_, _>>()?;
            drop(stmt);
            for mail in &due {
                tx.execute(
                    "UPDATE emails SET next_attempt_at = ?2 WHERE id = ?1",
                    params![mail.id, now + CLAIM_MS],
                )?;
            }
            tx.commit()?;
            Ok(due)
        })
        .await
    }

    async fn mark_sent(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.run(move |conn| {
            conn.execute(
                "UPDATE emails SET status = 'sent', attempts = attempts + 1, sent_at = ?2,
                   last_error = NULL WHERE id = ?1",
                params![id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    async fn mark_failed(
        &self,
        id: &str,
        error: &str,
        retry_in_ms: Option<i64>,
    ) -> StoreResult<()> {
        let (id, error) = (id.to_owned(), error.to_owned());
        let (status, next) = match retry_in_ms {
            Some(ms) => ("queued", now_ms() + ms),
            None => ("failed", 0),
        };
        self.run(move |conn| {
            conn.execute(
                "UPDATE emails SET status = ?2, attempts = attempts + 1, last_error = ?3,
                   next_attempt_at = ?4 WHERE id = ?1",
                params![id, status, error, next],
            )?;
            Ok(())
        })
        .await
    }
}
