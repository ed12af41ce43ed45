//! The metadata store: one SQLite file (`valbox.db`) in WAL mode with
//! `synchronous=FULL`, so a write acknowledged to a client survives a crash.
//! Capabilities keep their own queries in their folders; this module owns
//! the connection, the schema and the core tables (users, tokens, vals,
//! versions).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, Row, params};

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
    pub async fn call<R, F>(&self, f: F) -> anyhow::Result<R>
    where
        F: FnOnce(&mut Connection) -> anyhow::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .context("database task panicked")?
    }

    /// Run `f` on the current thread: for the CLI's admin commands.
    pub fn call_blocking<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
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

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub created_at: i64,
}

impl User {
    fn from_row(r: &Row) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            username: r.get("username")?,
            email: r.get("email")?,
            created_at: r.get("created_at")?,
        })
    }
}

pub fn insert_user(conn: &Connection, username: &str, email: &str) -> anyhow::Result<User> {
    let user = User {
        id: new_id(),
        username: username.into(),
        email: email.into(),
        created_at: now_ms(),
    };
    conn.execute(
        "INSERT INTO users (id, username, email, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![user.id, user.username, user.email, user.created_at],
    )?;
    Ok(user)
}

pub fn user_by_id(conn: &Connection, id: &str) -> anyhow::Result<Option<User>> {
    Ok(conn
        .query_row("SELECT * FROM users WHERE id = ?1", [id], User::from_row)
        .optional()?)
}

pub fn user_by_name(conn: &Connection, username: &str) -> anyhow::Result<Option<User>> {
    Ok(conn
        .query_row(
            "SELECT * FROM users WHERE username = ?1",
            [username],
            User::from_row,
        )
        .optional()?)
}

/// A stored API token, without its secret (only the hash is kept).
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub scopes: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl TokenRow {
    /// Why the token cannot be used at `now`, if it cannot.
    pub fn refusal(&self, now: i64) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("this API token was revoked")
        } else if self.expires_at.is_some_and(|t| t <= now) {
            Some("this API token has expired; create a new one")
        } else {
            None
        }
    }

    /// Whether a use at `now` should be recorded (see [`touch_token`]).
    pub fn last_use_is_stale(&self, now: i64) -> bool {
        self.last_used_at
            .is_none_or(|t| t <= now - LAST_USED_GRAIN_MS)
    }

    fn from_row(r: &Row) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            user_id: r.get("user_id")?,
            name: r.get("name")?,
            scopes: r.get("scopes")?,
            created_at: r.get("created_at")?,
            last_used_at: r.get("last_used_at")?,
            expires_at: r.get("expires_at")?,
            revoked_at: r.get("revoked_at")?,
        })
    }
}

pub fn insert_token(
    conn: &Connection,
    user_id: &str,
    name: &str,
    hash: &str,
    scopes: &str,
    expires_at: Option<i64>,
) -> anyhow::Result<TokenRow> {
    let row = TokenRow {
        id: new_id(),
        user_id: user_id.into(),
        name: name.into(),
        scopes: scopes.into(),
        created_at: now_ms(),
        last_used_at: None,
        expires_at,
        revoked_at: None,
    };
    conn.execute(
        "INSERT INTO tokens (id, user_id, name, hash, scopes, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            row.id,
            row.user_id,
            row.name,
            hash,
            row.scopes,
            row.created_at,
            row.expires_at
        ],
    )?;
    Ok(row)
}

/// Look a token up by hash.
pub fn token_by_hash(conn: &Connection, hash: &str) -> anyhow::Result<Option<TokenRow>> {
    Ok(conn
        .query_row(
            "SELECT * FROM tokens WHERE hash = ?1",
            [hash],
            TokenRow::from_row,
        )
        .optional()?)
}

/// How stale a token's "last used" time may get: each update is a durable
/// write, and a finer grain than this tells its owner nothing more.
const LAST_USED_GRAIN_MS: i64 = 60_000;

