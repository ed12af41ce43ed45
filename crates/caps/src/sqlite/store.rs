//! One SQLite database per owner (`sqlite/<owner>.sqlite3`, WAL, fsync on
//! commit). Each operation opens its own connection, hardened by `policy`
//! (allowlisted functions, modules and pragmas, defensive mode), with its
//! temporary files counted against the owner's budget (`tempfiles`), a
//! progress handler that stops a statement at the call's deadline, a
//! page-count cap that enforces the size quota, and a byte bound on any one
//! value or row and on everything an operation returns.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use valbox_model::{Denied, Scope};
pub use valbox_sql::{Args, Statement};

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::idle::{Hardened, IdleConnections};
use super::policy;
use super::statement::{Guard, deadline_error, failed, run};
use super::tempfiles::{self, TempBudget};

/// The longest a statement waits for another writer's lock (never past the
/// deadline).
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// Stack of the threads that run owners' SQL. SQLite expands views and
/// CTEs recursively, and a 1 MiB statement over a long chain of views nests
/// far deeper than a default 2 MiB stack holds; a stack overflow would abort
/// the whole server. Only the pages a statement touches are committed.
const SQL_THREAD_STACK: usize = 256 << 20;

/// How long an idle SQL thread waits for more work before it ends (and
/// the stack pages a deep statement committed are freed).
const SQL_THREAD_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The threads that run owners' SQL: a blocking pool whose threads have
/// stacks deep enough for any statement the store accepts, kept between
/// operations (starting a thread cost more than a point read).
fn sql_threads() -> &'static tokio::runtime::Runtime {
    static THREADS: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    THREADS.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .thread_name("valbox-sql")
            .thread_stack_size(SQL_THREAD_STACK)
            .thread_keep_alive(SQL_THREAD_KEEP_ALIVE)
            .build()
            .expect("starting the SQL thread pool")
    })
}

/// Run `work` on a SQL thread and wait for its result without blocking
/// the async runtime.
pub async fn on_sql_thread<R: Send + 'static>(
    work: impl FnOnce() -> Result<R, SqlError> + Send + 'static,
) -> Result<R, SqlError> {
    sql_threads()
        .spawn_blocking(work)
        .await
        .map_err(|e| SqlError::Internal(format!("a SQL thread failed: {e}")))?
}

#[derive(Debug, Default)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub column_types: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub rows_affected: u64,
    pub last_insert_rowid: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    Write,
    Read,
    Deferred,
}

/// How far one operation may go: its deadline, and the bytes that any one
/// value or row, and all its results together, may hold.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub deadline: Instant,
    pub max_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The caller was refused the scope; the message says why.
    #[error("{}", .0.message)]
    Denied(Denied),
    /// The caller lacks the scope this statement needs.
    #[error("this statement needs the `{0}` scope")]
    NeedsScope(Scope),
    /// SQLite refused the statement; its message says why.
    #[error("{0}")]
    Sql(String),
    #[error("{0}")]
    Invalid(String),
    /// The database is at its size quota.
    #[error("{0}")]
    Quota(String),
    /// A value, a row or the whole result is over the size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The operation ran past its deadline.
    #[error("{0}")]
    Deadline(String),
    /// Another writer holds the lock: not the caller's mistake; retry.
    #[error("{0}")]
    Busy(String),
    #[error("the database failed: {0}")]
    Internal(String),
    /// The database cannot be served now (a node of a cluster without an
    /// internal listener, or a home node gone); the message says why.
    #[error("{0}")]
    Unavailable(String),
}

/// What the caller may do, from its token's scopes.
#[derive(Clone, Copy)]
pub struct Access {
    pub read: bool,
    pub write: bool,
}

/// Where `owner`'s database lives under `root`.
pub fn database_path(root: &std::path::Path, owner: &str) -> PathBuf {
    // Owner ids are UUIDs minted by this server, never user input.
    root.join(format!("{owner}.sqlite3"))
}

/// The file SQLite keeps beside `database`: `-wal` or `-shm`.
fn beside(database: &std::path::Path, suffix: &str) -> PathBuf {
    let mut side = database.as_os_str().to_owned();
    side.push(suffix);
    PathBuf::from(side)
}

/// What `owner`'s database under `root` takes on disk: the file and its
/// write-ahead log, which holds recent writes until a checkpoint.
pub async fn database_bytes(root: &std::path::Path, owner: &str) -> u64 {
    let file = database_path(root, owner);
    let wal = beside(&file, "-wal");
    let mut bytes = 0;
    for path in [file, wal] {
        bytes += tokio::fs::metadata(path).await.map_or(0, |m| m.len());
    }
    bytes
}

