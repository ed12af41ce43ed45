//! The store's health, and other nodes' changes, in PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{CHANNEL, Postgres};
use crate::{Health, Sealed, StoreResult};

/// How long a node waits before listening again after losing the
/// connection it listens on.
const RECONNECT: Duration = Duration::from_millis(500);

#[async_trait]
impl Health for Postgres {
    async fn ping(&self) -> StoreResult<()> {
        self.client().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn key_check(&self, proposed: Sealed) -> StoreResult<Sealed> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO key_check (id, nonce, ciphertext) VALUES (1, $1, $2)
                 ON CONFLICT DO NOTHING",
                &[&proposed.nonce, &proposed.ciphertext],
            )
            .await?;
        let row = client
            .query_one("SELECT nonce, ciphertext FROM key_check", &[])
            .await?;
        Ok(Sealed {
            nonce: row.try_get(0)?,
            ciphertext: row.try_get(1)?,
        })
    }

    /// Moves on every `NOTIFY` of a val's change, from any node, and each
    /// time listening starts again after the connection was lost: what
    /// was missed meanwhile is unknown, so everything cached goes then.
    /// While the database is down nothing changes in it, so what a node
    /// cached keeps serving until it is back.
    fn changes(&self) -> watch::Receiver<u64> {
        let (moved, changes) = watch::channel(0);
        let (url, node) = (self.url.clone(), self.node.clone());
        tokio::spawn(async move {
            while !moved.is_closed() {
                if let Err(e) = listen(&url, &node, &moved).await {
                    tracing::warn!("listening for other nodes' changes: {e}; listening again");
                }
                tokio::time::sleep(RECONNECT).await;
            }
        });
        changes
    }
}

/// Listen for changes until the connection ends or nobody watches.
async fn listen(
    url: &str,
    node: &str,
    moved: &watch::Sender<u64>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {CHANNEL}");
    let listening = client.batch_execute(&statement);
    tokio::pin!(listening);
    // The connection must be driven for the LISTEN to be sent.
    loop {
        tokio::select! {
            done = &mut listening => { done?; break; }
            message = messages.next() => match message {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
    // Listening from here on; what changed before is unknown.
    moved.send_modify(|n| *n += 1);
    loop {
        let message = tokio::select! {
            message = messages.next() => message,
            () = moved.closed() => return Ok(()),
        };
        match message {
            Some(Ok(AsyncMessage::Notification(notice))) if notice.payload() != node => {
                moved.send_modify(|n| *n += 1)
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
            None => return Ok(()),
        }
    }
}
