//! The metadata store: users, tokens, vals and their versions, env vars,
//! call logs, scope records, sessions, the outbox and the blob index,
//! behind one interface per aggregate. Services see only these traits
//! ([`Store`]); the embedded implementation is [`sqlite`], and another
//! engine only adds an implementation.
//!
//! A write that must see other aggregates as they are (a deploy within
//! the owner's quota, a change refused by what the val holds) is one
//! method, so each implementation can make it one transaction.

use std::sync::Arc;

pub use blobs::*;
pub use call_logs::*;
pub use env::*;
pub use error::{StoreError, StoreResult};
pub use homes::*;
pub use mail_queue::*;
pub use outbox::*;
pub use quota::*;
pub use schedules::*;
pub use scopes::*;
pub use sessions::*;
pub use tokens::*;
pub use users::*;
pub use vals::*;

mod blobs;
mod call_logs;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod env;
mod error;
mod homes;
mod mail_queue;
mod outbox;
mod owner_locks;
pub mod postgres;
mod quota;
mod schedules;
mod scopes;
pub mod secrets;
mod sessions;
pub mod sqlite;
mod stored;
mod tokens;
mod users;
mod vals;

/// Every aggregate of one metadata store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub users: Arc<dyn Users>,
    pub tokens: Arc<dyn Tokens>,
    pub vals: Arc<dyn Vals>,
    pub env: Arc<dyn EnvVars>,
    pub sessions: Arc<dyn Sessions>,
    pub scopes: Arc<dyn ScopeRecords>,
    pub logs: Arc<dyn CallLogs>,
    pub outbox: Arc<dyn Outbox>,
    pub blobs: Arc<dyn BlobIndex>,
    pub quota: Arc<dyn Quota>,
    pub homes: Arc<dyn Homes>,
    pub schedules: Arc<dyn Schedules>,
    pub mail_queue: Arc<dyn MailQueue>,
    pub health: Arc<dyn Health>,
}

impl Store {
    /// Every aggregate served by one implementation.
    pub fn of<T>(it: Arc<T>) -> Self
    where
        T: Users + Tokens + Vals + EnvVars + Sessions + ScopeRecords + CallLogs,
        T: Outbox + BlobIndex + Quota + Homes + Schedules + MailQueue + Health + 'static,
    {
        Store {
            users: it.clone(),
            tokens: it.clone(),
            vals: it.clone(),
            env: it.clone(),
            sessions: it.clone(),
            scopes: it.clone(),
            logs: it.clone(),
            outbox: it.clone(),
            blobs: it.clone(),
            quota: it.clone(),
            homes: it.clone(),
            schedules: it.clone(),
            mail_queue: it.clone(),
            health: it,
        }
    }
}

/// The store as a whole.
#[async_trait::async_trait]
pub trait Health: Send + Sync {
    /// Whether the store answers.
    async fn ping(&self) -> StoreResult<()>;
    /// A counter that moves when vals may have changed through another
    /// process (another node, or the CLI beside a running server), or
    /// when the store cannot tell: what a node caches of vals is dropped
    /// each time it moves.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
    /// The sealed value every node's secret key must open: `proposed` is
    /// stored if there is none yet, and what is stored is returned.
    async fn key_check(&self, proposed: Sealed) -> StoreResult<Sealed>;
}

/// A node's store: PostgreSQL at `database` (`postgres://...`), or
/// without one the embedded file `valbox.db` in `data_dir`.
pub async fn open(database: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<Store> {
    match database {
        Some(url) => postgres::open(url).await,
        None => sqlite::open(&data_dir.join("valbox.db")),
    }
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
