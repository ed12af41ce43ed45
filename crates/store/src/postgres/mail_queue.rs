//! The mail queue in PostgreSQL: a val's queued bytes are counted and the
//! message inserted under the val's advisory lock (nodes receiving for one
//! val at once count one at a time); due mail is claimed with `FOR UPDATE
//! SKIP LOCKED`, so of many nodes exactly one delivers each; the hold a
//! claim writes is its token.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{Postgres, lock};
use crate::{IncomingMail, MailQueue, QueuedFor, QueuedMail, StoreResult};

const COLUMNS: &str = "id, val_id, owner_id, envelope_from, envelope_to, raw, received_ms, \
                       attempts, next_attempt_ms, running_until, last_error";

fn row(r: &Row) -> StoreResult<QueuedMail> {
    Ok(QueuedMail {
        id: r.try_get(0)?,
        val_id: r.try_get(1)?,
        owner_id: r.try_get(2)?,
        envelope_from: r.try_get(3)?,
        envelope_to: r.try_get(4)?,
        raw: r.try_get(5)?,
        received_ms: r.try_get(6)?,
        attempts: r.try_get(7)?,
        next_attempt_ms: r.try_get(8)?,
        running_until: r.try_get(9)?,
        last_error: r.try_get(10)?,
    })
}

#[async_trait]
impl MailQueue for Postgres {
    async fn enqueue(&self, mail: IncomingMail, max_val_bytes: i64) -> StoreResult<Option<String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock(&tx, &format!("inbound_mail/{}", mail.val_id)).await?;
        let queued: i64 = tx
            .query_one(
                "SELECT coalesce(sum(size), 0)::BIGINT FROM inbound_mail WHERE val_id = $1",
                &[&mail.val_id],
            )
            .await?
            .try_get(0)?;
        let size = mail.raw.len() as i64;
        if queued + size > max_val_bytes {
            return Ok(None);
        }
        let id = crate::new_id();
        tx.execute(
            "INSERT INTO inbound_mail (id, val_id, owner_id, envelope_from, envelope_to, raw,
                 size, received_ms, next_attempt_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            &[
                &id,
                &mail.val_id,
                &mail.owner_id,
                &mail.envelope_from,
                &mail.envelope_to,
                &mail.raw,
                &size,
                &mail.received_ms,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        hold_until_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<QueuedMail>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "UPDATE inbound_mail SET running_until = $2
                     WHERE id IN (
                         SELECT id FROM inbound_mail
                         WHERE next_attempt_ms <= $1
                           AND (running_until IS NULL OR running_until < $1)
                         ORDER BY next_attempt_ms LIMIT $3
                         FOR UPDATE SKIP LOCKED)
                     RETURNING {COLUMNS}"
                ),
                &[&now_ms, &hold_until_ms, &limit],
            )
            .await?;
        let mut claimed = rows.iter().map(row).collect::<StoreResult<Vec<_>>>()?;
        // RETURNING keeps no order: oldest due first, as promised.
        claimed.sort_by_key(|m| m.next_attempt_ms);
        Ok(claimed)
    }

    async fn retry(
        &self,
        claimed: &QueuedMail,
        next_attempt_ms: i64,
        error: &str,
    ) -> StoreResult<bool> {
        let changed = self
            .client()
            .await?
            .execute(
                "UPDATE inbound_mail
                 SET attempts = attempts + 1, last_error = $3, next_attempt_ms = $4,
                     running_until = NULL
                 WHERE id = $1 AND running_until = $2",
                &[
                    &claimed.id,
                    &claimed.running_until,
                    &error,
                    &next_attempt_ms,
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn release(&self, claimed: &QueuedMail, next_attempt_ms: i64) -> StoreResult<bool> {
        let changed = self
            .client()
            .await?
            .execute(
                "UPDATE inbound_mail SET next_attempt_ms = $3, running_until = NULL
                 WHERE id = $1 AND running_until = $2",
                &[&claimed.id, &claimed.running_until, &next_attempt_ms],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn remove(&self, claimed: &QueuedMail) -> StoreResult<bool> {
        let changed = self
            .client()
            .await?
            .execute(
                "DELETE FROM inbound_mail WHERE id = $1 AND running_until = $2",
                &[&claimed.id, &claimed.running_until],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn queued_total(&self) -> StoreResult<QueuedFor> {
        let found = self
            .client()
            .await?
            .query_one(
                "SELECT count(*), coalesce(sum(size), 0)::BIGINT FROM inbound_mail",
                &[],
            )
            .await?;
        Ok(QueuedFor {
            messages: found.try_get(0)?,
            bytes: found.try_get(1)?,
        })
    }

    async fn queued_for(&self, val_id: &str) -> StoreResult<QueuedFor> {
        let found = self
            .client()
            .await?
            .query_one(
                "SELECT count(*), coalesce(sum(size), 0)::BIGINT FROM inbound_mail
                 WHERE val_id = $1",
                &[&val_id],
            )
            .await?;
        Ok(QueuedFor {
            messages: found.try_get(0)?,
            bytes: found.try_get(1)?,
        })
    }
}
