//! Cron schedules in PostgreSQL: due runs are claimed with `FOR UPDATE
//! SKIP LOCKED`, so that of many nodes exactly one takes each.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::Postgres;
use crate::{RunEnd, ScheduleRow, Schedules, StoreResult};

const COLUMNS: &str = "val_id, owner_id, schedule, next_run_ms, last_run_ms, failures, paused_at";

fn row(r: &Row) -> StoreResult<ScheduleRow> {
    Ok(ScheduleRow {
        val_id: r.try_get(0)?,
        owner_id: r.try_get(1)?,
        schedule: r.try_get(2)?,
        next_run_ms: r.try_get(3)?,
        last_run_ms: r.try_get(4)?,
        failures: r.try_get(5)?,
        paused_at: r.try_get(6)?,
    })
}

#[async_trait]
impl Schedules for Postgres {
    async fn set(
        &self,
        val_id: &str,
        owner_id: &str,
        schedule: Option<(&str, i64)>,
    ) -> StoreResult<()> {
        let client = self.client().await?;
        match schedule {
            None => {
                client
                    .execute("DELETE FROM cron_schedules WHERE val_id = $1", &[&val_id])
                    .await?;
            }
            Some((text, next)) => {
                client
                    .execute(
                        "INSERT INTO cron_schedules (val_id, owner_id, schedule, next_run_ms)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (val_id) DO UPDATE
                         SET schedule = $3, next_run_ms = $4, failures = 0, paused_at = NULL",
                        &[&val_id, &owner_id, &text, &next],
                    )
                    .await?;
            }
        }
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

    async fn count(&self, owner_id: &str) -> StoreResult<u64> {
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT count(*) FROM cron_schedules WHERE owner_id = $1",
                &[&owner_id],
            )
            .await?
            .try_get(0)?;
        Ok(n as u64)
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

    async fn finish(&self, claimed: &ScheduleRow, end: RunEnd) -> StoreResult<bool> {
        let paused = self
            .client()
            .await?
            .query_opt(
                "UPDATE cron_schedules
                 SET running_until = NULL, last_run_ms = $2, next_run_ms = $3,
                     failures = CASE WHEN $4 THEN 0 ELSE failures + 1 END,
                     paused_at = CASE WHEN NOT $4 AND failures + 1 >= $5 THEN $2
                                 ELSE paused_at END
                 WHERE val_id = $1 AND next_run_ms = $6
                 RETURNING paused_at IS NOT NULL",
                &[
                    &claimed.val_id,
                    &end.started_ms,
                    &end.next_run_ms,
                    &end.ok,
                    &end.pause_after,
                    &claimed.next_run_ms,
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
                 WHERE val_id = $1",
                &[&val_id, &next_run_ms],
            )
            .await?;
        Ok(())
    }
}
