//! One SQLite database per owner (`sqlite/<owner>.sqlite3`, WAL, fsync on
//! commit). Each operation opens its own connection, hardened by `policy`
//! (allowlisted functions, modules and pragmas, defensive mode), with its
//! temporary files counted against the owner's budget (`tempfiles`), a
//! progress handler that stops a statement at the call's deadline, a
//! page-count cap that enforces the size quota, and a byte bound on any one
//! value or row and on everything an operation returns.

use crate::auth::Scope;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::policy::{self, Verdicts};
use super::tempfiles::{self, Entered, TempBudget};

/// The longest a statement waits for another writer's lock (never past the
/// deadline).
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// Stack of the threads that run owners' SQL. SQLite expands views and
/// CTEs recursively, and a 1 MiB statement over a long chain of views nests
/// far deeper than a default 2 MiB stack holds; a stack overflow would abort
/// the whole server. Only the pages a statement touches are committed.
const SQL_THREAD_STACK: usize = 256 << 20;

/// Views and triggers one database may hold: each use of a view expands the
/// views it reads, so their number bounds how deep a statement can nest.
const MAX_VIEWS_AND_TRIGGERS: i64 = 1000;

/// Run `work` on a thread of its own with a stack deep enough for any
/// statement the store accepts, and wait for its result without blocking
/// the async runtime.
pub async fn on_sql_thread<R: Send + 'static>(
    work: impl FnOnce() -> Result<R, SqlError> + Send + 'static,
) -> Result<R, SqlError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("valbox-sql".into())
        .stack_size(SQL_THREAD_STACK)
        .spawn(move || {
            let _ = done.send(work());
        })
        .map_err(|e| SqlError::Internal(format!("starting a SQL thread: {e}")))?;
    result
        .await
        .map_err(|_| SqlError::Internal("a SQL thread ended without an answer".into()))?
}

pub enum Args {
    Positional(Vec<Value>),
    Named(Vec<(String, Value)>),
}

pub struct Statement {
    pub sql: String,
    pub args: Args,
}

#[derive(Debug, Default)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub column_types: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub rows_affected: u64,
    pub last_insert_rowid: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

#[derive(Debug)]
pub enum SqlError {
    /// The caller lacks the scope this statement needs.
    NeedsScope(Scope),
    /// SQLite refused the statement; its message says why.
    Sql(String),
    Invalid(String),
    /// The database is at its size quota.
    Quota(String),
    /// A value, a row or the whole result is over the size limit.
    TooLarge(String),
    /// The operation ran past its deadline.
    Deadline(String),
    /// Another writer holds the lock: not the caller's mistake; retry.
    Busy(String),
    Internal(String),
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlError::NeedsScope(s) => write!(f, "this statement needs the `{s}` scope"),
            SqlError::Sql(m)
            | SqlError::Invalid(m)
            | SqlError::Quota(m)
            | SqlError::TooLarge(m)
            | SqlError::Deadline(m)
            | SqlError::Busy(m) => f.write_str(m),
            SqlError::Internal(m) => write!(f, "the database failed: {m}"),
        }
    }
}

/// What the caller may do, from its token's scopes.
#[derive(Clone, Copy)]
pub struct Access {
    pub read: bool,
    pub write: bool,
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
}

