//! One SQLite database per owner (`sqlite/<owner>.sqlite3`, WAL, fsync on
//! commit). Each operation opens its own connection with guards on:
//! an authorizer that refuses ATTACH/DETACH, extension loading and the
//! pragmas that touch files or weaken safety; SQLite's defensive mode; a
//! progress handler that stops a statement at the call's deadline; and a
//! page-count cap that enforces the size quota.

use std::path::PathBuf;
use std::time::Instant;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, ToSql};

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

#[derive(Debug)]
pub enum SqlError {
    /// The caller lacks the scope this statement needs.
    NeedsScope(&'static str),
    /// SQLite refused the statement; its message says why.
    Sql(String),
    Invalid(String),
    Limit(String),
    Internal(String),
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlError::NeedsScope(s) => write!(f, "this statement needs the `{s}` scope"),
            SqlError::Sql(m) | SqlError::Invalid(m) | SqlError::Limit(m) => f.write_str(m),
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

    fn open(&self, owner: &str, deadline: Instant) -> Result<Connection, SqlError> {
        std::fs::create_dir_all(&self.root).map_err(|e| SqlError::Internal(e.to_string()))?;
        // Owner ids are UUIDs minted by this server, never user input.
        let path = self.root.join(format!("{owner}.sqlite3"));
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(internal)?;
        let page_size: u64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(internal)?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 2000;
             PRAGMA trusted_schema = OFF;
             PRAGMA max_page_count = {};",
            (self.quota_bytes / page_size.max(1)).max(1)
        ))
        .map_err(internal)?;
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .map_err(internal)?;
        conn.authorizer(Some(authorize));
        conn.progress_handler(10_000, Some(move || Instant::now() >= deadline));
        Ok(conn)
    }

    pub fn execute(
        &self,
        owner: &str,
        access: Access,
        statement: &Statement,
        deadline: Instant,
    ) -> Result<ResultSet, SqlError> {
        let conn = self.open(owner, deadline)?;
        run(&conn, access, statement, self.quota_bytes)
    }

    /// Run every statement in one transaction: all or nothing.
    pub fn batch(
        &self,
        owner: &str,
        access: Access,
        statements: &[Statement],
        mode: Mode,
        deadline: Instant,
    ) -> Result<Vec<ResultSet>, SqlError> {
        let mut conn = self.open(owner, deadline)?;
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
        let tx = conn.transaction_with_behavior(behavior).map_err(internal)?;
        let mut results = Vec::with_capacity(statements.len());
        for (i, statement) in statements.iter().enumerate() {
            let result = run(&tx, access, statement, self.quota_bytes).map_err(|e| match (e, mode) {
                (SqlError::NeedsScope("sqlite:write"), Mode::Read) => SqlError::Invalid(format!(
                    "statement {i} writes, but batch mode `read` allows only read-only statements"
                )),
                (SqlError::Sql(m), _) => SqlError::Sql(format!("statement {i}: {m}")),
                (e, _) => e,
            })?;
            results.push(result);
        }
        tx.commit().map_err(|e| classify(e, self.quota_bytes))?;
        Ok(results)
    }
}

fn internal(e: rusqlite::Error) -> SqlError {
    SqlError::Internal(e.to_string())
}

fn classify(e: rusqlite::Error, quota: u64) -> SqlError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::OperationInterrupted) => {
            SqlError::Limit("the statement ran past the call's deadline and was interrupted".into())
        }
        Some(rusqlite::ErrorCode::DiskFull) => SqlError::Limit(format!(
            "the database is at its size quota of {quota} bytes"
        )),
        Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) => SqlError::Sql(format!(
            "{e}: ATTACH, DETACH, extension loading and pragmas other than {} are not allowed",
            SAFE_PRAGMAS.join(", ")
        )),
        _ => SqlError::Sql(e.to_string()),
    }
}

fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
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

fn run(
    conn: &Connection,
    access: Access,
    statement: &Statement,
    quota: u64,
) -> Result<ResultSet, SqlError> {
    let mut stmt = conn
        .prepare(&statement.sql)
        .map_err(|e| classify(e, quota))?;
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
                    .map_err(|e| classify(e, quota))?;
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
                    .map_err(|e| classify(e, quota))?
                    .ok_or_else(|| {
                        SqlError::Invalid(format!("the statement has no parameter `{key}`"))
                    })?;
                stmt.raw_bind_parameter(index, v as &dyn ToSql)
                    .map_err(|e| classify(e, quota))?;
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
        while let Some(row) = raw.next().map_err(|e| classify(e, quota))? {
            let mut out = Vec::with_capacity(width);
            for i in 0..width {
                out.push(row.get::<_, Value>(i).map_err(internal)?);
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