/// Record that a live token was used now; callers ask
/// [`TokenRow::last_use_is_stale`] first, so it is written once per grain.
pub fn touch_token(conn: &Connection, id: &str) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2",
        params![now_ms(), id],
    )?;
    Ok(())
}

#[derive(Clone, Debug)]
pub struct ValRow {
    pub id: String,
    pub owner_id: String,
    pub owner_name: String,
    pub name: String,
    pub privacy: String,
    pub description: String,
    pub scopes: String,
    pub created_at: i64,
    /// Hosts the val may fetch from; `None` means any public host.
    pub fetch_allowlist: Option<Vec<String>>,
    /// The newest version, which serves; `None` before the first deploy.
    pub latest: Option<VersionRow>,
}

#[derive(Clone, Debug)]
pub struct VersionRow {
    pub version: i64,
    pub sha256: String,
    pub size: i64,
    pub kind: String,
    pub created_at: i64,
}

impl VersionRow {
    fn from_row(r: &Row) -> rusqlite::Result<Self> {
        Ok(Self {
            version: r.get("version")?,
            sha256: r.get("sha256")?,
            size: r.get("size")?,
            kind: r.get("kind")?,
            created_at: r.get("created_at")?,
        })
    }
}

const VAL_SELECT: &str =
    "SELECT v.*, u.username AS owner_name FROM vals v JOIN users u ON u.id = v.owner_id";

fn val_from_row(conn: &Connection, r: &Row) -> anyhow::Result<ValRow> {
    let id: String = r.get("id")?;
    let latest = conn
        .query_row(
            "SELECT * FROM versions WHERE val_id = ?1 ORDER BY version DESC LIMIT 1",
            [&id],
            VersionRow::from_row,
        )
        .optional()?;
    Ok(ValRow {
        id,
        owner_id: r.get("owner_id")?,
        owner_name: r.get("owner_name")?,
        name: r.get("name")?,
        privacy: r.get("privacy")?,
        description: r.get("description")?,
        scopes: r.get("scopes")?,
        created_at: r.get("created_at")?,
        fetch_allowlist: r
            .get::<_, Option<String>>("fetch_allowlist")?
            .map(|s| s.split_whitespace().map(String::from).collect()),
        latest,
    })
}

fn query_vals(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> anyhow::Result<Vec<ValRow>> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(val_from_row(conn, r)?);
    }
    Ok(out)
}

pub fn val_by_id(conn: &Connection, id: &str) -> anyhow::Result<Option<ValRow>> {
    Ok(query_vals(conn, &format!("{VAL_SELECT} WHERE v.id = ?1"), [id])?.pop())
}

pub fn val_by_name(conn: &Connection, owner: &str, name: &str) -> anyhow::Result<Option<ValRow>> {
    Ok(query_vals(
        conn,
        &format!("{VAL_SELECT} WHERE u.username = ?1 AND v.name = ?2"),
        [owner, name],
    )?
    .pop())
}

/// Vals visible in listings: the caller's own, and everyone's public ones.
pub fn list_vals(
    conn: &Connection,
    viewer: Option<&str>,
    only_owner: Option<&str>,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<ValRow>> {
    query_vals(
        conn,
        &format!(
            "{VAL_SELECT} WHERE (v.privacy = 'public' OR v.owner_id = ?1)
             AND (?2 IS NULL OR v.owner_id = ?2)
             ORDER BY v.created_at, v.id LIMIT ?3 OFFSET ?4"
        ),
        params![viewer, only_owner, limit, offset],
    )
}

pub fn insert_val(
    conn: &Connection,
    owner_id: &str,
    name: &str,
    privacy: &str,
    description: &str,
    scopes: &str,
) -> anyhow::Result<String> {
    let id = new_id();
    conn.execute(
        "INSERT INTO vals (id, owner_id, name, privacy, description, scopes, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![id, owner_id, name, privacy, description, scopes, now_ms()],
    )?;
    Ok(id)
}

pub fn update_val(
    conn: &Connection,
    id: &str,
    privacy: Option<&str>,
    description: Option<&str>,
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE vals SET privacy = COALESCE(?2, privacy), description = COALESCE(?3, description)
         WHERE id = ?1",
        params![id, privacy, description],
    )?;
    Ok(())
}