impl SqliteStore {
    pub fn new(root: PathBuf, quota_bytes: u64, temp_bytes: u64) -> Self {
        Self {
            root,
            quota_bytes,
            temp_bytes,
            temp_budgets: Arc::default(),
            concurrent_per_owner: usize::MAX >> 4,
            in_flight: Arc::default(),
        }
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

    fn open(&self, owner: &str, bounds: Bounds) -> Result<(Connection, Guard), SqlError> {
        // Waiting for a lock must not outlast the deadline.
        let left = bounds.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(deadline_error());
        }
        tempfiles::register().map_err(SqlError::Internal)?;
        std::fs::create_dir_all(&self.root).map_err(|e| SqlError::Internal(e.to_string()))?;
        // Temporary files opened from here on count against the owner.
        let temp = tempfiles::enter(self.temp_budget(owner), self.wal_limit());
        // Owner ids are UUIDs minted by this server, never user input.
        let path = self.root.join(format!("{owner}.sqlite3"));
        let conn = Connection::open_with_flags_and_vfs(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            tempfiles::VFS_NAME,
        )
        .map_err(failed)?;
        conn.busy_timeout(left.min(BUSY_WAIT)).map_err(failed)?;
        let page_size: u64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(failed)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA trusted_schema = OFF;
             PRAGMA temp_store = FILE;
             PRAGMA journal_size_limit = {};
             PRAGMA max_page_count = {};",
            self.quota_bytes,
            (self.quota_bytes / page_size.max(1)).max(1)
        ))
        .map_err(failed)?;
        let verdicts = policy::harden(&conn, bounds.max_bytes).map_err(failed)?;
        let deadline = bounds.deadline;
        conn.progress_handler(10_000, Some(move || Instant::now() >= deadline));
        let guard = Guard {
            verdicts,
            temp,
            quota: self.quota_bytes,
            temp_limit: self.temp_bytes,
            max_bytes: bounds.max_bytes,
            left: bounds.max_bytes,
        };
        Ok((conn, guard))
    }

    pub fn execute(
        &self,
        owner: &str,
        access: Access,
        statement: &Statement,
        bounds: Bounds,
    ) -> Result<ResultSet, SqlError> {
        let (mut conn, mut guard) = self.open(owner, bounds)?;
        // A transaction of its own, so that a write failing part-way (say, a
        // RETURNING past the result budget) leaves nothing behind.
        let tx = conn.transaction().map_err(failed)?;
        let result = run(&tx, &mut guard, access, statement)?;
        tx.commit().map_err(|e| guard.classify(e))?;
        Ok(result)
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
        let (mut conn, mut guard) = self.open(owner, bounds)?;
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
        let tx = conn.transaction_with_behavior(behavior).map_err(failed)?;
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
    }
}

/// What one operation's statements share.
struct Guard {
    /// What the authorizer saw of the statement being prepared.
    verdicts: Verdicts,
    /// Charges this thread's temporary files to the owner, while alive.
    temp: Entered,
    quota: u64,
    temp_limit: u64,
    max_bytes: usize,
    /// Result bytes the operation may still return.
    left: usize,
}

impl Guard {
    fn classify(&self, e: rusqlite::Error) -> SqlError {
        // The authorizer's own reason is the most precise one.
        if let Some(why) = self.verdicts.take_refusal() {
            return SqlError::Sql(why);
        }
        match e.sqlite_error_code() {
            Some(ErrorCode::OperationInterrupted) => deadline_error(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => busy_error(),
            Some(ErrorCode::DiskFull) if self.temp.refused() => SqlError::Quota(format!(
                "the statement needs more temporary storage (TEMP tables, sorts, DISTINCT, \
                 subqueries) than the limit of {} bytes for all of an owner's statements \
                 running at once; narrow it, for example with LIMIT or an index",
                self.temp_limit
            )),
            Some(ErrorCode::DiskFull) => SqlError::Quota(format!(
                "the database is at its size quota of {} bytes",
                self.quota
            )),
            Some(ErrorCode::OutOfMemory) => SqlError::TooLarge(
                "the statement needs more memory than the server allows for SQLite; select \
                 fewer or smaller values at once"
                    .into(),
            ),
            Some(ErrorCode::TooBig) => SqlError::TooLarge(format!(
                "{e}: a string, blob or row may be at most {} bytes",
                self.max_bytes
            )),
            _ => SqlError::Sql(e.to_string()),
        }
    }

    /// Count `bytes` of result against the budget.
    fn spend(&mut self, bytes: usize) -> Result<(), SqlError> {
        self.left = self.left.checked_sub(bytes).ok_or_else(|| {
            SqlError::TooLarge(format!(
                "the result is larger than the limit of {} bytes (a batch's results count \
                 together); select fewer or smaller rows, for example with LIMIT",
                self.max_bytes
            ))
        })?;
        Ok(())
    }
}

fn deadline_error() -> SqlError {
    SqlError::Deadline("the statement ran past the call's deadline and was interrupted".into())
}

fn busy_error() -> SqlError {
    SqlError::Busy("the database is locked by another write in progress; retry shortly".into())
}

/// A failure outside the caller's SQL (opening, BEGIN): a lock held
/// elsewhere is worth a retry, the rest is ours.
fn failed(e: rusqlite::Error) -> SqlError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => busy_error(),
        _ => SqlError::Internal(e.to_string()),
    }
}

