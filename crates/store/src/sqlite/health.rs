//! The store's health, in SQLite.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::Sqlite;
use crate::{Health, Sealed, StoreResult};

/// How often the file is checked for other processes' writes.
const OUTSIDE_WRITES_EVERY: Duration = Duration::from_secs(1);

#[async_trait]
impl Health for Sqlite {
    async fn ping(&self) -> StoreResult<()> {
        self.run(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn key_check(&self, proposed: Sealed) -> StoreResult<Sealed> {
        self.run(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO key_check (id, nonce, ciphertext) VALUES (1, ?1, ?2)",
                rusqlite::params![proposed.nonce, proposed.ciphertext],
            )?;
            Ok(
                conn.query_row("SELECT nonce, ciphertext FROM key_check", [], |r| {
                    Ok(Sealed {
                        nonce: r.get(0)?,
                        ciphertext: r.get(1)?,
                    })
                })?,
            )
        })
        .await
    }

    /// Moves when SQLite's `data_version` does: it changes when another
    /// connection (the CLI's) commits, checked every second.
    fn changes(&self) -> watch::Receiver<u64> {
        let (moved, changes) = watch::channel(0);
        let this = self.clone();
        tokio::spawn(async move {
            let mut seen = None;
            while !moved.is_closed() {
                let version = this
                    .run(|conn| {
                        Ok(conn.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))?)
                    })
                    .await;
                match version {
                    Ok(version) if seen != Some(version) => {
                        if seen.is_some() {
                            moved.send_modify(|n: &mut u64| *n += 1);
                        }
                        seen = Some(version);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!("checking for outside writes: {e:#}"),
                }
                tokio::time::sleep(OUTSIDE_WRITES_EVERY).await;
            }
        });
        changes
    }
}
