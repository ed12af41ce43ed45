//! Call logs: one record per call, written off the request path by a
//! batching writer (read back by `api::logs`).

use rusqlite::{Connection, params};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::db::Db;

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
    pub fn start(db: Db) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<LogRecord>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let lost = dropped.clone();
        let writer = tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, BATCH).await > 0 {
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
                if let Err(e) = db.call(move |conn| insert_batch(conn, &records)).await {
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
fn insert_batch(conn: &mut Connection, records: &[LogRecord]) -> anyhow::Result<()> {
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let written = insert_rows(conn, records);
    conn.pragma_update(None, "synchronous", "FULL")?;
    written
}

fn insert_rows(conn: &mut Connection, records: &[LogRecord]) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO call_logs (owner_id, val_id, val_name, version, trigger, time_ns, status,
               duration_us, fuel_used, stdout, stderr, error, cpu_us, caller)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for r in records {
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
                r.caller
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
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
