//! SQLite per owner. The service gives whoever asks (a REST caller or a
//! val's call) the access its scopes allow: read-only statements need
//! `sqlite:read`, any other `sqlite:write`. `host` is its WIT import,
//! `routes` its REST routes, `store` the databases, hardened by `policy`,
//! `functions` and `tempfiles`.

mod functions;
mod host;
mod idle;
pub mod policy;
mod statement;
pub mod store;
mod tempfiles;

pub use store::{SqliteStore, database_path};

use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::Linker;

use super::{Capability, Ctx, HasCap, Settings};
use store::{Access, Bounds, Mode, ResultSet, SqlError, Statement};
use valbox_model::{Holder, Scope};

/// The SQLite service.
pub struct Sqlite {
    pub store: SqliteStore,
    /// The most bytes any one value, row or result may hold.
    max_bytes: usize,
    /// How long a REST operation may run: as long as a val's call.
    rest_timeout: Duration,
    /// Whether this node serves users' databases (see `SqliteSettings`).
    available: bool,
}

impl Sqlite {
    /// The bounds of an operation that must end by `deadline`.
    pub fn bounds(&self, deadline: Instant) -> Bounds {
        Bounds {
            deadline,
            max_bytes: self.max_bytes,
        }
    }

    /// The bounds of a REST operation starting now.
    pub fn rest_bounds(&self) -> Bounds {
        self.bounds(Instant::now() + self.rest_timeout)
    }

    /// Run one statement. `turn`, if any, is held until the work ends,
    /// even if the caller stops waiting.
    pub async fn execute(
        &self,
        who: &mut impl Holder,
        s: Statement,
        bounds: Bounds,
        turn: Option<OwnedSemaphorePermit>,
    ) -> Result<ResultSet, SqlError> {
        self.run(who, turn, move |store, owner, access| {
            store.execute(owner, access, &s, bounds)
        })
        .await
    }

    /// Run statements in one transaction.
    pub async fn batch(
        &self,
        who: &mut impl Holder,
        statements: Vec<Statement>,
        mode: Mode,
        bounds: Bounds,
        turn: Option<OwnedSemaphorePermit>,
    ) -> Result<Vec<ResultSet>, SqlError> {
        self.run(who, turn, move |store, owner, access| {
            store.batch(owner, access, &statements, mode, bounds)
        })
        .await
    }

    /// What `who` may do: read, write, or both; refused when neither.
    pub fn access(who: &mut impl Holder) -> Result<Access, SqlError> {
        let access = Access {
            read: who.allowed(Scope::SqliteRead),
            write: who.allowed(Scope::SqliteWrite),
        };
        if !access.read && !access.write {
            return Err(SqlError::Denied(who.deny(Scope::SqliteRead)));
        }
        Ok(access)
    }

    async fn run<R: Send + 'static>(
        &self,
        who: &mut impl Holder,
        turn: Option<OwnedSemaphorePermit>,
        op: impl FnOnce(&SqliteStore, &str, Access) -> Result<R, SqlError> + Send + 'static,
    ) -> Result<R, SqlError> {
        let access = Self::access(who)?;
        if !self.available {
            return Err(SqlError::Unavailable);
        }
        let (store, owner) = (self.store.clone(), who.owner_id().to_string());
        let (result, used) = store::on_sql_thread(move || {
            let _turn = turn;
            // SQL threads are reused: start from this operation's scopes.
            statement::take_used();
            let result = op(&store, &owner, access);
            Ok((result, statement::take_used()))
        })
        .await?;
        for scope in used.iter() {
            who.used(scope);
        }
        result.map_err(|e| match e {
            SqlError::NeedsScope(scope) => SqlError::Denied(who.deny(scope)),
            e => e,
        })
    }
}

/// What the SQLite capability is configured with.
#[derive(Clone, Debug)]
pub struct SqliteSettings {
    /// One owner's database.
    pub quota_bytes: u64,
    /// Temporary storage of one owner's running statements together.
    pub temp_bytes: u64,
    /// Memory every connection of the server may hold together.
    pub heap_bytes: u64,
    /// Statements of one owner running at once.
    pub concurrency: usize,
    /// The largest value a statement takes or returns, and its results.
    pub max_value_bytes: usize,
    /// How long a statement from the REST API may run.
    pub rest_timeout: std::time::Duration,
    /// Whether this node serves users' databases: not when the metadata
    /// is shared by many nodes, until databases have a home node.
    pub available: bool,
}

impl Capability for Sqlite {
    type Call = ();

    fn open(s: &Settings) -> anyhow::Result<Self> {
        let settings = &s.config.sqlite;
        policy::limit_heap(settings.heap_bytes);
        Ok(Self {
            store: SqliteStore::new(
                s.config.data_dir.join("sqlite"),
                settings.quota_bytes,
                settings.temp_bytes,
            )
            .with_concurrency(settings.concurrency),
            max_bytes: settings.max_value_bytes,
            rest_timeout: settings.rest_timeout,
            available: settings.available,
        })
    }

    fn link<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> Ctx<'_, Self>,
    ) -> wasmtime::Result<()> {
        valbox_runtime::bindings::sqlite::add_to_linker::<T, HasCap<Self>>(linker, get)
    }
}

#[cfg(test)]
mod service_tests;
