//! The mail queue in SQLite: one server, whose single connection makes
//! each claim atomic, and the size check and the insert one transaction;
//! the hold a claim writes is its token.

use async_trait::async_trait;
use rusqlite::{Row, TransactionBehavior, params};

use super::Sqlite;
use crate::{IncomingMail, MailQueue, QueuedFor, QueuedMail, StoreResult};

const COLUMNS: &str = "id, val_id, owner_id, envelope_from, envelope_to, raw, received_ms, \
                       attempts, next_attempt_ms, running_until, last_error";

fn row(r: &Row<'_>) -> rusqlite::Result<QueuedMail> {
    Ok(QueuedMail {
        id: r.get(0)?,
        val_id: r.get(1)?,
        owner_id: r.get(2)?,
        envelope_from: r.get(3)?,
        envelope_to: r.get(4)?,
        raw: r.get(5)?,
        received_ms: r.get(6)?,
        attempts: r.get(7)?,
        next_attempt_ms: r.get(8)?,
        running_until: r.get(9)?,
        last_error: r.get(10)?,
    })
}

#[async_trait]
impl MailQueue for Sqlite {
    async fn enqueue(&self, mail: IncomingMail, max_val_bytes: i64) -> StoreResult<Option<String>> {
        self.run(move |conn| {
            // IMMEDIATE: the sum and the insert see the same queue.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let size = mail.raw.len() as i64;
            let queued: i64 = tx.query_row(
                "SELECT coalesce(sum(size), 0) FROM inbound_mail WHERE val_id = ?1",
                [&mail.val_id],
                |r| r.get(0),
            )?;
            if queued + size > max_val_bytes {
                return Ok(None);
            }
            let id = crate::new_id();
            tx.execute(
                "INSERT INTO inbound_mail (id, val_id, owner_id, envelope_from, envelope_to, raw,
                     size, received_ms, next_attempt_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                params![
                    id,
                    mail.val_id,
                    mail.owner_id,
                    mail.envelope_from,
                    mail.envelope_to,
                    mail.raw,
                    size,
                    mail.received_ms
                ],
            )?;
            tx.commit()?;
            Ok(Some(id))
        })
        .await
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        hold_until_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<QueuedMail>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "UPDATE inbound_mail SET running_until = ?2
                 WHERE id IN (
                     SELECT id FROM inbound_mail
                     WHERE next_attempt_ms <= ?1
                       AND (running_until IS NULL OR running_until < ?1)
                     ORDER BY next_attempt_ms LIMIT ?3)
                 RETURNING {COLUMNS}"
            ))?;
            let rows = stmt.query_map(params![now_ms, hold_until_ms, limit], row)?;
            let mut claimed: Vec<QueuedMail> = rows.collect::<Result<_, _>>()?;
            // RETURNING keeps no order: oldest due first, as promised.
            claimed.sort_by_key(|m| m.next_attempt_ms);
            Ok(claimed)
        })
        .await
    }

    async fn retry(
        &self,
        claimed: &QueuedMail,
        next_attempt_ms: i64,
        error: &str,
    ) -> StoreResult<bool> {
        let (id, hold, error) = (claimed.id.clone(), claimed.running_until, error.to_owned());
        self.run(move |conn| {
            let changed = conn.execute(
                "UPDATE inbound_mail
                 SET attempts = attempts + 1, last_error = ?3, next_attempt_ms = ?4,
                     running_until = NULL
                 WHERE id = ?1 AND running_until = ?2",
                params![id, hold, error, next_attempt_ms],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release(&self, claimed: &QueuedMail, next_attempt_ms: i64) -> StoreResult<bool> {
        let (id, hold) = (claimed.id.clone(), claimed.running_until);
        self.run(move |conn| {
            let changed = conn.execute(
                "UPDATE inbound_mail SET next_attempt_ms = ?3, running_until = NULL
                 WHERE id = ?1 AND running_until = ?2",
                params![id, hold, next_attempt_ms],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn remove(&self, claimed: &QueuedMail) -> StoreResult<bool> {
        let (id, hold) = (claimed.id.clone(), claimed.running_until);
        self.run(move |conn| {
            let changed = conn.execute(
                "DELETE FROM inbound_mail WHERE id = ?1 AND running_until = ?2",
                params![id, hold],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn queued_total(&self) -> StoreResult<QueuedFor> {
        self.run(move |conn| {
            Ok(conn.query_row(
                "SELECT count(*), coalesce(sum(size), 0) FROM inbound_mail",
                [],
                |r| {
                    Ok(QueuedFor {
                        messages: r.get(0)?,
                        bytes: r.get(1)?,
                    })
                },
            )?)
        })
        .await
    }

    async fn queued_for(&self, val_id: &str) -> StoreResult<QueuedFor> {
        let val = val_id.to_owned();
        self.run(move |conn| {
            Ok(conn.query_row(
                "SELECT count(*), coalesce(sum(size), 0) FROM inbound_mail WHERE val_id = ?1",
                [val],
                |r| {
                    Ok(QueuedFor {
                        messages: r.get(0)?,
                        bytes: r.get(1)?,
                    })
                },
            )?)
        })
        .await
    }
}
