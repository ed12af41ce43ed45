//! The store's health, and other nodes' changes, in PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{CHANNEL, Postgres};
use crate::{Health, StoreResult};

/// How long a node waits before listening again after losing the
/// connection it listens on.
const RECONNECT: Duration = Duration::from_millis(500);

#[async_trait]
impl Health for Postgres {
    async fn ping(&self) -> StoreResult<()> {
        self.client().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    /// Moves on every `NOTIFY` of a val's change, from any node, and
    /// whenever the listening connection is lost (what was missed
    /// meanwhile is unknown, so everything cached goes).
    fn changes(&self) -> watch::Receiver<u64> {
        let (moved, changes) = watch::channel(0);
        let url = self.url.clone();
        tokio::spawn(async move {
            while !moved.is_closed() {
                if let Err(e) = listen(&url, &moved).await {
                    tracing::warn!("listening for other nodes' changes: {e}; listening again");
                }
                moved.send_modify(|n| *n += 1);
                tokio::time::sleep(RECONNECT).await;
            }
        });
        changes
    }
}

/// Listen for changes until the connection ends or nobody watches.
async fn listen(url: &str, moved: &watch::Sender<u64>) -> Result<(), tokio_postgres::Error> {
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
    // Listening from here on: anything before it is covered by the move
    // the caller makes when this ends.
    moved.send_modify(|n| *n += 1);
    loop {
        let message = tokio::select! {
            message = messages.next() => message,
            () = moved.closed() => return Ok(()),
        };
        match message {
            Some(Ok(AsyncMessage::Notification(_))) => moved.send_modify(|n| *n += 1),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
            None => return Ok(()),
        }
    }
}
