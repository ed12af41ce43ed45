//! Call logs, in SQLite.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use valbox_model::Trigger;

use super::{Sqlite, typed};
use crate::{CallLogs, CallSummary, LogQuery, LogRecord, LoggedCall, StoreResult};

/// Records one sweep step deletes, so the database is never held long.
const SWEEP_STEP: i64 = 2000;

fn logged_from_row(r: &Row) -> rusqlite::Result<LoggedCall> {
    Ok(LoggedCall {
        id: r.get("id")?,
        record: LogRecord {
            owner_id: r.get("owner_id")?,
            val_id: r.get("val_id")?,
            val_name: r.get("val_name")?,
            version: r.get("version")?,
            trigger: typed::column(r, "trigger", typed::known(Trigger::parse))?,
            caller: r.get("caller")?,
            time_ns: r.get("time_ns")?,
            status: r.get("status")?,
            duration_us: r.get("duration_us")?,
            cpu_us: r.get("cpu_us")?,
            fuel_used: r.get::<_, i64>("fuel_used")? as u64,
            stdout: r.get("stdout")?,
            stderr: r.get("stderr")?,
            error: r.get("error")?,
        },
    })
}

/// Call logs are telemetry that no client waits on, so a batch commits
/// without an fsync: in WAL mode, `synchronous = NORMAL` survives a crash
/// or kill of this process and can lose only the newest records to a power
/// cut. Everything a client is told was stored keeps `FULL`.
fn append(conn: &mut Connection, records: &[LogRecord], limit: i64) -> StoreResult<()> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let written = insert_rows(conn, records, limit);
    conn.pragma_update(None, "synchronous", "FULL")?;
    written
}

fn insert_rows(conn: &mut Connection, records: &[LogRecord], limit: i64) -> StoreResult<()> {
    let tx = conn.transaction()?;
    let mut added: HashMap<(&str, &str), i64> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO call_logs (owner_id, val_id, val_name, version, trigger, time_ns, status,
               duration_us, fuel_used, stdout, stderr, error, cpu_us, caller, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        for r in records {
            let bytes = r.bytes();
            *added.entry((&r.val_id, &r.owner_id)).or_default() += bytes;
            stmt.execute(params![
                r.owner_id,
                r.val_id,
                r.val_name,
                r.version,
                r.trigger.as_str(),
                r.time_ns,
                r.status,
                r.duration_us,
                r.fuel_used as i64,
                r.stdout,
                r.stderr,
                r.error,
                r.cpu_us,
                r.caller,
                bytes
            ])?;
        }
    }
    for ((val_id, owner_id), bytes) in added {
        let total: i64 = tx.query_row(
            "INSERT INTO call_log_usage (val_id, owner_id, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT (val_id) DO UPDATE SET bytes = bytes + excluded.bytes
             RETURNING bytes",
            params![val_id, owner_id, bytes],
            |r| r.get(0),
        )?;
        if total > limit {
            trim_val(&tx, val_id, total, limit / 4 * 3)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Delete val `val_id`'s oldest records until it keeps at most `target`
/// of its `total` bytes.
fn trim_val(conn: &Connection, val_id: &str, total: i64, target: i64) -> StoreResult<()> {
    let mut last = None;
    let mut kept = total;
    {
        let mut stmt =
            conn.prepare_cached("SELECT id, bytes FROM call_logs WHERE val_id = ?1 ORDER BY id")?;
        let mut rows = stmt.query([val_id])?;
        while kept > target
            && let Some(row) = rows.next()?
        {
            last = Some(row.get::<_, i64>(0)?);
            kept -= row.get::<_, i64>(1)?;
        }
    }
    if let Some(last) = last {
        conn.execute(
            "DELETE FROM call_logs WHERE val_id = ?1 AND id <= ?2",
            params![val_id, last],
        )?;
        conn.execute(
            "UPDATE call_log_usage SET bytes = ?2 WHERE val_id = ?1",
            params![val_id, kept.max(0)],
        )?;
    }
    Ok(())
}

/// Records are looked at in the order they were written, which is their
/// order in time but for a call's length.
fn sweep_step(conn: &mut Connection, cutoff: i64) -> StoreResult<bool> {
    let tx = conn.transaction()?;
    let oldest: Option<i64> = tx
        .query_row(
            "SELECT time_ns FROM call_logs ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if oldest.is_none_or(|t| t >= cutoff) {
        return Ok(false);
    }
    let mut freed: HashMap<String, i64> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached(
            "DELETE FROM call_logs WHERE id IN (SELECT id FROM call_logs ORDER BY id LIMIT ?1)
               AND time_ns < ?2
             RETURNING val_id, bytes",
        )?;
        let mut rows = stmt.query(params![SWEEP_STEP, cutoff])?;
        while let Some(row) = rows.next()? {
            *freed.entry(row.get(0)?).or_default() += row.get::<_, i64>(1)?;
        }
    }
    let done = freed.is_empty();
    for (val_id, bytes) in freed {
        tx.execute(
            "UPDATE call_log_usage SET bytes = max(bytes - ?2, 0) WHERE val_id = ?1",
            params![val_id, bytes],
        )?;
    }
    tx.commit()?;
    Ok(!done)
}

fn list(conn: &Connection, q: &LogQuery) -> StoreResult<(Vec<LoggedCall>, bool)> {
    let order = if q.ascending { "ASC" } else { "DESC" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT * FROM call_logs WHERE owner_id = ?1
           AND (?2 IS NULL OR val_id = ?2)
           AND (?3 IS NULL OR time_ns >= ?3)
           AND (?4 IS NULL OR time_ns < ?4)
         ORDER BY time_ns {order}, id {order} LIMIT ?5"
    ))?;
    let args = params![q.owner_id, q.val_id, q.start, q.end, q.limit];
    let mut rows = stmt.query_map(args, logged_from_row)?;
    // A page is bounded by bytes as well as by count: a thousand records of
    // chatty calls must not be held in memory at once.
    let (mut page, mut bytes) = (Vec::new(), 0);
    for row in rows.by_ref() {
        let logged = row?;
        bytes += logged.record.bytes();
        page.push(logged);
        if bytes >= q.page_bytes {
            break;
        }
    }
    let cut = rows.next().is_some();
    Ok((page, cut))
}

#[async_trait]
impl CallLogs for Sqlite {
    async fn append(&self, records: Vec<LogRecord>, bytes_per_val: i64) -> StoreResult<()> {
        self.run(move |conn| append(conn, &records, bytes_per_val))
            .await
    }

    async fn sweep(&self, cutoff: i64) -> StoreResult<bool> {
        self.run(move |conn| sweep_step(conn, cutoff)).await
    }

    async fn list(&self, query: LogQuery) -> StoreResult<(Vec<LoggedCall>, bool)> {
        self.run(move |conn| list(conn, &query)).await
    }

    async fn recent(&self, val_id: &str, limit: u32) -> StoreResult<Vec<CallSummary>> {
        let val_id = val_id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT time_ns, status, duration_us, fuel_used, error FROM call_logs
                 WHERE val_id = ?1 ORDER BY time_ns DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![val_id, limit], |r| {
                Ok(CallSummary {
                    time_ms: r.get::<_, i64>(0)? / 1_000_000,
                    status: r.get(1)?,
                    duration_us: r.get(2)?,
                    fuel_used: r.get(3)?,
                    error: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
