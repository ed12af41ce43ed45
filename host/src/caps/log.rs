//! Call logs: one record per call, written off the request path by a
//! batching writer, and read back through `GET /v1/telemetry/logs` in the
//! OpenTelemetry-like shape Val Town uses.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::api::Authed;
use crate::app::App;
use crate::auth::Scope;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};

#[derive(Clone, Debug)]
pub struct LogRecord {
    pub owner_id: String,
    pub val_id: String,
    pub val_name: String,
    pub version: i64,
    /// `http` or `run`.
    pub trigger: &'static str,
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
    dropped: Arc<AtomicU64>,
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
        (Self { tx, dropped }, writer)
    }

    pub fn record(&self, record: LogRecord) {
        // Full only when the writer is far behind; closed only during
        // shutdown, after the writer stopped.
        if let Err(TrySendError::Full(_)) = self.tx.try_send(record) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
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
               duration_us, fuel_used, stdout, stderr, error, cpu_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
                r.cpu_us
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[derive(Deserialize)]
struct LogQuery {
    limit: Option<i64>,
    direction: Option<String>,
    /// Unix nanoseconds or RFC 3339.
    start: Option<String>,
    end: Option<String>,
    /// Only this val's calls (Valbox's addition).
    val_id: Option<String>,
}

pub fn routes() -> Router<App> {
    Router::new().route("/v1/telemetry/logs", get(list_route))
}

fn parse_time(name: &str, text: &str) -> ApiResult<i64> {
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(ns);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos()).unwrap_or(if t.year() < 1970 { i64::MIN } else { i64::MAX }))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("`{name}` must be Unix nanoseconds or an RFC 3339 time like 2026-01-02T03:04:05Z"),
            )
        })
}

async fn list_route(
    State(app): State<App>,
    Authed(who): Authed,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<Value>> {
    who.require(Scope::ValRead)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`limit` must be between 1 and 1000",
        ));
    }
    let ascending = match q.direction.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("`direction` must be `asc` or `desc`, not `{other}`"),
            ));
        }
    };
    let start = q
        .start
        .as_deref()
        .map(|t| parse_time("start", t))
        .transpose()?;
    let end = q.end.as_deref().map(|t| parse_time("end", t)).transpose()?;
    let owner = who.user_id.clone();
    let val_id = q.val_id.clone();
    let rows = app
        .db
        .call(move |conn| {
            let order = if ascending { "ASC" } else { "DESC" };
            let mut stmt = conn.prepare(&format!(
                "SELECT * FROM call_logs WHERE owner_id = ?1
                   AND (?2 IS NULL OR val_id = ?2)
                   AND (?3 IS NULL OR time_ns >= ?3)
                   AND (?4 IS NULL OR time_ns < ?4)
                 ORDER BY time_ns {order}, id {order} LIMIT ?5"
            ))?;
            let rows = stmt.query_map(params![owner, val_id, start, end, limit], row_to_json)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(
        json!({ "data": rows, "links": { "self": "/v1/telemetry/logs" } }),
    ))
}

fn row_to_json(r: &rusqlite::Row) -> rusqlite::Result<Value> {
    let status: u16 = r.get("status")?;
    let error: Option<String> = r.get("error")?;
    let trigger: String = r.get("trigger")?;
    let id: i64 = r.get("id")?;
    let body = match &error {
        Some(e) => e.clone(),
        None => format!("{trigger} call answered {status}"),
    };
    Ok(json!({
        "timeUnixNano": r.get::<_, i64>("time_ns")?.to_string(),
        "severityText": if error.is_some() { "ERROR" } else { "INFO" },
        "body": body,
        "traceId": format!("{id:032x}"),
        "attributes": {
            "val.id": r.get::<_, String>("val_id")?,
            "val.name": r.get::<_, String>("val_name")?,
            "val.version": r.get::<_, i64>("version")?,
            "trigger": trigger,
            "http.status": status,
            "duration_ms": r.get::<_, i64>("duration_us")? as f64 / 1000.0,
            "cpu_ms": r.get::<_, i64>("cpu_us")? as f64 / 1000.0,
            "fuel_used": r.get::<_, i64>("fuel_used")?,
            "stdout": r.get::<_, String>("stdout")?,
            "stderr": r.get::<_, String>("stderr")?,
            "error": error,
        },
    }))
}