fn remove_if_there(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[derive(Clone, Debug)]
pub struct SqliteStore {
    root: PathBuf,
    pub quota_bytes: u64,
    /// What one owner's temporary files may hold at once, all of its
    /// statements together.
    pub temp_bytes: u64,
    /// Each owner's temporary-storage budget while any of its operations
    /// runs.
    temp_budgets: Arc<Mutex<HashMap<String, Weak<TempBudget>>>>,
    /// REST operations one owner may run at once.
    pub concurrent_per_owner: usize,
    in_flight: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    idle: Arc<IdleConnections>,
    /// Whether Litestream follows the databases (and checkpoints them).
    replicated: bool,
}

impl SqliteStore {
    /// What `owner`'s database takes on this node's disk.
    pub async fn bytes(&self, owner: &str) -> u64 {
        database_bytes(&self.root, owner).await
    }

    /// Put `restored` (a file beside the database, or nothing) in place of
    /// `owner`'s database, its write-ahead log and shared memory, once no
    /// idle connection holds them. Blocking: call it on a blocking thread.
    pub fn replace(&self, owner: &str, restored: Option<&std::path::Path>) -> std::io::Result<()> {
        self.idle.retire(owner);
        let file = database_path(&self.root, owner);
        for suffix in ["-wal", "-shm"] {
            remove_if_there(&beside(&file, suffix))?;
        }
        match restored {
            Some(restored) => std::fs::rename(restored, &file)?,
            None => remove_if_there(&file)?,
        }
        std::fs::File::open(&self.root)?.sync_all()
    }

    pub fn new(root: PathBuf, quota_bytes: u64, temp_bytes: u64) -> Self {
        Self {
            root,
            quota_bytes,
            temp_bytes,
            temp_budgets: Arc::default(),
            concurrent_per_owner: usize::MAX >> 4,
            in_flight: Arc::default(),
            idle: Arc::default(),
            replicated: false,
        }
    }

    /// Leave checkpoints to Litestream, which replicates the databases.
    pub fn replicated(mut self, replicated: bool) -> Self {
        self.replicated = replicated;
        self
    }

    /// Bound the REST operations one owner may run at once.
    pub fn with_concurrency(mut self, per_owner: usize) -> Self {
        self.concurrent_per_owner = per_owner.max(1);
        self
    }

    /// How many of `owner`'s REST operations hold a turn now.
    pub fn turns_taken(&self, owner: &str) -> usize {
        let gates = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        gates
            .get(owner)
            .map_or(0, |g| self.concurrent_per_owner - g.available_permits())
    }

    /// A turn for one of `owner`'s REST operations, or `None` when it
    /// already runs as many as it may (so parallel requests cannot pile up
    /// blocking threads, memory or temporary files).
    pub fn try_turn(&self, owner: &str) -> Option<OwnedSemaphorePermit> {
        let mut gates = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if gates.len() > 1024 {
            // Forget owners with nothing running.
            let full = self.concurrent_per_owner;
            gates.retain(|_, g| g.available_permits() < full);
        }
        let gate = gates
            .entry(owner.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.concurrent_per_owner)))
            .clone();
        gate.try_acquire_owned().ok()
    }

    /// How far an owner's WAL may grow: room for a transaction that fills
    /// the quota, and for a few more while a long reader keeps the WAL
    /// from restarting.
    fn wal_limit(&self) -> u64 {
        self.quota_bytes.saturating_mul(2).saturating_add(16 << 20)
    }

    /// The temporary-storage budget `owner`'s operations share.
    fn temp_budget(&self, owner: &str) -> Arc<TempBudget> {
        let mut budgets = self.temp_budgets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(budget) = budgets.get(owner).and_then(Weak::upgrade) {
            return budget;
        }
        // Owners with no operation running hold no budget.
        budgets.retain(|_, b| b.strong_count() > 0);
        let budget = Arc::new(TempBudget::new(self.temp_bytes));
        budgets.insert(owner.to_string(), Arc::downgrade(&budget));
        budget
    }

    /// A connection to `owner`'s database for one operation within
    /// `bounds`: an idle one if there is one, else a new one, hardened.
    fn open(&self, owner: &str, bounds: Bounds) -> Result<(Hardened, Guard), SqlError> {
        // Waiting for a lock must not outlast the deadline.
        let left = bounds.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(deadline_error());
        }
        tempfiles::register().map_err(SqlError::Internal)?;
        // Temporary files opened from here on count against the owner.
        let temp = tempfiles::enter(self.temp_budget(owner), self.wal_limit());
        let hardened = match self.idle.take(owner, bounds.max_bytes) {
            Some(idle) => idle,
            None => self.connect(owner, bounds.max_bytes)?,
        };
        let conn = &hardened.conn;
        self.checkpoint_long_wal(owner, conn);
        conn.busy_timeout(left.min(BUSY_WAIT)).map_err(failed)?;
        let deadline = bounds.deadline;
        conn.progress_handler(10_000, Some(move || Instant::now() >= deadline));
        let guard = Guard {
            verdicts: hardened.verdicts.clone(),
            temp,
            quota: self.quota_bytes,
            temp_limit: self.temp_bytes,
            max_bytes: bounds.max_bytes,
            left: bounds.max_bytes,
        };
        Ok((hardened, guard))
    }

    /// Copy the WAL back into the database when it has grown long, so a
    /// write can start it over. SQLite does this after commits, but a
    /// reader can hold it off until the WAL reaches its limit, and then no
    /// write commits to do it; connections stay open between operations,
    /// so closing the last one does not do it either.
    fn checkpoint_long_wal(&self, owner: &str, conn: &Connection) {
        let wal = beside(&database_path(&self.root, owner), "-wal");
        let long = std::fs::metadata(wal).is_ok_and(|m| m.len() > self.wal_limit() / 2);
        if long {
            // SAFETY: the handle is this live connection's, used on this
            // thread only; a PASSIVE checkpoint of the main database takes
            // no out-parameters and waits for no lock.
            unsafe {
                rusqlite::ffi::sqlite3_wal_checkpoint_v2(
                    conn.handle(),
                    std::ptr::null(),
                    rusqlite::ffi::SQLITE_CHECKPOINT_PASSIVE,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
            }
        }
    }

    /// Open and harden a new connection to `owner`'s database.
    fn connect(&self, owner: &str, max_bytes: usize) -> Result<Hardened, SqlError> {
        std::fs::create_dir_all(&self.root).map_err(|e| SqlError::Internal(e.to_string()))?;
        // Before opening: a file replaced from here on is not this one.
        let generation = self.idle.generation(owner);
        let path = database_path(&self.root, owner);
        let conn = Connection::open_with_flags_and_vfs(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            tempfiles::VFS_NAME,
        )
        .map_err(failed)?;
        let page_size: u64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(failed)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA wal_autocheckpoint = {};
             PRAGMA trusted_schema = OFF;
             PRAGMA temp_store = FILE;
             PRAGMA journal_size_limit = {};
             PRAGMA max_page_count = {};",
            // A replicated database is checkpointed by Litestream, which
            // copies the log first: SQLite's own checkpoints after commits
            // raced it and left corrupt replicas under steady writes.
            if self.replicated { 0 } else { 1000 },
            self.quota_bytes,
            (self.quota_bytes / page_size.max(1)).max(1)
        ))
        .map_err(failed)?;
        let verdicts = policy::harden(&conn, max_bytes).map_err(failed)?;
        Ok(Hardened {
            conn,
            verdicts,
            max_bytes,
            generation,
        })
    }

    pub fn execute(
        &self,
        owner: &str,
        access: Access,
        statement: &Statement,
        bounds: Bounds,
    ) -> Result<ResultSet, SqlError> {
        let (mut hardened, mut guard) = self.open(owner, bounds)?;
        let result = (|| {
            // A transaction of its own, so that a write failing part-way
            // (say, a RETURNING past the result budget) leaves nothing behind.
            let tx = hardened.conn.transaction().map_err(failed)?;
            let result = run(&tx, &mut guard, access, statement)?;
            tx.commit().map_err(|e| guard.classify(e))?;
            Ok(result)
        })();
        self.idle.put(owner, hardened);
        result
    }

    /// Run every statement in one transaction: all or nothing.
    pub fn batch(
        &self,
        owner: &str,
        access: Access,
        statements: &[Statement],
        mode: Mode,
        bounds: Bounds,
    ) -> Result<Vec<ResultSet>, SqlError> {
        let (mut hardened, mut guard) = self.open(owner, bounds)?;
        let behavior = match mode {
            Mode::Write => rusqlite::TransactionBehavior::Immediate,
            Mode::Read | Mode::Deferred => rusqlite::TransactionBehavior::Deferred,
        };
        let access = match mode {
            Mode::Read => Access {
                write: false,
                ..access
            },
            _ => access,
        };
        let result = (|| {
            let tx = hardened
                .conn
                .transaction_with_behavior(behavior)
                .map_err(failed)?;
            let mut results = Vec::with_capacity(statements.len());
            for (i, statement) in statements.iter().enumerate() {
                let result = run(&tx, &mut guard, access, statement).map_err(|e| match (e, mode) {
                (SqlError::NeedsScope(Scope::SqliteWrite), Mode::Read) => SqlError::Invalid(format!(
                    "statement {i} writes, but batch mode `read` allows only read-only statements"
                )),
                (SqlError::Sql(m), _) => SqlError::Sql(format!("statement {i}: {m}")),
                (SqlError::Invalid(m), _) => SqlError::Invalid(format!("statement {i}: {m}")),
                (e, _) => e,
            })?;
                results.push(result);
            }
            tx.commit().map_err(|e| guard.classify(e))?;
            Ok(results)
        })();
        self.idle.put(owner, hardened);
        result
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
