//! Call logs, in PostgreSQL.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use valbox_model::Trigger;

use super::{Postgres, lock, typed};
use crate::stored::known;
use crate::{CallLogs, CallSummary, LogQuery, LogRecord, LoggedCall, StoreResult};

/// Records one sweep step deletes, so no transaction runs long.
const SWEEP_STEP: i64 = 2000;

fn logged_from_row(r: &Row) -> StoreResult<LoggedCall> {
    Ok(LoggedCall {
        id: r.try_get("id")?,
        record: LogRecord {
            owner_id: r.try_get("owner_id")?,
            val_id: r.try_get("val_id")?,
            val_name: r.try_get("val_name")?,
            version: r.try_get("version")?,
            trigger: typed(r, "trigger", known(Trigger::parse))?,
            caller: r.try_get("caller")?,
            time_ns: r.try_get("time_ns")?,
            status: r.try_get::<_, i32>("status")? as u16,
            duration_us: r.try_get("duration_us")?,
            cpu_us: r.try_get("cpu_us")?,
            fuel_used: r.try_get::<_, i64>("fuel_used")? as u64,
            stdout: r.try_get("stdout")?,
            stderr: r.try_get("stderr")?,
            error: r.try_get("error")?,
        },
    })
}

async fn insert(c: &impl GenericClient, r: &LogRecord) -> StoreResult<()> {
    c.execute(
        "INSERT INTO call_logs (owner_id, val_id, val_name, version, trigger, time_ns, status,
           duration_us, fuel_used, stdout, stderr, error, cpu_us, caller, bytes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        &[
            &r.owner_id,
            &r.val_id,
            &r.val_name,
            &r.version,
            &r.trigger.as_str(),
            &r.time_ns,
            &i32::from(r.status),
            &r.duration_us,
            &(r.fuel_used as i64),
            &r.stdout,
            &r.stderr,
            &r.error,
            &r.cpu_us,
            &r.caller,
            &r.bytes(),
        ],
    )
    .await?;
    Ok(())
}

/// Delete val `val_id`'s oldest records until it keeps at most `target`
/// of its `total` bytes.
async fn trim_val(
    c: &impl GenericClient,
    val_id: &str,
    total: i64,
    target: i64,
) -> StoreResult<()> {
    let rows = c
        .query(
            "SELECT id, bytes FROM call_logs WHERE val_id = $1 ORDER BY id",
            &[&val_id],
        )
        .await?;
    let (mut last, mut kept) = (None, total);
    for row in &rows {
        if kept <= target {
            break;
        }
        last = Some(row.try_get::<_, i64>(0)?);
        kept -= row.try_get::<_, i64>(1)?;
    }
    if let Some(last) = last {
        c.execute(
            "DELETE FROM call_logs WHERE val_id = $1 AND id <= $2",
            &[&val_id, &last],
        )
        .await?;
        c.execute(
            "UPDATE call_log_usage SET bytes = $2 WHERE val_id = $1",
            &[&val_id, &kept.max(0)],
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl CallLogs for Postgres {
    /// Telemetry that no client waits on: committed without waiting for
    /// the flush to disk (`synchronous_commit = off` for this transaction).
    async fn append(&self, records: Vec<LogRecord>, bytes_per_val: i64) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SET LOCAL synchronous_commit = off", &[])
            .await?;
        let mut added: HashMap<(&str, &str), i64> = HashMap::new();
        for r in &records {
            insert(&tx, r).await?;
            *added.entry((&r.val_id, &r.owner_id)).or_default() += r.bytes();
        }
        for ((val_id, owner_id), bytes) in added {
            // Nodes writing the same val's logs trim it one at a time.
            lock(&tx, &format!("logs/{val_id}")).await?;
            let total: i64 = tx
                .query_one(
                    "INSERT INTO call_log_usage (val_id, owner_id, bytes) VALUES ($1, $2, $3)
                     ON CONFLICT (val_id) DO UPDATE
                       SET bytes = call_log_usage.bytes + excluded.bytes
                     RETURNING bytes",
                    &[&val_id, &owner_id, &bytes],
                )
                .await?
                .try_get(0)?;
            if total > bytes_per_val {
                trim_val(&tx, val_id, total, bytes_per_val / 4 * 3).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sweep(&self, cutoff: i64) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "DELETE FROM call_logs WHERE id IN (
                   SELECT id FROM call_logs WHERE time_ns < $2 ORDER BY id LIMIT $1)
                 RETURNING val_id, bytes",
                &[&SWEEP_STEP, &cutoff],
            )
            .await?;
        let mut freed: HashMap<String, i64> = HashMap::new();
        for row in &rows {
            *freed.entry(row.try_get(0)?).or_default() += row.try_get::<_, i64>(1)?;
        }
        for (val_id, bytes) in &freed {
            tx.execute(
                "UPDATE call_log_usage SET bytes = greatest(bytes - $2, 0) WHERE val_id = $1",
                &[val_id, bytes],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as i64 == SWEEP_STEP)
    }

    async fn list(&self, q: LogQuery) -> StoreResult<(Vec<LoggedCall>, bool)> {
        let order = if q.ascending { "ASC" } else { "DESC" };
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT * FROM call_logs WHERE owner_id = $1
                       AND ($2::TEXT IS NULL OR val_id = $2)
                       AND ($3::BIGINT IS NULL OR time_ns >= $3)
                       AND ($4::BIGINT IS NULL OR time_ns < $4)
                     ORDER BY time_ns {order}, id {order} LIMIT $5"
                ),
                &[&q.owner_id, &q.val_id, &q.start, &q.end, &q.limit],
            )
            .await?;
        // A page is bounded by bytes as well as by count.
        let (mut page, mut bytes) = (Vec::new(), 0);
        for row in &rows {
            let logged = logged_from_row(row)?;
            bytes += logged.record.bytes();
            page.push(logged);
            if bytes >= q.page_bytes {
                break;
            }
        }
        let cut = page.len() < rows.len();
        Ok((page, cut))
    }

    async fn recent(&self, val_id: &str, limit: u32) -> StoreResult<Vec<CallSummary>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT time_ns, status, duration_us, fuel_used, error FROM call_logs
                 WHERE val_id = $1 ORDER BY time_ns DESC LIMIT $2",
                &[&val_id, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CallSummary {
                    time_ms: r.try_get::<_, i64>(0)? / 1_000_000,
                    status: r.try_get::<_, i32>(1)? as u16,
                    duration_us: r.try_get(2)?,
                    fuel_used: r.try_get(3)?,
                    error: r.try_get(4)?,
                })
            })
            .collect()
    }
}
