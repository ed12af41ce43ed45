//! Call logs: one record per call, written off the request path by a
//! batching writer (read back by `api::logs`), and kept per val within a
//! size and an age, so that strangers calling a val cannot fill the disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use valbox_store::CallLogs;
pub use valbox_store::LogRecord;

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
    pub fn start(
        store: Arc<dyn CallLogs>,
        retention: Retention,
    ) -> (Self, tokio::task::JoinHandle<()>) {
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
                            match store.sweep(cutoff).await {
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
                if let Err(e) = store.append(records, limit).await {
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

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
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
