//! The embedded metadata store: one SQLite file (`valbox.db`) in WAL mode
//! with `synchronous=FULL`, so a write acknowledged to a client survives a
//! crash. One connection, used on the blocking pool, serves every
//! aggregate; a multi-row write is one transaction.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::Connection;

use crate::{Store, StoreError, StoreResult};

mod blobs;
mod call_logs;
mod env;
mod health;
mod homes;
mod mail_queue;
mod outbox;
mod quota;
mod schedules;
mod scopes;
mod sessions;
mod tokens;
mod typed;
mod users;
mod vals;

/// Open (creating and migrating) the store in `path`.
pub fn open(path: &Path) -> anyhow::Result<Store> {
    Ok(Sqlite::open(path)?.store())
}

/// The embedded implementation of every aggregate.
#[derive(Clone)]
pub struct Sqlite {
    db: Db,
    owner_locks: Arc<crate::owner_locks::OwnerLocks>,
}

impl Sqlite {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            db: Db::open(path)?,
            owner_locks: Arc::new(crate::owner_locks::OwnerLocks::new()),
        })
    }

    pub fn store(&self) -> Store {
        Store::of(Arc::new(self.clone()))
    }

    /// The connection, for tests that reach under the interface.
    pub fn db(&self) -> &Db {
        &self.db
    }

    async fn run<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&mut Connection) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        self.db.call(f).await
    }
}

