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
pub mod wire;

pub use store::{SqliteStore, database_bytes, database_path};

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::Linker;

use super::{Capability, Ctx, HasCap, Settings};
use store::{Access, Bounds, Mode, ResultSet, SqlError, Statement};
use valbox_model::{Holder, Scope};
use wire::{Answer, Forwarded, Op, Output};

/// The SQLite service.
pub struct Sqlite {
    pub store: SqliteStore,
    /// The most bytes any one value, row or result may hold.
    max_bytes: usize,
    /// How long a REST operation may run: as long as a val's call.
    rest_timeout: Duration,
    /// Where owners' databases are served.
    placement: Placement,
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
        match self.run(who, turn, Op::Execute(s), bounds).await? {
            Output::One(result) => Ok(result),
            Output::Many(_) => Err(SqlError::Internal("a batch's answer to a statement".into())),
        }
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
        match self
            .run(who, turn, Op::Batch(statements, mode), bounds)
            .await?
        {
            Output::Many(results) => Ok(results),
            Output::One(_) => Err(SqlError::Internal("a statement's answer to a batch".into())),
        }
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

    /// Scopes are checked here, on the node that took the call; the
    /// operation runs where the owner's database lives.
    async fn run(
        &self,
        who: &mut impl Holder,
        turn: Option<OwnedSemaphorePermit>,
        op: Op,
        bounds: Bounds,
    ) -> Result<Output, SqlError> {
        let access = Self::access(who)?;
        let owner = who.owner_id().to_string();
        let (result, used) = match &self.placement {
            Placement::Local => self.run_here(owner, access, op, bounds, turn, None).await?,
            Placement::Unavailable(why) => return Err(SqlError::Unavailable(why.clone())),
            Placement::Homes(homes) => match homes.find(&owner).await? {
                Whereabouts::Here { until } => {
                    (self.run_here(owner, access, op, bounds, turn, Some(until))).await?
                }
                Whereabouts::Away(address) => {
                    let _turn = turn;
                    let remaining = bounds.deadline.saturating_duration_since(Instant::now());
                    let forwarded = Forwarded {
                        owner,
                        read: access.read,
                        write: access.write,
                        op: op.to_wire(),
                        remaining_ms: remaining.as_millis() as u64,
                    };
                    homes.forward(&address, forwarded).await?.into_output()
                }
            },
        };
        for scope in used {
            who.used(scope);
        }
        result.map_err(|e| match e {
            SqlError::NeedsScope(scope) => SqlError::Denied(who.deny(scope)),
            e => e,
        })
    }

    /// Run an operation another node forwarded, if this node is the
    /// database's home; the scopes it used go back with the answer.
    pub async fn serve_forwarded(&self, forwarded: Forwarded) -> Answer {
        let refused = |e| Answer::new(Err(e), Vec::new());
        let Placement::Homes(homes) = &self.placement else {
            return refused(SqlError::Unavailable("this node keeps no homes".into()));
        };
        let until = match homes.find(&forwarded.owner).await {
            Ok(Whereabouts::Here { until }) => until,
            Ok(Whereabouts::Away(_)) => {
                return refused(SqlError::Busy(
                    "the database moved to another node; retry".into(),
                ));
            }
            Err(e) => return refused(e),
        };
        let Some(turn) = self.store.try_turn(&forwarded.owner) else {
            return refused(SqlError::Busy(
                "too many of this owner's statements are running".into(),
            ));
        };
        let deadline = Instant::now() + Duration::from_millis(forwarded.remaining_ms);
        let bounds = self.bounds(deadline);
        let access = forwarded.access();
        let op = match forwarded.op.into_op() {
            Ok(op) => op,
            Err(e) => return refused(e),
        };
        match self
            .run_here(forwarded.owner, access, op, bounds, Some(turn), Some(until))
            .await
        {
            Ok((result, used)) => Answer::new(result, used),
            Err(e) => refused(e),
        }
    }

    /// Run `op` on this node's copy of `owner`'s database, never past
    /// `lease` (this node's lease on it, in a cluster, less a margin). In a
    /// cluster, after an operation that could write, the store is told the
    /// database's size, so that every node counts it against the quota.
    async fn run_here(
        &self,
        owner: String,
        access: Access,
        op: Op,
        mut bounds: Bounds,
        turn: Option<OwnedSemaphorePermit>,
        lease: Option<Instant>,
    ) -> Result<(Result<Output, SqlError>, Vec<Scope>), SqlError> {
        if let Some(lease) = lease {
            // Never past the lease: the next home may be serving.
            bounds.deadline = bounds.deadline.min(lease);
        }
        let (store, on) = (self.store.clone(), owner.clone());
        let ran = store::on_sql_thread(move || {
            let _turn = turn;
            // SQL threads are reused: start from this operation's scopes.
            statement::take_used();
            let result = match op {
                Op::Execute(s) => store.execute(&on, access, &s, bounds).map(Output::One),
                Op::Batch(statements, mode) => store
                    .batch(&on, access, &statements, mode, bounds)
                    .map(Output::Many),
            };
            Ok((result, statement::take_used().iter().collect()))
        })
        .await;
        if let Placement::Homes(homes) = &self.placement
            && access.write
        {
            homes
                .record_size(&owner, self.store.bytes(&owner).await)
                .await;
        }
        if lease.is_some_and(|lease| Instant::now() >= lease) {
            // This node stopped (a pause, a stall) past its lease while the
            // operation ran: another node may serve the database now, from
            // a replica without this write. Never acknowledge it.
            return Err(SqlError::Unavailable(
                "this node stopped being the database's home while the operation ran, so \
                 whether it took effect is unknown; read before you retry a write"
                    .into(),
            ));
        }
        ran
    }
}

/// Where this node finds owners' databases.
#[derive(Clone)]
pub enum Placement {
    /// Here, every one (one node on its own store).
    Local,
    /// Nowhere, for the reason given (a node of a cluster that cannot
    /// reach the others).
    Unavailable(String),
    /// Each at its home node, this one or another.
    Homes(Arc<dyn DatabaseHomes>),
}

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Placement::Local => f.write_str("Local"),
            Placement::Unavailable(why) => write!(f, "Unavailable({why:?})"),
            Placement::Homes(_) => f.write_str("Homes"),
        }
    }
}

/// Where an owner's database is served.
pub enum Whereabouts {
    /// On this node, until this instant (the lease, less a margin).
    Here { until: Instant },
    /// On the node at this internal address.
    Away(String),
}

/// The nodes' homes, as this node sees them: kept by the server, which
/// holds the leases and talks to the other nodes.
#[async_trait::async_trait]
pub trait DatabaseHomes: Send + Sync {
    /// Where `owner`'s database is served now, taking it here if it has
    /// no live home.
    async fn find(&self, owner: &str) -> Result<Whereabouts, SqlError>;
    /// Have the home node at `address` run `forwarded`.
    async fn forward(&self, address: &str, forwarded: Forwarded) -> Result<Answer, SqlError>;
    /// Record the size of a database this node is home to, for the
    /// storage quota on every node.
    async fn record_size(&self, owner: &str, bytes: u64);
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
    /// Where owners' databases are served: here, or at each one's home
    /// node when many nodes share the metadata.
    pub placement: Placement,
    /// Whether Litestream replicates the databases this node serves.
    pub replicated: bool,
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
            .with_concurrency(settings.concurrency)
            .replicated(settings.replicated),
            max_bytes: settings.max_value_bytes,
            rest_timeout: settings.rest_timeout,
            placement: settings.placement.clone(),
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
