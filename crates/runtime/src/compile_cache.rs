//! Cranelift's incremental compilation cache, on disk: compiled functions
//! by a SHA-256 of their IR and the compiler's settings. A component whose
//! functions were compiled before compiles only what is new, which is most
//! of the point for vals in JavaScript or Python: each one carries the same
//! language engine, and only its own code and data differ.
//!
//! Uploads add to it, so it is bounded: past its size the functions used
//! least recently go (a function used again is marked at most hourly, so
//! a compile that hits the cache writes little).

use std::borrow::Cow;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};

/// How stale a use mark may get before a hit renews it, in seconds.
const MARK_EVERY_S: i64 = 3600;

/// One SQLite file; a cache, so nothing in it is synced to disk.
pub struct CompileCache {
    state: Mutex<State>,
}

struct State {
    conn: Connection,
    /// Bytes of code held, as this process counts them.
    bytes: u64,
    max_bytes: u64,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompileCache")
    }
}

impl CompileCache {
    /// The cache in `path`, holding at most about `max_bytes` of code.
    pub fn open(path: &Path, max_bytes: u64) -> anyhow::Result<Self> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        // Several servers (the tests') may share one cache file.
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = OFF;
             DROP TABLE IF EXISTS functions;
             CREATE TABLE IF NOT EXISTS compiled (
                 key BLOB PRIMARY KEY,
                 code BLOB NOT NULL,
                 used_at INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS compiled_used ON compiled (used_at);",
        )?;
        let bytes: i64 = conn.query_row(
            "SELECT coalesce(sum(length(code)), 0) FROM compiled",
            [],
            |r| r.get(0),
        )?;
        Ok(Self {
            state: Mutex::new(State {
                conn,
                bytes: bytes.max(0) as u64,
                max_bytes,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Drop the least recently used functions until the cache holds at
    /// most three quarters of its bound.
    fn evict(&mut self) -> rusqlite::Result<()> {
        let target = self.max_bytes / 4 * 3;
        while self.bytes > target {
            let oldest: Vec<(Vec<u8>, i64)> = self
                .conn
                .prepare_cached(
                    "SELECT key, length(code) FROM compiled ORDER BY used_at LIMIT 256",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if oldest.is_empty() {
                self.bytes = 0;
                break;
            }
            let mut delete = self
                .conn
                .prepare_cached("DELETE FROM compiled WHERE key = ?1")?;
            for (key, len) in oldest {
                delete.execute([key])?;
                self.bytes = self.bytes.saturating_sub(len.max(0) as u64);
                if self.bytes <= target {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl wasmtime::CacheStore for CompileCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let state = self.lock();
        let mut lookup = state
            .conn
            .prepare_cached("SELECT code, used_at FROM compiled WHERE key = ?1")
            .ok()?;
        let (code, used_at): (Vec<u8>, i64) = lookup
            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ok()??;
        let now = now_s();
        if now - used_at > MARK_EVERY_S {
            let _ = state.conn.execute(
                "UPDATE compiled SET used_at = ?2 WHERE key = ?1",
                params![key, now],
            );
        }
        Some(Cow::Owned(code))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut state = self.lock();
        let len = value.len() as u64;
        let added = state
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO compiled (key, code, used_at) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut insert| insert.execute(params![key, value, now_s()]));
        match added {
            Ok(n) => {
                state.bytes += len * n as u64;
                if state.bytes > state.max_bytes
                    && let Err(e) = state.evict()
                {
                    tracing::warn!("evicting from the compile cache: {e}");
                }
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore;

    #[test]
    fn the_least_recently_used_go_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(&dir.path().join("c.sqlite3"), 4000).unwrap();
        for i in 0..4u8 {
            assert!(cache.insert(&[i], vec![i; 1000]));
        }
        assert_eq!(cache.lock().bytes, 4000);
        // Make key 0 the most recently used, then pass the bound.
        cache
            .lock()
            .conn
            .execute(
                "UPDATE compiled SET used_at = used_at + 10 WHERE key = x'00'",
                [],
            )
            .unwrap();
        assert!(cache.insert(&[9], vec![9; 1000]));
        assert!(cache.lock().bytes <= 3000, "{}", cache.lock().bytes);
        assert!(cache.get(&[0]).is_some(), "recently used stays");
        assert!(cache.get(&[9]).is_some(), "just added stays");
        assert!(cache.get(&[1]).is_none(), "least recently used goes");
    }
}
