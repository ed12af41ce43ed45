//! Cron schedules in PostgreSQL: due runs are claimed with `FOR UPDATE
//! SKIP LOCKED`, so that of many nodes exactly one takes each; the hold a
//! claim writes is its token.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::Postgres;
use crate::{RunEnd, ScheduleRow, Schedules, StoreResult};

const COLUMNS: &str =
    "val_id, owner_id, schedule, next_run_ms, last_run_ms, failures, paused_at, running_until";

fn row(r: &Row) -> StoreResult<ScheduleRow> {
    Ok(ScheduleRow {
        val_id: r.try_get(0)?,
        owner_id: r.try_get(1)?,
        schedule: r.try_get(2)?,
        next_run_ms: r.try_get(3)?,
        last_run_ms: r.try_get(4)?,
        failures: r.try_get(5)?,
        paused_at: r.try_get(6)?,
        running_until: r.try_get(7)?,
    })
}

#[async_trait]
impl Schedules for Postgres {
    async fn set(
        &self,
        val_id: &str,
        owner_id: &str,
        (text, next): (&str, i64),
        limit: u64,
    ) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The owner's row locked: racing requests count one at a time.
        tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&owner_id])
            .await?;
        let others: i64 = tx
            .query_one(
                "SELECT count(*) FROM cron_schedules WHERE owner_id = $1 AND val_id <> $2",
                &[&owner_id, &val_id],
            )
            .await?
            .try_get(0)?;
        if others as u64 >= limit {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO cron_schedules (val_id, owner_id, schedule, next_run_ms)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (val_id) DO UPDATE
             SET schedule = $3, next_run_ms = $4, failures = 0, paused_at = NULL",
            &[&val_id, &owner_id, &text, &next],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn remove(&self, val_id: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute("DELETE FROM cron_schedules WHERE val_id = $1", &[&val_id])
            .await?;
        Ok(())
    }

    async fn get(&self, val_id: &str) -> StoreResult<Option<ScheduleRow>> {
        let found = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM cron_schedules WHERE val_id = $1"),
                &[&val_id],
            )
            .await?;
        found.as_ref().map(row).transpose()
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        hold_until_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<ScheduleRow>> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "UPDATE cron_schedules SET running_until = $2
                     WHERE val_id IN (
                         SELECT val_id FROM cron_schedules
                         WHERE next_run_ms <= $1 AND paused_at IS NULL
                           AND (running_until IS NULL OR running_until < $1)
                         ORDER BY next_run_ms LIMIT $3
                         FOR UPDATE SKIP LOCKED)
                     RETURNING {COLUMNS}"
                ),
                &[&now_ms, &hold_until_ms, &limit],
            )
            .await?;
        rows.iter().map(row).collect()
    }

    async fn extend(&self, claimed: &ScheduleRow, hold_until_ms: i64) -> StoreResult<bool> {
        let extended = self
            .client()
            .await?
            .execute(
                "UPDATE cron_schedules SET running_until = $3
                 WHERE val_id = $1 AND running_until = $2",
                &[&claimed.val_id, &claimed.running_until, &hold_until_ms],
            )
            .await?;
        Ok(extended == 1)
    }

    async fn finish(&self, claimed: &ScheduleRow, end: RunEnd) -> StoreResult<bool> {
        let paused = self
            .client()
            .await?
            .query_opt(
                "UPDATE cron_schedules
                 SET running_until = NULL, last_run_ms = $3,
                     next_run_ms = CASE WHEN schedule = $4 THEN $5 ELSE next_run_ms END,
                     failures = CASE WHEN $6::BOOL IS NULL THEN failures
                                     WHEN $6 THEN 0 ELSE failures + 1 END,
                     paused_at = CASE WHEN NOT $6 AND failures + 1 >= $7 THEN $3
                                      ELSE paused_at END
                 WHERE val_id = $1 AND running_until = $2
                 RETURNING paused_at IS NOT NULL",
                &[
                    &claimed.val_id,
                    &claimed.running_until,
                    &end.started_ms,
                    &claimed.schedule,
                    &end.next_run_ms,
                    &end.ok,
                    &end.pause_after,
                ],
            )
            .await?;
        Ok(paused.map(|r| r.try_get(0)).transpose()?.unwrap_or(false))
    }

    async fn unpause(&self, val_id: &str, next_run_ms: i64) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE cron_schedules SET paused_at = NULL, failures = 0, next_run_ms = $2
                 WHERE val_id = $1 AND paused_at IS NOT NULL",
                &[&val_id, &next_run_ms],
            )
            .await?;
        Ok(())
    }
}
