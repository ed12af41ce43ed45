//! Users and their notifications, in PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use valbox_model::now_ms;

use super::{Postgres, is_unique_violation, tokens};
use crate::{NewToken, Notification, StoreError, StoreResult, TokenRow, User, Users, new_id};

fn user_from_row(r: &Row) -> StoreResult<User> {
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(super) async fn by_id(c: &impl GenericClient, id: &str) -> StoreResult<Option<User>> {
    let row = c
        .query_opt("SELECT * FROM users WHERE id = $1", &[&id])
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

#[async_trait]
impl Users for Postgres {
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
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .execute(
                "INSERT INTO users (id, username, email, created_at) VALUES ($1, $2, $3, $4)",
                &[&user.id, &user.username, &user.email, &user.created_at],
            )
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "user `{username}` already exists"
                )));
            }
            other => other?,
        };
        let token = tokens::insert(&tx, &user.id, token).await?;
        tx.commit().await?;
        Ok((user, token))
    }

    async fn by_id(&self, id: &str) -> StoreResult<Option<User>> {
        by_id(&self.client().await?, id).await
    }

    async fn by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT * FROM users WHERE username = $1", &[&username])
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn notify(&self, user_id: &str, kind: &str, message: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO notifications (user_id, kind, message, created_at)
                 VALUES ($1, $2, $3, $4)",
                &[&user_id, &kind, &message, &now_ms()],
            )
            .await?;
        Ok(())
    }

    async fn notifications(&self, user_id: &str) -> StoreResult<Vec<Notification>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT kind, message, created_at FROM notifications WHERE user_id = $1
                 ORDER BY id DESC LIMIT 100",
                &[&user_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Notification {
                    kind: r.try_get(0)?,
                    message: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                })
            })
            .collect()
    }
}