/// Refuse a new view or trigger once the database holds the most it may.
fn refuse_past_schema_cap(conn: &Connection) -> Result<(), SqlError> {
    let held: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM sqlite_schema WHERE type IN ('view', 'trigger')) \
                  + (SELECT count(*) FROM sqlite_temp_schema WHERE type IN ('view', 'trigger'))",
            [],
            |r| r.get(0),
        )
        .map_err(|e| SqlError::Internal(e.to_string()))?;
    if held >= MAX_VIEWS_AND_TRIGGERS {
        return Err(SqlError::Quota(format!(
            "the database already holds {held} views and triggers, the most it may; drop \
             some first"
        )));
    }
    Ok(())
}

/// A value's bytes as the result holds them.
fn size(v: ValueRef<'_>) -> usize {
    let heap = match v {
        ValueRef::Text(b) | ValueRef::Blob(b) => b.len(),
        _ => 0,
    };
    std::mem::size_of::<Value>() + heap
}

fn owned(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        // SQLite text need not be UTF-8 (`CAST(x'ff' AS TEXT)`).
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn run(
    conn: &Connection,
    guard: &mut Guard,
    access: Access,
    statement: &Statement,
) -> Result<ResultSet, SqlError> {
    guard.verdicts.reset();
    let mut stmt = conn
        .prepare(&statement.sql)
        .map_err(|e| guard.classify(e))?;
    // A COMMIT or SAVEPOINT would break a batch's all-or-nothing.
    if guard.verdicts.control.swap(false, Ordering::Relaxed) {
        return Err(SqlError::Invalid(
            "BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT and RELEASE are not allowed: each \
             statement runs in its own transaction and a batch in one; use a batch for \
             several statements that must succeed together"
                .into(),
        ));
    }
    if guard.verdicts.grows_schema.swap(false, Ordering::Relaxed) {
        refuse_past_schema_cap(conn)?;
    }
    let needed = if stmt.readonly() {
        Scope::SqliteRead
    } else {
        Scope::SqliteWrite
    };
    let allowed = if stmt.readonly() {
        access.read
    } else {
        access.write
    };
    if !allowed {
        return Err(SqlError::NeedsScope(needed));
    }
    match &statement.args {
        Args::Positional(values) => {
            if values.len() != stmt.parameter_count() {
                return Err(SqlError::Invalid(format!(
                    "the statement has {} parameters but {} arguments were given",
                    stmt.parameter_count(),
                    values.len()
                )));
            }
            for (i, v) in values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, v)
                    .map_err(|e| guard.classify(e))?;
            }
        }
        Args::Named(pairs) => {
            for (name, v) in pairs {
                let key = if name.starts_with([':', '@', '$']) {
                    name.clone()
                } else {
                    format!(":{name}")
                };
                let index = stmt
                    .parameter_index(&key)
                    .map_err(|e| guard.classify(e))?
                    .ok_or_else(|| {
                        SqlError::Invalid(format!("the statement has no parameter `{key}`"))
                    })?;
                stmt.raw_bind_parameter(index, v as &dyn ToSql)
                    .map_err(|e| guard.classify(e))?;
            }
        }
    }
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let column_types: Vec<String> = stmt
        .columns()
        .iter()
        .map(|c| c.decl_type().unwrap_or("").to_string())
        .collect();
    let width = columns.len();
    let mut rows = Vec::new();
    {
        let mut raw = stmt.raw_query();
        while let Some(row) = raw.next().map_err(|e| guard.classify(e))? {
            let mut out = Vec::with_capacity(width);
            for i in 0..width {
                let value = row.get_ref(i).map_err(|e| guard.classify(e))?;
                // Counted before it is copied: memory stays within the budget.
                guard.spend(size(value))?;
                out.push(owned(value));
            }
            rows.push(out);
        }
    }
    let writes = !stmt.readonly();
    Ok(ResultSet {
        columns,
        column_types,
        rows,
        rows_affected: if writes { conn.changes() } else { 0 },
        last_insert_rowid: writes.then(|| conn.last_insert_rowid()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Access = Access {
        read: true,
        write: true,
    };

    fn sql(text: &str) -> Statement {
        Statement {
            sql: text.into(),
            args: Args::Positional(Vec::new()),
        }
    }

    fn bounds(within: Duration) -> Bounds {
        Bounds {
            deadline: Instant::now() + within,
            max_bytes: 1 << 20,
        }
    }

    #[test]
    fn a_write_returning_past_the_budget_leaves_nothing_behind() {
        let (_dir, store) = roomy_store();
        let long = bounds(Duration::from_secs(10));
        store
            .execute("o", ALL, &sql("CREATE TABLE t (x)"), long)
            .unwrap();
        let insert = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                      WHERE i < 100) INSERT INTO t SELECT randomblob(100000) FROM n RETURNING x";
        let e = store.execute("o", ALL, &sql(insert), long).unwrap_err();
        assert!(matches!(e, SqlError::TooLarge(_)), "{e}");
        let rs = store
            .execute("o", ALL, &sql("SELECT count(*) FROM t"), long)
            .unwrap();
        assert_eq!(rs.rows, vec![vec![Value::Integer(0)]]);
    }

    #[test]
    fn waiting_for_a_lock_stops_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path().to_path_buf(), 1 << 20, 1 << 20);
        let long = bounds(Duration::from_secs(10));
        store
            .execute("o", ALL, &sql("CREATE TABLE t (x)"), long)
            .unwrap();
        let holder = Connection::open(dir.path().join("o.sqlite3")).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = Instant::now();
        let e = store
            .execute(
                "o",
                ALL,
                &sql("INSERT INTO t VALUES (1)"),
                bounds(Duration::from_millis(300)),
            )
            .unwrap_err();
        assert!(matches!(e, SqlError::Busy(_)), "{e}");
        // Well under BUSY_WAIT: the wait was cut to the deadline.
        assert!(started.elapsed() < Duration::from_millis(1500));
    }

    /// A store whose quota and temporary budget no test here reaches.
    fn roomy_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path().to_path_buf(), 1 << 30, 1 << 30);
        (dir, store)
    }

    fn refused(store: &SqliteStore, text: &str) -> SqlError {
        let e = store
            .execute("o", ALL, &sql(text), bounds(Duration::from_secs(10)))
            .unwrap_err();
        eprintln!("{:.80} -> {e}", text);
        e
    }

    fn rows(store: &SqliteStore, text: &str) -> Vec<Vec<Value>> {
        store
            .execute("o", ALL, &sql(text), bounds(Duration::from_secs(10)))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .rows
    }

    #[test]
    fn functions_outside_the_allowlist_are_refused_by_name() {
        let (_dir, store) = roomy_store();
        for (text, name) in [
            ("SELECT hex(fts3_tokenizer('simple'))", "fts3_tokenizer"),
            ("SELECT load_extension('/tmp/x')", "load_extension"),
            (
                "SELECT sqlite_compileoption_get(0)",
                "sqlite_compileoption_get",
            ),
            ("SELECT fts5('x')", "fts5"),
            ("SELECT rtreenode(2, x'00')", "rtreenode"),
            (
                "SELECT sqlite_rename_table(1, 2, 3, 4, 5, 6, 7)",
                "sqlite_rename_table",
            ),
        ] {
            let e = refused(&store, text);
            assert!(
                matches!(&e, SqlError::Sql(m) if m.contains(name)),
                "{text}: {e}"
            );
        }
        // Bound parameters do not get past the authorizer either.
        let evil = Statement {
            sql: "SELECT fts3_tokenizer(?, ?)".into(),
            args: Args::Positional(vec![Value::Text("evil".into()), Value::Blob(vec![0x41; 8])]),
        };
        let e = store
            .batch(
                "o",
                ALL,
                &[evil],
                Mode::Write,
                bounds(Duration::from_secs(5)),
            )
            .unwrap_err();
        assert!(matches!(e, SqlError::Sql(_)), "{e}");
    }

    #[test]
    fn unlisted_functions_fail_even_where_the_authorizer_is_not_asked() {
        let (_dir, store) = roomy_store();
        rows(
            &store,
            "CREATE TABLE d (a, b DEFAULT (sqlite_compileoption_get(0)), \
             c DEFAULT (fts5_source_id()))",
        );
        // Refused as unsafe in a schema, or as not allowed: never run.
        let e = refused(&store, "INSERT INTO d (a) VALUES (1)");
        assert!(matches!(e, SqlError::Sql(_)), "{e}");
    }

    #[test]
    fn a_long_chain_of_views_or_ctes_cannot_overflow_the_stack() {
        let (_dir, store) = roomy_store();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let run = |text: String| {
            let store = store.clone();
            rt.block_on(on_sql_thread(move || {
                store.execute("o", ALL, &sql(&text), bounds(Duration::from_secs(20)))
            }))
        };
        let mut ctes: Vec<String> = vec!["c0(x) AS (SELECT 1)".into()];
        ctes.extend((1..10_000).map(|i| format!("c{i}(x) AS (SELECT x FROM c{})", i - 1)));
        let chain = format!("WITH {} SELECT x FROM c9999", ctes.join(", "));
        // Whether SQLite takes it or not, the server lives to answer.
        let _ = run(chain);
        run("CREATE TABLE t (x)".into()).unwrap();
        let views: Vec<Statement> = (0..MAX_VIEWS_AND_TRIGGERS)
            .map(|i| match i {
                0 => sql("CREATE VIEW v0 AS SELECT x FROM t"),
                i => sql(&format!("CREATE VIEW v{i} AS SELECT x FROM v{}", i - 1)),
            })
            .collect();
        let long = bounds(Duration::from_secs(60));
        store.batch("o", ALL, &views, Mode::Write, long).unwrap();
        let e = run("CREATE VIEW one_more AS SELECT 1".into()).unwrap_err();
        assert!(
            matches!(&e, SqlError::Quota(m) if m.contains("views")),
            "{e}"
        );
        run(format!("SELECT * FROM v{}", MAX_VIEWS_AND_TRIGGERS - 1)).unwrap();
    }

    #[test]
    fn modules_and_pragmas_outside_the_allowlists_are_refused() {
        let (_dir, store) = roomy_store();
        for text in [
            "CREATE VIRTUAL TABLE temp.f USING fts3(content, tokenize=evil)",
            "CREATE VIRTUAL TABLE f USING fts4(content)",
            "CREATE VIRTUAL TABLE r USING rtree(id, a, b)",
            "SELECT * FROM dbstat",
            "SELECT * FROM sqlite_dbpage",
            "SELECT * FROM fts3tokenize",
            "SELECT * FROM pragma_database_list",
            "SELECT * FROM pragma_compile_options",
            "PRAGMA writable_schema = ON",
            "PRAGMA temp_store = MEMORY",
            "PRAGMA journal_mode = DELETE",
            "ATTACH 'x.db' AS x",
            "ATTACH 'file:x.db?mode=rwc' AS x",
            "VACUUM INTO '/tmp/valbox-vacuum-into.db'",
        ] {
            assert!(matches!(refused(&store, text), SqlError::Sql(_)), "{text}");
        }
    }

    #[test]
    fn huge_values_and_endless_queries_end_in_clear_errors() {
        let (_dir, store) = roomy_store();
        // A width past the length limit makes NULL, not a huge string.
        let r = rows(&store, "SELECT printf('%.*c', 2000000000, 'x')");
        assert_eq!(r, vec![vec![Value::Null]]);
        for text in [
            "SELECT zeroblob(2000000000)",
            "SELECT randomblob(2000000000)",
        ] {
            assert!(
                matches!(refused(&store, text), SqlError::TooLarge(_)),
                "{text}"
            );
        }
        let endless = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) \
                       SELECT count(*) FROM r";
        let e = store
            .execute("o", ALL, &sql(endless), bounds(Duration::from_millis(300)))
            .unwrap_err();
        assert!(matches!(e, SqlError::Deadline(_)), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        let (_dir, store) = roomy_store();
        let deep = |open: &str, inner: &str, close: &str, n: usize| {
            format!("{}{inner}{}", open.repeat(n), close.repeat(n))
        };
        // Parentheses alone add no depth: SQLite's parser takes them.
        let r = rows(&store, &format!("SELECT {}", deep("(", "1", ")", 100_000)));
        assert_eq!(r, vec![vec![Value::Integer(1)]]);
        for text in [
            format!("SELECT {}", deep("(SELECT ", "1", ")", 5_000)),
            format!("SELECT 1{}", " OR 1".repeat(50_000)),
            format!("SELECT {}", deep("abs(", "1", ")", 5_000)),
        ] {
            refused(&store, &text);
        }
        // Deep JSON is refused by the JSON parser's own depth limit.
        let json = format!("SELECT json('{}')", deep("[", "1", "]", 100_000));
        assert!(refused(&store, &json).to_string().contains("JSON"));
    }

    #[test]
    fn the_allowed_features_work() {
        let (_dir, store) = roomy_store();
        rows(&store, "CREATE TABLE t (a INTEGER, b TEXT)");
        rows(
            &store,
            "INSERT INTO t VALUES (1, '{\"k\": 2}'), (2, '[1,2]')",
        );
        let r = rows(
            &store,
            "SELECT a, b ->> '$.k', row_number() OVER (ORDER BY a DESC), \
             typeof(unixepoch(CURRENT_TIMESTAMP)) FROM t ORDER BY a",
        );
        assert_eq!(r[0][1], Value::Integer(2));
        assert_eq!(r[0][2], Value::Integer(2));
        assert_eq!(r[0][3], Value::Text("integer".into()));
        let r = rows(&store, "SELECT count(*) FROM t, json_each(t.b)");
        assert_eq!(r, vec![vec![Value::Integer(3)]]);
        let r = rows(
            &store,
            "SELECT name FROM pragma_table_info('t') ORDER BY cid",
        );
        assert_eq!(r.len(), 2);
        rows(&store, "ALTER TABLE t RENAME TO u");
        rows(&store, "ALTER TABLE u DROP COLUMN b");
        rows(&store, "CREATE VIRTUAL TABLE docs USING fts5(body)");
        rows(
            &store,
            "INSERT INTO docs VALUES ('hello world'), ('goodbye')",
        );
        let r = rows(
            &store,
            "SELECT highlight(docs, 0, '[', ']') FROM docs WHERE docs MATCH 'hello' \
             ORDER BY bm25(docs)",
        );
        assert_eq!(r, vec![vec![Value::Text("[hello] world".into())]]);
        rows(&store, "DROP TABLE docs");
    }

    #[test]
    fn the_wal_stops_growing_while_a_reader_pins_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path().to_path_buf(), 1 << 20, 1 << 30);
        rows(&store, "CREATE TABLE t (b)");
        // A reader that never ends keeps the WAL from restarting.
        let reader = Connection::open(dir.path().join("o.sqlite3")).unwrap();
        reader
            .execute_batch("BEGIN; SELECT count(*) FROM t;")
            .unwrap();
        let churn = [
            sql("INSERT INTO t VALUES (zeroblob(200000))"),
            sql("DELETE FROM t"),
        ];
        let write = || {
            store.batch(
                "o",
                ALL,
                &churn,
                Mode::Write,
                bounds(Duration::from_secs(10)),
            )
        };
        let e = (0..1000)
            .find_map(|_| write().err())
            .expect("the WAL grew without bound");
        assert!(matches!(e, SqlError::Quota(_)), "{e}");
        let wal = std::fs::metadata(dir.path().join("o.sqlite3-wal"))
            .unwrap()
            .len();
        assert!(wal <= store.wal_limit(), "{wal}");
        drop(reader);
        // Once the reader is gone, writes go on.
        write().unwrap();
    }

    #[test]
    fn temporary_storage_is_bounded_per_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path().to_path_buf(), 1 << 30, 2 << 20);
        let temp_table = [
            sql("CREATE TEMP TABLE big (b)"),
            sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                 INSERT INTO temp.big SELECT zeroblob(100000) FROM n",
            ),
        ];
        let e = store
            .batch(
                "o",
                ALL,
                &temp_table,
                Mode::Write,
                bounds(Duration::from_secs(10)),
            )
            .unwrap_err();
        assert!(
            matches!(&e, SqlError::Quota(m) if m.contains("temporary")),
            "{e}"
        );
        // A sort that spills is bounded too.
        let sort = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
                    WHERE i < 20000) SELECT count(*) FROM (SELECT randomblob(1000) AS x \
                    FROM n ORDER BY x)";
        let e = refused(&store, sort);
        assert!(
            matches!(&e, SqlError::Quota(m) if m.contains("temporary")),
            "{e}"
        );
        // Nothing stays charged once the operations end; small ones run.
        assert_eq!(store.temp_budget("o").used(), 0);
        let r = rows(
            &store,
            "SELECT count(*) FROM (SELECT DISTINCT 1 UNION SELECT 2)",
        );
        assert_eq!(r, vec![vec![Value::Integer(2)]]);
    }
}
