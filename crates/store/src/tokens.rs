//! API tokens: only their hashes are stored.

use rusqlite::{Connection, OptionalExtension, Row, params};

use valbox_model::{Scopes, now_ms};

use crate::{new_id, typed};

/// A stored API token, without its secret (only the hash is kept).
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub scopes: Scopes,
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
            scopes: typed::column(r, "scopes", Scopes::parse)?,
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
    scopes: Scopes,
    expires_at: Option<i64>,
) -> anyhow::Result<TokenRow> {
    let row = TokenRow {
        id: new_id(),
        user_id: user_id.into(),
        name: name.into(),
        scopes,
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
            row.scopes.to_string(),
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

/// `user_id`'s live token `id`.
pub fn live_token(conn: &Connection, user_id: &str, id: &str) -> anyhow::Result<Option<TokenRow>> {
    Ok(conn
        .query_row(
            "SELECT * FROM tokens WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            params![id, user_id],
            TokenRow::from_row,
        )
        .optional()?)
}

/// Set the scopes of `user_id`'s token `id`.
pub fn set_token_scopes(
    conn: &Connection,
    user_id: &str,
    id: &str,
    scopes: &str,
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE tokens SET scopes = ?3 WHERE id = ?1 AND user_id = ?2",
        params![id, user_id, scopes],
    )?;
    Ok(())
}
