//! Cron schedules in SQLite: one server, whose single connection makes
//! each claim and each count-then-insert atomic; the hold a claim writes
//! is its token.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use super::Sqlite;
use crate::{RunEnd, ScheduleRow, Schedules, StoreResult};

const COLUMNS: &str =
    "val_id, owner_id, schedule, next_run_ms, last_run_ms, failures, paused_at, running_until";

fn row(r: &Row<'_>) -> rusqlite::Result<ScheduleRow> {
    Ok(ScheduleRow {
        val_id: r.get(0)?,
        owner_id: r.get(1)?,
        schedule: r.get(2)?,
        next_run_ms: r.get(3)?,
        last_run_ms: r.get(4)?,
        failures: r.get(5)?,
        paused_at: r.get(6)?,
        running_until: r.get(7)?,
    })
}

#[async_trait]
impl Schedules for Sqlite {
    async fn set(
        &self,
        val_id: &str,
        owner_id: &str,
        (text, next): (&str, i64),
        limit: u64,
    ) -> StoreResult<bool> {
        let (val, owner, text) = (val_id.to_owned(), owner_id.to_owned(), text.to_owned());
        self.run(move |conn| {
            let others: i64 = conn.query_row(
                "SELECT count(*) FROM cron_schedules WHERE owner_id = ?1 AND val_id <> ?2",
                [&owner, &val],
                |r| r.get(0),
            )?;
            if others as u64 >= limit {
                return Ok(false);
            }
            conn.execute(
                "INSERT INTO cron_schedules (val_id, owner_id, schedule, next_run_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (val_id) DO UPDATE
                 SET schedule = ?3, next_run_ms = ?4, failures = 0, paused_at = NULL",
                params![val, owner, text, next],
            )?;
            Ok(true)
        })
        .await
    }

    async fn remove(&self, val_id: &str) -> StoreResult<()> {
        let val = val_id.to_owned();
        self.run(move |conn| {
            conn.execute("DELETE FROM cron_schedules WHERE val_id = ?1", [val])?;
            Ok(())
        })
        .await
    }

    async fn get(&self, val_id: &str) -> StoreResult<Option<ScheduleRow>> {
        let val = val_id.to_owned();
        self.run(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM cron_schedules WHERE val_id = ?1"
                ))?
                .query_row([val], row)
                .optional()?)
        })
        .await
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        hold_until_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<ScheduleRow>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "UPDATE cron_schedules SET running_until = ?2
                 WHERE val_id IN (
                     SELECT val_id FROM cron_schedules
                     WHERE next_run_ms <= ?1 AND paused_at IS NULL
                       AND (running_until IS NULL OR running_until < ?1)
                     ORDER BY next_run_ms LIMIT ?3)
                 RETURNING {COLUMNS}"
            ))?;
            let rows = stmt.query_map(params![now_ms, hold_until_ms, limit], row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn extend(&self, claimed: &ScheduleRow, hold_until_ms: i64) -> StoreResult<bool> {
        let (val, hold) = (claimed.val_id.clone(), claimed.running_until);
        self.run(move |conn| {
            let extended = conn.execute(
                "UPDATE cron_schedules SET running_until = ?3
                 WHERE val_id = ?1 AND running_until = ?2",
                params![val, hold, hold_until_ms],
            )?;
            Ok(extended == 1)
        })
        .await
    }

    async fn finish(&self, claimed: &ScheduleRow, end: RunEnd) -> StoreResult<bool> {
        let (val, hold, schedule) = (
            claimed.val_id.clone(),
            claimed.running_until,
            claimed.schedule.clone(),
        );
        self.run(move |conn| {
            let paused: Option<bool> = conn
                .query_row(
                    "UPDATE cron_schedules
                     SET running_until = NULL, last_run_ms = ?3,
                         next_run_ms = CASE WHEN schedule = ?4 THEN ?5 ELSE next_run_ms END,
                         failures = CASE WHEN ?6 IS NULL THEN failures
                                         WHEN ?6 THEN 0 ELSE failures + 1 END,
                         paused_at = CASE WHEN NOT ?6 AND failures + 1 >= ?7 THEN ?3
                                          ELSE paused_at END
                     WHERE val_id = ?1 AND running_until = ?2
                     RETURNING paused_at IS NOT NULL",
                    params![
                        val,
                        hold,
                        end.started_ms,
                        schedule,
                        end.next_run_ms,
                        end.ok,
                        end.pause_after
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(paused.unwrap_or(false))
        })
        .await
    }

    async fn unpause(&self, val_id: &str, next_run_ms: i64) -> StoreResult<()> {
        let val = val_id.to_owned();
        self.run(move |conn| {
            conn.execute(
                "UPDATE cron_schedules SET paused_at = NULL, failures = 0, next_run_ms = ?2
                 WHERE val_id = ?1 AND paused_at IS NOT NULL",
                params![val, next_run_ms],
            )?;
            Ok(())
        })
        .await
    }
}
