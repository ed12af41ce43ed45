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
}

#[derive(Default)]
pub struct IdleConnections {
    by_owner: Mutex<HashMap<String, Vec<(Hardened, Instant)>>>,
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

    /// Keep `conn` for `owner`'s next operation if it is as it was opened
    /// and there is room; close it otherwise. Blocking (closing may
    /// checkpoint): call it on a SQL thread.
    pub fn put(&self, owner: &str, conn: Hardened) {
        let now = Instant::now();
        let mut closing = Vec::new();
        if !conn.conn.is_autocommit() || conn.verdicts.used_temp_schema() {
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
