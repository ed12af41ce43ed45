//! Bounded capture of a call's stdout and stderr, which share one budget
//! (what one call may add to its owner's logs). Past it, output is dropped
//! and counted, and the text ends with a marker; the guest never sees an
//! error, so a chatty val keeps working.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

#[derive(Clone)]
pub struct Capture {
    budget: Arc<Budget>,
    bytes: Arc<Mutex<Vec<u8>>>,
}

/// What stdout and stderr may keep together, and what they dropped.
struct Budget {
    limit: usize,
    kept: AtomicUsize,
    dropped: AtomicUsize,
}

impl Capture {
    /// A call's stdout and stderr, keeping at most `limit` bytes together.
    pub fn pair(limit: usize) -> (Self, Self) {
        let budget = Arc::new(Budget {
            limit,
            kept: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        });
        let stream = || Self {
            budget: budget.clone(),
            bytes: Arc::default(),
        };
        (stream(), stream())
    }

    fn push(&self, data: &[u8]) {
        let b = &self.budget;
        // Reserve room first, so the two streams never keep more than the
        // limit between them.
        let room = b
            .kept
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
                Some(kept + data.len().min(b.limit.saturating_sub(kept)))
            })
            .map_or(0, |kept| data.len().min(b.limit.saturating_sub(kept)));
        if room < data.len() {
            b.dropped.fetch_add(data.len() - room, Ordering::Relaxed);
        }
        if room > 0 {
            let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
            bytes.extend_from_slice(&data[..room]);
        }
    }

    /// The captured text, and the pair's budget and buffers emptied: what
    /// one call of a reused instance wrote, the next starting afresh.
    pub fn take_pair(out: &Self, err: &Self) -> (String, String) {
        let texts = (out.text(), err.text());
        for capture in [out, err] {
            capture
                .bytes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        out.budget.kept.store(0, Ordering::Relaxed);
        out.budget.dropped.store(0, Ordering::Relaxed);
        texts
    }

    /// The captured text (lossy UTF-8), with a marker when output was cut.
    pub fn text(&self) -> String {
        let bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        let dropped = self.budget.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            text.push_str(&format!(
                "\n[output cut: a call keeps {} bytes of stdout and stderr together; {dropped} more were dropped]",
                self.budget.limit
            ));
        }
        text
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_streams_share_the_limit_and_mark_the_cut() {
        let (out, err) = Capture::pair(5);
        out.push(b"abc");
        assert_eq!(out.text(), "abc");
        err.push(b"defg");
        out.push(b"h");
        assert!(
            out.text().starts_with("abc\n[output cut:"),
            "{}",
            out.text()
        );
        assert!(err.text().starts_with("de\n[output cut:"), "{}", err.text());
        assert!(
            err.text().ends_with("; 3 more were dropped]"),
            "{}",
            err.text()
        );
    }
}
