//! Cranelift's incremental compilation cache, on disk: compiled functions
//! by a SHA-256 of their IR and the compiler's settings. A component whose
//! functions were compiled before compiles only what is new, which is most
//! of the point for vals in JavaScript or Python: each one carries the same
//! language engine, and only its own code and data differ.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension};

/// One SQLite file; a cache, so nothing in it is synced to disk.
pub struct CompileCache {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompileCache")
    }
}

impl CompileCache {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        // Several servers (the tests') may share one cache file.
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = OFF;
             CREATE TABLE IF NOT EXISTS functions (
                 key BLOB PRIMARY KEY,
                 code BLOB NOT NULL
             ) WITHOUT ROWID;",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl wasmtime::CacheStore for CompileCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let conn = self.lock();
        let mut lookup = conn
            .prepare_cached("SELECT code FROM functions WHERE key = ?1")
            .ok()?;
        let code: Option<Vec<u8>> = lookup.query_row([key], |r| r.get(0)).optional().ok()?;
        code.map(Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let conn = self.lock();
        conn.prepare_cached("INSERT OR IGNORE INTO functions (key, code) VALUES (?1, ?2)")
            .and_then(|mut insert| insert.execute((key, value)))
            .is_ok()
    }
}
