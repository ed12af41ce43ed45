//! Running one statement of an operation: the authorizer's verdicts, the
//! scope it needs, its arguments, and its rows counted against the result
//! budget; and what a SQLite failure means to the caller.

use std::sync::atomic::Ordering;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode};
use valbox_sql::BindError;

use super::policy::Verdicts;
use super::store::{Access, Args, ResultSet, SqlError, Statement};
use super::tempfiles::Entered;
use valbox_model::{Scope, Scopes};

thread_local! {
    /// The scopes the statements run on this thread were allowed by since
    /// the last [`take_used`]: one operation's, for its holder's scope
    /// usage (an operation runs on one thread, `store::on_sql_thread`).
    static USED: std::cell::Cell<Scopes> = const { std::cell::Cell::new(Scopes::none()) };
}

/// The scopes this thread's statements used since the last call.
pub(super) fn take_used() -> Scopes {
    USED.with(|used| used.replace(Scopes::none()))
}

/// Views and triggers one database may hold: each use of a view expands the
/// views it reads, so their number bounds how deep a statement can nest.
pub(super) const MAX_VIEWS_AND_TRIGGERS: i64 = 1000;

/// What one operation's statements share.
pub(super) struct Guard {
    /// What the authorizer saw of the statement being prepared.
    pub(super) verdicts: Verdicts,
    /// Charges this thread's temporary files to the owner, while alive.
    pub(super) temp: Entered,
    pub(super) quota: u64,
    pub(super) temp_limit: u64,
    pub(super) max_bytes: usize,
    /// Result bytes the operation may still return.
    pub(super) left: usize,
}

impl Guard {
    pub(super) fn classify(&self, e: rusqlite::Error) -> SqlError {
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

pub(super) fn deadline_error() -> SqlError {
    SqlError::Deadline("the statement ran past the call's deadline and was interrupted".into())
}

pub(super) fn busy_error() -> SqlError {
    SqlError::Busy("the database is locked by another write in progress; retry shortly".into())
}

/// A failure outside the caller's SQL (opening, BEGIN): a lock held
/// elsewhere is worth a retry, the rest is ours.
pub(super) fn failed(e: rusqlite::Error) -> SqlError {
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

/// Bind `args` to the statement's parameters; what SQLite refuses is
/// classified as its other failures are.
fn bind(
    stmt: &mut rusqlite::Statement<'_>,
    guard: &mut Guard,
    args: &Args,
) -> Result<(), SqlError> {
    args.bind(stmt).map_err(|e| match e {
        BindError::Sqlite(e) => guard.classify(e),
        e => SqlError::Invalid(e.to_string()),
    })
}

pub(super) fn run(
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
    USED.with(|used| used.set(used.get().with(needed)));
    bind(&mut stmt, guard, &statement.args)?;
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
