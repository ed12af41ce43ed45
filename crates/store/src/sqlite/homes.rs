//! Database homes in SQLite: one node, so the leases only matter to the
//! conformance checks; the same rules as on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use valbox_model::now_ms;

use super::Sqlite;
use crate::{Home, Homes, Node, StoreResult};

fn home(conn: &Connection, owner: &str, now: i64) -> StoreResult<Home> {
    Ok(conn
        .prepare_cached(
            "SELECT node_id, address, fencing, expires_at, replica, served_by, size
             FROM database_homes WHERE owner_id = ?1",
        )?
        .query_row([owner], |r| {
            Ok(Home {
                node: Node {
                    id: r.get(0)?,
                    address: r.get(1)?,
                },
                fencing: r.get(2)?,
                remaining: Duration::from_millis((r.get::<_, i64>(3)? - now).max(0) as u64),
                replica: r.get(4)?,
                served_by: r.get(5)?,
                size: r.get::<_, i64>(6)?.max(0) as u64,
            })
        })?)
}

#[async_trait]
impl Homes for Sqlite {
    async fn claim(&self, owner_id: &str, node: &Node, ttl: Duration) -> StoreResult<Home> {
        let (owner, node) = (owner_id.to_owned(), node.clone());
        self.run(move |conn| {
            let now = now_ms();
            conn.execute(
                "INSERT INTO database_homes (owner_id, node_id, address, fencing, expires_at)
                 VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT (owner_id) DO UPDATE
                 SET node_id = ?2, address = ?3, expires_at = ?4,
                     fencing = CASE WHEN node_id = ?2 AND expires_at > ?5
                               THEN fencing ELSE fencing + 1 END
                 WHERE expires_at <= ?5 OR node_id = ?2",
                params![
                    owner,
                    node.id,
                    node.address,
                    now + ttl.as_millis() as i64,
                    now
                ],
            )?;
            home(conn, &owner, now)
        })
        .await
    }

    async fn renew(&self, node_id: &str, ttl: Duration) -> StoreResult<Vec<(String, i64)>> {
        let node = node_id.to_owned();
        self.run(move |conn| {
            let now = now_ms();
            let mut stmt = conn.prepare_cached(
                "UPDATE database_homes SET expires_at = ?2
                 WHERE node_id = ?1 AND expires_at > ?3 RETURNING owner_id, fencing",
            )?;
            let held = stmt.query_map(params![node, now + ttl.as_millis() as i64, now], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(held.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn release(&self, owner_id: &str, node_id: &str) -> StoreResult<()> {
        let (owner, node) = (owner_id.to_owned(), node_id.to_owned());
        self.run(move |conn| {
            conn.execute(
                "UPDATE database_homes SET expires_at = 0 WHERE owner_id = ?1 AND node_id = ?2",
                [owner, node],
            )?;
            Ok(())
        })
        .await
    }

    async fn record_size(&self, owner_id: &str, node_id: &str, bytes: u64) -> StoreResult<()> {
        let (owner, node) = (owner_id.to_owned(), node_id.to_owned());
        self.run(move |conn| {
            conn.execute(
                "UPDATE database_homes SET size = ?3 WHERE owner_id = ?1 AND node_id = ?2",
                params![owner, node, bytes as i64],
            )?;
            Ok(())
        })
        .await
    }

    async fn record_serving(&self, owner_id: &str, node_id: &str, fencing: i64) -> StoreResult<()> {
        let (owner, node) = (owner_id.to_owned(), node_id.to_owned());
        self.run(move |conn| {
            conn.execute(
                "UPDATE database_homes SET served_by = ?2
                 WHERE owner_id = ?1 AND node_id = ?2 AND fencing = ?3",
                params![owner, node, fencing],
            )?;
            Ok(())
        })
        .await
    }

    async fn record_replica(
        &self,
        owner_id: &str,
        node_id: &str,
        fencing: i64,
        replica: &str,
    ) -> StoreResult<()> {
        let (owner, node, replica) = (owner_id.to_owned(), node_id.to_owned(), replica.to_owned());
        self.run(move |conn| {
            conn.execute(
                "UPDATE database_homes SET replica = ?4
                 WHERE owner_id = ?1 AND node_id = ?2 AND fencing = ?3",
                params![owner, node, fencing, replica],
            )?;
            Ok(())
        })
        .await
    }

    async fn last_served_by(&self, node_id: &str) -> StoreResult<Vec<String>> {
        let node = node_id.to_owned();
        self.run(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT owner_id FROM database_homes WHERE served_by = ?1")?;
            let owners = stmt.query_map([node], |r| r.get(0))?;
            Ok(owners.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn size(&self, owner_id: &str) -> StoreResult<u64> {
        let owner = owner_id.to_owned();
        self.run(move |conn| {
            let size: Option<i64> = conn
                .prepare_cached("SELECT size FROM database_homes WHERE owner_id = ?1")?
                .query_row([owner], |r| r.get(0))
                .optional()?;
            Ok(size.unwrap_or(0).max(0) as u64)
        })
        .await
    }
}
