//! Users and their notifications, in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use valbox_model::now_ms;

use super::{Sqlite, tokens};
use crate::{NewToken, Notification, StoreError, StoreResult, TokenRow, User, Users, new_id};

fn user_from_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get("id")?,
        username: r.get("username")?,
        email: r.get("email")?,
        created_at: r.get("created_at")?,
    })
}

pub(super) fn by_id(conn: &Connection, id: &str) -> StoreResult<Option<User>> {
    Ok(conn
        .query_row("SELECT * FROM users WHERE id = ?1", [id], user_from_row)
        .optional()?)
}

fn by_name(conn: &Connection, username: &str) -> StoreResult<Option<User>> {
    Ok(conn
        .query_row(
            "SELECT * FROM users WHERE username = ?1",
            [username],
            user_from_row,
        )
        .optional()?)
}

#[async_trait]
impl Users for Sqlite {
    async fn create(
        &self,
        username: &str,
        email: &str,
        token: NewToken,
    ) -> StoreResult<(User, TokenRow)> {
        let user = User {
            id: new_id(),
            username: username.into(),
            email: email.into(),
            created_at: now_ms(),
        };
        self.run(move |conn| {
            // IMMEDIATE: a read that later writes must not lose the write
            // lock to another process in between (it would fail as locked).
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if by_name(&tx, &user.username)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "user `{}` already exists",
                    user.username
                )));
            }
            tx.execute(
                "INSERT INTO users (id, username, email, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![user.id, user.username, user.email, user.created_at],
            )?;
            let token = tokens::insert(&tx, &user.id, token)?;
            tx.commit()?;
            Ok((user, token))
        })
        .await
    }

    async fn by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_owned();
        self.run(move |conn| by_id(conn, &id)).await
    }

    async fn by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        self.run(move |conn| by_name(conn, &username)).await
    }

    async fn notify(&self, user_id: &str, kind: &str, message: &str) -> StoreResult<()> {
        let row = (user_id.to_owned(), kind.to_owned(), message.to_owned());
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO notifications (user_id, kind, message, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![row.0, row.1, row.2, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    async fn notifications(&self, user_id: &str) -> StoreResult<Vec<Notification>> {
        let user_id = user_id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT kind, message, created_at FROM notifications WHERE user_id = ?1
                 ORDER BY id DESC LIMIT 100",
            )?;
            let rows = stmt.query_map([user_id], |r| {
                Ok(Notification {
                    kind: r.get(0)?,
                    message: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
