//! The metadata store on PostgreSQL, for many nodes over one database.
//! Every aggregate is implemented here with the same promises as the
//! embedded store (`store::conformance` checks both); a write that reads
//! before it writes locks what it read (`FOR UPDATE`, or an advisory lock
//! for what has no row yet), so two nodes cannot both pass a check.

use std::sync::Arc;

use deadpool_postgres::{GenericClient, Object, Pool, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::{Store, StoreError, StoreResult};

mod blobs;
mod call_logs;
mod env;
mod health;
mod homes;
mod mail_queue;
mod outbox;
mod quota;
mod schedules;
mod schema;
mod scopes;
mod sessions;
mod tokens;
mod users;
mod vals;

/// Connect to the database at `url` (`postgres://user@host:port/db`),
/// migrate it (once, however many nodes start at the same moment) and
/// return its store.
pub async fn open(url: &str) -> anyhow::Result<Store> {
    Ok(Postgres::open(url).await?.store())
}

/// The PostgreSQL implementation of every aggregate.
#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
    /// For the connection that listens for other nodes' changes.
    url: String,
    /// This node's name in its notices, so that it ignores its own: it
    /// forgets what it changes itself as it changes it.
    node: Arc<str>,
    /// This node's turns at each owner's blob index.
    owner_locks: Arc<crate::owner_locks::OwnerLocks>,
}

/// The channel on which a change to a val is announced to every node.
const CHANNEL: &str = "valbox_vals";

/// Announce, when the transaction commits, that vals changed.
async fn announce(tx: &impl GenericClient, node: &str) -> StoreResult<()> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &node])
        .await?;
    Ok(())
}

impl Postgres {
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        // Nothing waits on the database for longer than a request may
        // last: an unreachable or stalled server is an error, not a hang.
        let timeouts = deadpool_postgres::Timeouts {
            wait: Some(STORE_TIMEOUT),
            create: Some(STORE_TIMEOUT),
            recycle: Some(STORE_TIMEOUT),
        };
        let config = deadpool_postgres::Config {
            url: Some(url.to_string()),
            connect_timeout: Some(STORE_TIMEOUT),
            options: Some(format!(
                "-c statement_timeout={ms} -c lock_timeout={ms}",
                ms = STORE_TIMEOUT.as_millis()
            )),
            pool: Some(deadpool_postgres::PoolConfig {
                max_size: POOL_SIZE,
                timeouts,
                ..Default::default()
            }),
            ..Default::default()
        };
        let pool = config.create_pool(Some(Runtime::Tokio1), NoTls)?;
        let this = Self {
            pool,
            url: url.to_string(),
            node: crate::new_id().into(),
            owner_locks: Arc::new(crate::owner_locks::OwnerLocks::new()),
        };
        let mut client = this.client().await?;
        schema::migrate(&mut client).await?;
        Ok(this)
    }

    pub fn store(&self) -> Store {
        Store::of(Arc::new(self.clone()))
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))
    }
}

/// The longest a node waits for PostgreSQL: a connection, a turn in the
/// pool, a statement, a lock.
const STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connections one node keeps to PostgreSQL.
const POOL_SIZE: usize = 16;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // A closed connection or a timeout is the server's state, not a
        // fault of the query: the caller may retry.
        let cancelled = e.code() == Some(&SqlState::QUERY_CANCELED)
            || e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
            || e.code() == Some(&SqlState::ADMIN_SHUTDOWN)
            || e.code() == Some(&SqlState::CANNOT_CONNECT_NOW);
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if e.is_closed() || cancelled || io {
            StoreError::Unavailable(Box::new(e))
        } else {
            StoreError::Backend(Box::new(e))
        }
    }
}

/// Whether `e` is a unique constraint's refusal.
fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// A column stored as text and read as a type, parsed once as it is read.
fn typed<T, E: std::fmt::Display>(
    row: &tokio_postgres::Row,
    col: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> StoreResult<T> {
    let text: String = row.try_get(col)?;
    crate::stored::parse(col, &text, parse).map_err(|why| StoreError::Backend(why.into()))
}

/// Serialize with `owner`'s other writes that count against the storage
/// quota (deploys, blob writes) until the transaction ends.
async fn lock_quota(tx: &impl GenericClient, owner: &str) -> StoreResult<()> {
    lock(tx, &format!("quota/{owner}")).await
}

/// Serialize with other writers of `key` until the transaction ends: for
/// a check over rows that may not exist yet (an owner's blobs, a val's
/// next version number).
async fn lock(tx: &impl GenericClient, key: &str) -> StoreResult<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key],
    )
    .await?;
    Ok(())
}
