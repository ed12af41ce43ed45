//! One SQLite database per owner (`sqlite/<owner>.sqlite3`, WAL, fsync on
//! commit). Each operation opens its own connection with guards on:
//! an authorizer that refuses ATTACH/DETACH, extension loading and the
//! pragmas that touch files or weaken safety, and flags transaction control;
//! SQLite's defensive mode; a progress handler that stops a statement at the
//! call's deadline; a page-count cap that enforces the size quota; and a
//! byte bound on any one value or row and on everything an operation returns.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql};

/// The longest a statement waits for another writer's lock (never past the
/// deadline).
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// Pragmas a val may run: they only read the schema.
const SAFE_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "user_version",
];

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
    NeedsScope(&'static str),
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
}

impl SqliteStore {
    pub fn new(root: PathBuf, quota_bytes: u64) -> Self {
        Self { root, quota_bytes }
    }

    fn open(&self, owner: &str, bounds: Bounds) -> Result<(Connection, Guard), SqlError> {
        // Waiting for a lock must not outlast the deadline.
        let left = bounds.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(deadline_error());
        }
        std::fs::create_dir_all(&self.root).map_err(|e| SqlError::Internal(e.to_string()))?;
        // Owner ids are UUIDs minted by this server, never user input.
        let path = self.root.join(format!("{owner}.sqlite3"));
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
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
             PRAGMA max_page_count = {};",
            (self.quota_bytes / page_size.max(1)).max(1)
        ))
        .map_err(failed)?;
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .map_err(failed)?;
        // Bound any one string, blob or row, so no single value can outgrow
        // the result budget.
        let max_len = i32::try_from(bounds.max_bytes).unwrap_or(i32::MAX);
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, max_len)
            .map_err(failed)?;
        let control = Arc::new(AtomicBool::new(false));
        let seen = control.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(ctx, &seen)));
        let deadline = bounds.deadline;
        conn.progress_handler(10_000, Some(move || Instant::now() >= deadline));
        let guard = Guard {
            control,
            quota: self.quota_bytes,
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
                (SqlError::NeedsScope("sqlite:write"), Mode::Read) => SqlError::Invalid(format!(
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
    /// Set by the authorizer when a statement controls transactions.
    control: Arc<AtomicBool>,
    quota: u64,
    max_bytes: usize,
    /// Result bytes the operation may still return.
    left: usize,
}

impl Guard {
    fn classify(&self, e: rusqlite::Error) -> SqlError {
        match e.sqlite_error_code() {
            Some(ErrorCode::OperationInterrupted) => deadline_error(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => busy_error(),
            Some(ErrorCode::DiskFull) => SqlError::Quota(format!(
                "the database is at its size quota of {} bytes",
                self.quota
            )),
            Some(ErrorCode::TooBig) => SqlError::TooLarge(format!(
                "{e}: a string, blob or row may be at most {} bytes",
                self.max_bytes
            )),
            Some(ErrorCode::AuthorizationForStatementDenied) => SqlError::Sql(format!(
                "{e}: ATTACH, DETACH, extension loading and pragmas other than {} are not allowed",
                SAFE_PRAGMAS.join(", ")
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

fn authorize(ctx: AuthContext<'_>, control: &AtomicBool) -> Authorization {
    match ctx.action {
        // Allowed here, because the host's own BEGIN and COMMIT pass through
        // too; `run` refuses them in the caller's SQL.
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            control.store(true, Ordering::Relaxed);
            Authorization::Allow
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let read_only_use = name != "user_version" || pragma_value.is_none();
            if SAFE_PRAGMAS.contains(&name.as_str()) && read_only_use {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
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
    guard.control.store(false, Ordering::Relaxed);
    let mut stmt = conn
        .prepare(&statement.sql)
        .map_err(|e| guard.classify(e))?;
    // A COMMIT or SAVEPOINT would break a batch's all-or-nothing.
    if guard.control.swap(false, Ordering::Relaxed) {
        return Err(SqlError::Invalid(
            "BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT and RELEASE are not allowed: each \
             statement runs in its own transaction and a batch in one; use a batch for \
             several statements that must succeed together"
                .into(),
        ));
    }
    let needed = if stmt.readonly() {
        "sqlite:read"
    } else {
        "sqlite:write"
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
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path().to_path_buf(), 1 << 30);
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
        let store = SqliteStore::new(dir.path().to_path_buf(), 1 << 20);
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
}
