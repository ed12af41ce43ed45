//! Call logs: one record per call, written off the request path by a
//! batching writer (read back by `api::logs`), and kept per val within a
//! size and an age, so that strangers calling a val cannot fill the disk.

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use valbox_store::Db;

#[derive(Clone, Debug)]
pub struct LogRecord {
    pub owner_id: String,
    pub val_id: String,
    pub val_name: String,
    pub version: i64,
    /// `http`, `run` or `api`.
    pub trigger: &'static str,
    /// For `api`: the calling val, `owner/val`.
    pub caller: Option<String>,
    pub time_ns: i64,
    pub status: u16,
    pub duration_us: i64,
    /// Time the call held a slot to run wasm: its CPU time.
    pub cpu_us: i64,
    pub fuel_used: u64,
    pub stdout: String,
    pub stderr: String,
    pub error: Option<String>,
}

impl LogRecord {
    /// What the record weighs in the database, roughly: its text and a
    /// fixed share for the other columns and the indexes.
    fn bytes(&self) -> i64 {
        let text = self.val_name.len()
            + self.stdout.len()
            + self.stderr.len()
            + self.error.as_ref().map_or(0, String::len)
            + self.caller.as_ref().map_or(0, String::len);
        (ROW_OVERHEAD + text) as i64
    }
}

/// Bytes a record costs besides its text.
const ROW_OVERHEAD: usize = 128;

/// Cut `text` to at most `limit` bytes (on a character boundary), saying so:
/// for text the val controls, like the error a script val returns.
pub fn clip(text: &mut String, limit: usize) {
    if text.len() <= limit {
        return;
    }
    let cut = text.floor_char_boundary(limit);
    let dropped = text.len() - cut;
    text.truncate(cut);
    text.push_str(&format!("… [cut: {dropped} more bytes]"));
}

/// How much of its logs each val keeps.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Bytes of records per val; past it the oldest go, down to three
    /// quarters of it (so trimming is not paid on every batch).
    pub bytes_per_val: u64,
    /// Records older than this go.
    pub max_age: Duration,
}

/// How often records past their age are looked for, at most.
const AGE_SWEEP: Duration = Duration::from_secs(60);
/// Records one sweep step deletes, so the database is never held long.
const SWEEP_STEP: i64 = 2000;

/// Most records one transaction writes.
const BATCH: usize = 512;
/// How long the writer waits for more records after the first: the most a
/// record's appearance in the logs is delayed.
const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// Records waiting for the writer at most. If the disk stalls, later
/// records are dropped (and counted) rather than held in memory without
/// bound: a record can carry 128 KiB of captured output.
const QUEUE: usize = 8192;

/// Where calls send their records. Records are written in batches, one
/// transaction per batch, so logging costs a call almost nothing.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::Sender<LogRecord>,
    /// Dropped since the writer last warned of it.
    dropped: Arc<AtomicU64>,
    /// Dropped since the start, for the metrics.
    dropped_total: Arc<AtomicU64>,
}

impl LogSink {
    /// Start the writer; it stops once every sink is dropped and the queue
    /// is drained.
    pub fn start(db: Db, retention: Retention) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<LogRecord>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let lost = dropped.clone();
        let writer = tokio::spawn(async move {
            let mut batch = Vec::new();
            let every = (retention.max_age / 4).clamp(Duration::from_secs(1), AGE_SWEEP);
            let mut sweep = tokio::time::interval(every);
            loop {
                tokio::select! {
                    n = rx.recv_many(&mut batch, BATCH) => if n == 0 { break },
                    _ = sweep.tick() => {
                        let cutoff = now_ns() - retention.max_age.as_nanos() as i64;
                        // One step per turn of the database.
                        loop {
                            match db.call(move |conn| sweep_step(conn, cutoff)).await {
                                Ok(true) => continue,
                                Ok(false) => break,
                                Err(e) => break tracing::error!("removing old call logs: {e:#}"),
                            }
                        }
                        continue;
                    }
                }
                // Let a busy server's records gather: one transaction for
                // many calls instead of a thread hand-off for each. A full
                // batch goes at once.
                if batch.len() < BATCH {
                    tokio::time::sleep(LINGER).await;
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(record) => batch.push(record),
                            Err(_) => break,
                        }
                    }
                }
                let records = std::mem::take(&mut batch);
                let limit = retention.bytes_per_val as i64;
                if let Err(e) = db
                    .call(move |conn| insert_batch(conn, &records, limit))
                    .await
                {
                    tracing::error!("writing call logs: {e:#}");
                }
                let n = lost.swap(0, Ordering::Relaxed);
                if n > 0 {
                    tracing::warn!("dropped {n} call log records: the log writer fell behind");
                }
            }
        });
        let sink = Self {
            tx,
            dropped,
            dropped_total: Arc::default(),
        };
        (sink, writer)
    }

    pub fn record(&self, record: LogRecord) {
        // Full only when the writer is far behind; closed only during
        // shutdown, after the writer stopped.
        if let Err(TrySendError::Full(_)) = self.tx.try_send(record) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_total.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records dropped since the start.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }
}

/// Call logs are telemetry that no client waits on, so a batch commits
/// without an fsync: in WAL mode, `synchronous = NORMAL` survives a crash
/// or kill of this process and can lose only the newest records to a power
/// cut. Everything a client is told was stored keeps `FULL`.
fn insert_batch(conn: &mut Connection, records: &[LogRecord], limit: i64) -> anyhow::Result<()> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let written = insert_rows(conn, records, limit);
    conn.pragma_update(None, "synchronous", "FULL")?;
    written
}

fn insert_rows(conn: &mut Connection, records: &[LogRecord], limit: i64) -> anyhow::Result<()> {
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
                r.trigger,
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
fn trim_val(conn: &Connection, val_id: &str, total: i64, target: i64) -> anyhow::Result<()> {
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

/// Delete some of the records of calls that started before `cutoff` (Unix
/// ns); true if there may be more. Records are looked at in the order they
/// were written, which is their order in time but for a call's length.
fn sweep_step(conn: &mut Connection, cutoff: i64) -> anyhow::Result<bool> {
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

/// Bytes of call logs an owner's vals keep.
pub fn owner_log_bytes(conn: &Connection, owner_id: &str) -> anyhow::Result<i64> {
    Ok(conn.query_row(
        "SELECT coalesce(sum(bytes), 0) FROM call_log_usage WHERE owner_id = ?1",
        [owner_id],
        |r| r.get(0),
    )?)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// One call as a val's page lists it.
pub struct CallSummary {
    pub time_ms: i64,
    pub status: u16,
    pub duration_us: i64,
    pub fuel_used: i64,
    pub error: Option<String>,
}

/// The last `limit` calls of val `val_id`, newest first.
pub fn recent_calls(
    conn: &Connection,
    val_id: &str,
    limit: u32,
) -> anyhow::Result<Vec<CallSummary>> {
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
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clip_cuts_on_a_character_and_says_how_much() {
        let mut text = "héllo".to_string();
        clip(&mut text, 2);
        assert_eq!(text, "h… [cut: 5 more bytes]");
        let mut short = "ok".to_string();
        clip(&mut short, 2);
        assert_eq!(short, "ok");
    }
}
