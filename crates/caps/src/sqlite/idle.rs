//! Hardened connections kept open between an owner's operations: opening
//! and hardening one costs far more than a short statement. Only a
//! connection left as it was opened comes back: no transaction open and no
//! TEMP schema object, so nothing of one operation is seen by the next but
//! the database itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::policy::Verdicts;

/// Idle connections kept across all owners, and per owner.
const MAX_IDLE: usize = 64;
const MAX_IDLE_PER_OWNER: usize = 4;
/// An idle connection unused this long is closed.
const IDLE_FOR: Duration = Duration::from_secs(30);

/// A hardened connection to one owner's database and the verdicts its
/// authorizer writes to.
pub struct Hardened {
    pub conn: Connection,
    pub verdicts: Verdicts,
    /// The value-size limit it was hardened with.
    pub max_bytes: usize,
    /// Which of the owner's files it opened: see `retire`.
    pub generation: u64,
}

#[derive(Default)]
pub struct IdleConnections {
    by_owner: Mutex<HashMap<String, Vec<(Hardened, Instant)>>>,
    /// How many times each owner's file was retired (replaced by another
    /// node's copy); owners never retired are at 0.
    retired: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for IdleConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by_owner = self.by_owner.lock().unwrap_or_else(|p| p.into_inner());
        let held: usize = by_owner.values().map(Vec::len).sum();
        write!(f, "IdleConnections({held})")
    }
}

impl IdleConnections {
    /// An idle connection to `owner`'s database hardened for `max_bytes`.
    pub fn take(&self, owner: &str, max_bytes: usize) -> Option<Hardened> {
        let mut by_owner = self.by_owner.lock().unwrap_or_else(|p| p.into_inner());
        let idle = by_owner.get_mut(owner)?;
        let at = idle.iter().rposition(|(c, _)| c.max_bytes == max_bytes)?;
        let (conn, _) = idle.remove(at);
        if idle.is_empty() {
            by_owner.remove(owner);
        }
        Some(conn)
    }

    /// Idle connections held now.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        let by_owner = self.by_owner.lock().unwrap_or_else(|p| p.into_inner());
        by_owner.values().map(Vec::len).sum()
    }

    /// The generation of `owner`'s file a connection opened now has.
    pub fn generation(&self, owner: &str) -> u64 {
        let retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        retired.get(owner).copied().unwrap_or(0)
    }

    /// Close `owner`'s idle connections and disown the ones in use, before
    /// its file is replaced. Blocking: call it on a SQL thread.
    pub fn retire(&self, owner: &str) {
        let closing = {
            let mut retired = self.retired.lock().unwrap_or_else(|p| p.into_inner());
            *retired.entry(owner.to_owned()).or_default() += 1;
            let mut by_owner = self.by_owner.lock().unwrap_or_else(|p| p.into_inner());
            by_owner.remove(owner)
        };
        drop(closing);
    }

    /// Keep `conn` for `owner`'s next operation if it is as it was opened
    /// and there is room; close it otherwise. Blocking (closing may
    /// checkpoint): call it on a SQL thread.
    pub fn put(&self, owner: &str, conn: Hardened) {
        let now = Instant::now();
        let mut closing = Vec::new();
        if conn.generation != self.generation(owner) {
            // Its file was replaced while it ran: closing it must not
            // delete the new file's write-ahead log, which has the name
            // this connection knows its own by.
            keep_wal_on_close(&conn.conn);
            closing.push(conn);
        } else if !conn.conn.is_autocommit() || conn.verdicts.used_temp_schema() {
            closing.push(conn);
        } else {
            let mut by_owner = self.by_owner.lock().unwrap_or_else(|p| p.into_inner());
            for idle in by_owner.values_mut() {
                while idle
                    .first()
                    .is_some_and(|(_, since)| now.duration_since(*since) >= IDLE_FOR)
                {
                    closing.push(idle.remove(0).0);
                }
            }
            by_owner.retain(|_, idle| !idle.is_empty());
            let held: usize = by_owner.values().map(Vec::len).sum();
            let mine = by_owner.entry(owner.to_string()).or_default();
            if held < MAX_IDLE && mine.len() < MAX_IDLE_PER_OWNER {
                mine.push((conn, now));
            } else {
                closing.push(conn);
            }
            by_owner.retain(|_, idle| !idle.is_empty());
        }
        // Closed outside the lock.
        drop(closing);
    }
}

/// Have `conn`, when closed, leave its write-ahead log file in place.
fn keep_wal_on_close(conn: &Connection) {
    let mut on: std::ffi::c_int = 1;
    // SAFETY: the handle is this live connection's, used on this thread;
    // SQLITE_FCNTL_PERSIST_WAL reads and writes one int through the
    // pointer, which outlives the call.
    unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut on).cast(),
        );
    }
}
