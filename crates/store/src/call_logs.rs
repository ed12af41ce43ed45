//! Call logs: one record per call, kept per val within a size and an age.

use async_trait::async_trait;

use valbox_model::Trigger;

use crate::StoreResult;

/// One call, as written and as read back.
#[derive(Clone, Debug)]
pub struct LogRecord {
    pub owner_id: String,
    pub val_id: String,
    pub val_name: String,
    pub version: i64,
    pub trigger: Trigger,
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

/// Bytes a record costs besides its text.
const ROW_OVERHEAD: usize = 128;

impl LogRecord {
    /// What the record weighs in the store, roughly: its text and a fixed
    /// share for the other columns and the indexes.
    pub fn bytes(&self) -> i64 {
        let text = self.val_name.len()
            + self.stdout.len()
            + self.stderr.len()
            + self.error.as_ref().map_or(0, String::len)
            + self.caller.as_ref().map_or(0, String::len);
        (ROW_OVERHEAD + text) as i64
    }
}

/// A record read back, with the id that orders it.
#[derive(Clone, Debug)]
pub struct LoggedCall {
    pub id: i64,
    pub record: LogRecord,
}

/// Which of an owner's records to read.
#[derive(Clone, Debug)]
pub struct LogQuery {
    pub owner_id: String,
    pub val_id: Option<String>,
    /// Unix ns, inclusive.
    pub start: Option<i64>,
    /// Unix ns, exclusive.
    pub end: Option<i64>,
    pub ascending: bool,
    pub limit: i64,
    /// A page ends after the record that reaches this many bytes.
    pub page_bytes: i64,
}

/// One call as a val's page lists it.
#[derive(Clone, Debug)]
pub struct CallSummary {
    pub time_ms: i64,
    pub status: u16,
    pub duration_us: i64,
    pub fuel_used: i64,
    pub error: Option<String>,
}

#[async_trait]
pub trait CallLogs: Send + Sync {
    /// Write `records`; a val past `bytes_per_val` loses its oldest, down
    /// to three quarters of it (so trimming is not paid on every batch).
    /// Telemetry that no client waits on: it may skip the flush to disk.
    async fn append(&self, records: Vec<LogRecord>, bytes_per_val: i64) -> StoreResult<()>;
    /// Delete some records of calls that started before `cutoff` (Unix
    /// ns); true if there may be more.
    async fn sweep(&self, cutoff: i64) -> StoreResult<bool>;
    /// A page of records, and whether it was cut short by bytes.
    async fn list(&self, query: LogQuery) -> StoreResult<(Vec<LoggedCall>, bool)>;
    /// The last `limit` calls of a val, newest first.
    async fn recent(&self, val_id: &str, limit: u32) -> StoreResult<Vec<CallSummary>>;
}
