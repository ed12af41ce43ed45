//! The web UI's sign-in links and sessions. Only SHA-256 hashes of their
//! secrets are stored, as for API tokens.

use rusqlite::{Connection, OptionalExtension, Row, params};

use valbox_model::now_ms;

use crate::new_id;

/// Store a sign-in link for `user_id`, valid until `expires_at`.
pub fn insert_login_link(
    conn: &Connection,
    user_id: &str,
    hash: &str,
    expires_at: i64,
) -> anyhow::Result<()> {
    conn.execute(
        "INSERT INTO login_links (hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![hash, user_id, now_ms(), expires_at],
    )?;
    Ok(())
}

/// Use the link with this hash: its user, if it was unused and unexpired.
/// Used either way from now on.
pub fn use_login_link(conn: &Connection, hash: &str) -> anyhow::Result<Option<String>> {
    let now = now_ms();
    Ok(conn
        .query_row(
            "UPDATE login_links SET used_at = ?2
             WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2 RETURNING user_id",
            params![hash, now],
            |r| r.get(0),
        )
        .optional()?)
}

/// A signed-in browser.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl SessionRow {
    fn from_row(r: &Row) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            user_id: r.get("user_id")?,
            csrf: r.get("csrf")?,
            created_at: r.get("created_at")?,
            last_seen_at: r.get("last_seen_at")?,
            expires_at: r.get("expires_at")?,
            revoked_at: r.get("revoked_at")?,
        })
    }
}

pub fn insert_session(
    conn: &Connection,
    user_id: &str,
    hash: &str,
    csrf: &str,
    expires_at: i64,
) -> anyhow::Result<SessionRow> {
    let (id, now) = (new_id(), now_ms());
    conn.execute(
        "INSERT INTO sessions (id, hash, user_id, csrf, created_at, last_seen_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        params![id, hash, user_id, csrf, now, expires_at],
    )?;
    Ok(SessionRow {
        id,
        user_id: user_id.into(),
        csrf: csrf.into(),
        created_at: now,
        last_seen_at: now,
        expires_at,
        revoked_at: None,
    })
}

pub fn session_by_hash(conn: &Connection, hash: &str) -> anyhow::Result<Option<SessionRow>> {
    Ok(conn
        .query_row(
            "SELECT * FROM sessions WHERE hash = ?1",
            [hash],
            SessionRow::from_row,
        )
        .optional()?)
}

pub fn touch_session(conn: &Connection, id: &str) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1",
        params![id, now_ms()],
    )?;
    Ok(())
}

/// `user_id`'s live sessions, newest first.
pub fn list_sessions(conn: &Connection, user_id: &str) -> anyhow::Result<Vec<SessionRow>> {
    let mut stmt = conn.prepare(
        "SELECT * FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
         ORDER BY created_at DESC",
    )?;
    let rows = stmt.query_map(params![user_id, now_ms()], SessionRow::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// End `user_id`'s session `id` (every session with `None`).
pub fn revoke_sessions(
    conn: &Connection,
    user_id: &str,
    id: Option<&str>,
) -> anyhow::Result<usize> {
    Ok(conn.execute(
        "UPDATE sessions SET revoked_at = ?3
         WHERE user_id = ?1 AND (?2 IS NULL OR id = ?2) AND revoked_at IS NULL",
        params![user_id, id, now_ms()],
    )?)
}