pub fn delete_val(conn: &Connection, id: &str) -> anyhow::Result<()> {
    conn.execute("DELETE FROM vals WHERE id = ?1", [id])?;
    Ok(())
}

/// Add the next version of a val; numbering starts at 0.
pub fn insert_version(
    conn: &mut Connection,
    val_id: &str,
    sha256: &str,
    size: i64,
    kind: &str,
) -> anyhow::Result<VersionRow> {
    let tx = conn.transaction()?;
    let version: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version) + 1, 0) FROM versions WHERE val_id = ?1",
        [val_id],
        |r| r.get(0),
    )?;
    let row = VersionRow {
        version,
        sha256: sha256.into(),
        size,
        kind: kind.into(),
        created_at: now_ms(),
    };
    tx.execute(
        "INSERT INTO versions (val_id, version, sha256, size, kind, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            val_id,
            row.version,
            row.sha256,
            row.size,
            row.kind,
            row.created_at
        ],
    )?;
    tx.commit()?;
    Ok(row)
}

pub fn list_versions(conn: &Connection, val_id: &str) -> anyhow::Result<Vec<VersionRow>> {
    let mut stmt = conn.prepare("SELECT * FROM versions WHERE val_id = ?1 ORDER BY version")?;
    let rows = stmt.query_map([val_id], VersionRow::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn list_tokens(conn: &Connection, user_id: &str) -> anyhow::Result<Vec<TokenRow>> {
    let mut stmt =
        conn.prepare("SELECT * FROM tokens WHERE user_id = ?1 ORDER BY created_at, id")?;
    let rows = stmt.query_map([user_id], TokenRow::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revoke `user_id`'s token `id`; false when there is no such live token.
pub fn revoke_token(conn: &Connection, user_id: &str, id: &str) -> anyhow::Result<bool> {
    Ok(conn.execute(
        "UPDATE tokens SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![id, user_id, now_ms()],
    )? > 0)
}

/// Revoke the API token with this hash, wherever it belongs. Returns its
/// owner when a live token was revoked.
pub fn revoke_token_by_hash(conn: &Connection, hash: &str) -> anyhow::Result<Option<String>> {
    let owner = conn
        .query_row(
            "UPDATE tokens SET revoked_at = ?2 WHERE hash = ?1 AND revoked_at IS NULL RETURNING user_id",
            params![hash, now_ms()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(owner)
}

/// `None` allows any public host.
pub fn set_fetch_allowlist(
    conn: &Connection,
    id: &str,
    hosts: Option<&[String]>,
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE vals SET fetch_allowlist = ?2 WHERE id = ?1",
        params![id, hosts.map(|h| h.join(" "))],
    )?;
    Ok(())
}

pub fn set_val_scopes(conn: &Connection, id: &str, scopes: &str) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE vals SET scopes = ?2 WHERE id = ?1",
        params![id, scopes],
    )?;
    Ok(())
}

/// Record something the user must be told (until email delivers it).
pub fn notify(conn: &Connection, user_id: &str, kind: &str, message: &str) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO notifications (user_id, kind, message, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![user_id, kind, message, now_ms()],
    )?;
    Ok(())
}

/// (kind, message, created_at) of a user's notifications, newest first.
pub fn list_notifications(
    conn: &Connection,
    user_id: &str,
) -> anyhow::Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT kind, message, created_at FROM notifications WHERE user_id = ?1 ORDER BY id DESC LIMIT 100",
    )?;
    let rows = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database from before the last migration, with a call log in it,
    /// moves to the current schema and keeps its rows.
    #[test]
    fn an_existing_database_gains_cpu_time_in_its_call_logs() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..MIGRATIONS.len() - 1] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", MIGRATIONS.len() - 1)
            .unwrap();
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