/// Each entry migrates the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE TABLE vals (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    privacy TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (owner_id, name)
);
CREATE TABLE versions (
    val_id TEXT NOT NULL REFERENCES vals(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (val_id, version)
);
CREATE TABLE env_vars (
    val_id TEXT NOT NULL REFERENCES vals(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (val_id, key)
);
CREATE TABLE call_logs (
    id INTEGER PRIMARY KEY,
    owner_id TEXT NOT NULL,
    val_id TEXT NOT NULL,
    val_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    status INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    fuel_used INTEGER NOT NULL,
    stdout TEXT NOT NULL,
    stderr TEXT NOT NULL,
    error TEXT
);
CREATE INDEX call_logs_owner_time ON call_logs (owner_id, time_ns);
"#,
    r#"
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE blobs (
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    PRIMARY KEY (owner_id, key)
);
"#,
    // Hosts a val may fetch from, space-separated; NULL means any public host.
    "ALTER TABLE vals ADD COLUMN fetch_allowlist TEXT;",
    r#"
CREATE TABLE emails (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    val_id TEXT,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX emails_due ON emails (status, next_attempt_at);
CREATE INDEX emails_owner ON emails (owner_id, created_at);
"#,
    // The time each call held a slot to run wasm (older records: 0).
    "ALTER TABLE call_logs ADD COLUMN cpu_us INTEGER NOT NULL DEFAULT 0;",
    // The libraries a version imports, in the order its deploy named them.
    // `library_version` NULL: the owner's own library, following its latest
    // version. No foreign key on the library: a deleted library makes its
    // callers fail with a clear error rather than vanish from under them.
    r#"
CREATE TABLE version_libraries (
    val_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    library_id TEXT NOT NULL,
    library_version INTEGER,
    grants TEXT NOT NULL,
    PRIMARY KEY (val_id, version, position),
    FOREIGN KEY (val_id, version) REFERENCES versions (val_id, version) ON DELETE CASCADE
);
"#,
    // The val that called, for calls of vals by vals (trigger `api`).
    "ALTER TABLE call_logs ADD COLUMN caller TEXT;",
    // What each token and val did with its scopes; what vals asked for;
    // which owners a scope migration has written to.
    r#"
CREATE TABLE scope_usage (
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    used_count INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER,
    denied_count INTEGER NOT NULL DEFAULT 0,
    last_denied_at INTEGER,
    PRIMARY KEY (subject_kind, subject_id, scope)
);
CREATE TABLE scope_requests (
    id TEXT PRIMARY KEY,
    val_id TEXT NOT NULL REFERENCES vals(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    status TEXT NOT NULL,
    denied_count INTEGER NOT NULL,
    first_denied_at INTEGER NOT NULL,
    last_denied_at INTEGER NOT NULL,
    mailed_at INTEGER,
    decided_at INTEGER,
    UNIQUE (val_id, scope)
);
CREATE TABLE scope_notices (
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (subject_kind, subject_id, scopes)
);
"#,
    // The web UI's sign-in links (single use) and sessions; only hashes
    // of their secrets are stored.
    r#"
CREATE TABLE login_links (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
"#,
    // Blob versions (ETags) for conditional writes; never reused.
    "ALTER TABLE blobs ADD COLUMN etag TEXT; UPDATE blobs SET etag = lower(hex(randomblob(12)));",
    // What each call log record weighs, and each val's total: logs are kept
    // per val within a size (`services::call_log`).
    r#"
ALTER TABLE call_logs ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE call_logs SET bytes = 128 + length(val_name) + length(stdout) + length(stderr)
    + coalesce(length(error), 0) + coalesce(length(caller), 0);
CREATE INDEX call_logs_val ON call_logs (val_id, id);
CREATE TABLE call_log_usage (
    val_id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT INTO call_log_usage SELECT val_id, owner_id, sum(bytes) FROM call_logs GROUP BY val_id;
"#,
    // Mail the platform sends (sign-in links, notices) has a budget of its
    // own, apart from what vals and tokens send.
    "ALTER TABLE emails ADD COLUMN platform INTEGER NOT NULL DEFAULT 0;",
    // A value sealed with the server's key, which every later start (every
    // node) must open: a wrong key is refused at start, not found later.
    "CREATE TABLE key_check (id INTEGER PRIMARY KEY CHECK (id = 1), nonce BLOB NOT NULL, ciphertext BLOB NOT NULL);",
    // Room held for blob writes in flight: a write reserves, puts its
    // object, then settles, with no lock held while the bytes travel.
    r#"
CREATE TABLE blob_reservations (
    id INTEGER PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX blob_reservations_owner ON blob_reservations (owner_id, expires_at);
"#,
    // Each owner's SQLite database's home node, as a lease: the node, its
    // internal address, a fencing number that grows with every holder, and
    // when the lease runs out.
    r#"
CREATE TABLE database_homes (
    owner_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    address TEXT NOT NULL,
    fencing INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- The database file's size as its home last saw it, for the storage
    -- quota on every node.
    size INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX database_homes_node ON database_homes (node_id);
"#,
    // The replica of the database a new holder restores, and the last node
    // that served it (whose own file is then the newest).
    "ALTER TABLE database_homes ADD COLUMN replica TEXT;
     ALTER TABLE database_homes ADD COLUMN served_by TEXT;",
    // Cron vals' schedules: when each is next due, and the run that holds
    // it (until `running_until`).
    r#"
CREATE TABLE cron_schedules (
    val_id TEXT PRIMARY KEY REFERENCES vals(id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    schedule TEXT NOT NULL,
    next_run_ms INTEGER NOT NULL,
    last_run_ms INTEGER,
    running_until INTEGER,
    failures INTEGER NOT NULL DEFAULT 0,
    paused_at INTEGER
);
CREATE INDEX cron_schedules_due ON cron_schedules (next_run_ms) WHERE paused_at IS NULL;
CREATE INDEX cron_schedules_owner ON cron_schedules (owner_id);
"#,
    // Mail received for email vals, from its acknowledgement to its
    // delivery (`running_until`: the delivery that holds it).
    r#"
CREATE TABLE inbound_mail (
    id TEXT PRIMARY KEY,
    val_id TEXT NOT NULL REFERENCES vals(id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    envelope_from TEXT NOT NULL,
    envelope_to TEXT NOT NULL,
    raw BLOB NOT NULL,
    size INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    running_until INTEGER,
    last_error TEXT
);
CREATE INDEX inbound_mail_due ON inbound_mail (next_attempt_ms);
CREATE INDEX inbound_mail_val ON inbound_mail (val_id);
"#,
    // Indexes that cover the sums and the claim: in a row, `raw` comes
    // before `size` and `running_until`, and reading past a 10 MB blob
    // walks its overflow pages (25 ms a sum over ten of them, measured).
    r#"
DROP INDEX inbound_mail_due;
DROP INDEX inbound_mail_val;
CREATE INDEX inbound_mail_due ON inbound_mail (next_attempt_ms, running_until, id);
CREATE INDEX inbound_mail_val ON inbound_mail (val_id, size);
"#,
    // Calls one instance of the val may serve; 0: a fresh one each call.
    "ALTER TABLE vals ADD COLUMN reuse INTEGER NOT NULL DEFAULT 0;",
];

/// A shared handle to the metadata database. Every query runs on the
/// blocking pool so the async runtime never waits on disk.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut conn =
            Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Run `f` with the connection on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&mut Connection) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?
    }

    /// Run `f` on the current thread: for tools and tests that reach under
    /// the interface (another process's view of the file).
    pub fn call_blocking<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database from before the last migration, with a call log in it,
    /// moves to the current schema and keeps its rows.
    #[test]
    fn an_existing_database_gains_cpu_time_in_its_call_logs() {
        let mut conn = Connection::open_in_memory().unwrap();
        let cpu_us = MIGRATIONS
            .iter()
            .position(|sql| sql.contains("cpu_us"))
            .unwrap();
        for sql in &MIGRATIONS[..cpu_us] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", cpu_us).unwrap();
        conn.execute(
            "INSERT INTO call_logs (owner_id, val_id, val_name, version, trigger, time_ns,
               status, duration_us, fuel_used, stdout, stderr)
             VALUES ('o', 'v', 'n', 1, 'http', 0, 200, 5, 0, '', '')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let cpu: i64 = conn
            .query_row("SELECT cpu_us FROM call_logs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(cpu, 0);
    }
}
