//! Users and the notifications kept for them.

use rusqlite::{Connection, OptionalExtension, Row, params};

use valbox_model::now_ms;

use crate::new_id;

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
