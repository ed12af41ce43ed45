//! The `sqlite` WIT import, on the SQLite service: WIT values to SQLite's
//! and back.

use rusqlite::types::Value as SqlValue;

use super::Sqlite;
use super::store::{self, Args, Mode, SqlError};
use crate::Ctx;
use valbox_runtime::bindings::sqlite::{self as wit, BatchMode, Host, ResultSet, Statement, Value};
use valbox_runtime::bindings::types::Error;

fn to_sql(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(f) => SqlValue::Real(f),
        Value::Text(t) => SqlValue::Text(t),
        Value::Blob(b) => SqlValue::Blob(b),
    }
}

fn from_sql(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::Integer(i),
        SqlValue::Real(f) => Value::Real(f),
        SqlValue::Text(t) => Value::Text(t),
        SqlValue::Blob(b) => Value::Blob(b),
    }
}

fn statement(s: Statement) -> store::Statement {
    let args = match s.args {
        wit::Args::Positional(v) => Args::Positional(v.into_iter().map(to_sql).collect()),
        wit::Args::Named(v) => Args::Named(v.into_iter().map(|(k, v)| (k, to_sql(v))).collect()),
    };
    store::Statement { sql: s.sql, args }
}

fn result_set(r: store::ResultSet) -> ResultSet {
    ResultSet {
        columns: r.columns,
        column_types: r.column_types,
        rows: r
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(from_sql).collect())
            .collect(),
        rows_affected: r.rows_affected,
        last_insert_rowid: r.last_insert_rowid,
    }
}

impl From<SqlError> for Error {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::Denied(d) => Error::Denied(d.message),
            // The service turns this into `Denied`, recorded; kept whole.
            SqlError::NeedsScope(scope) => Error::Denied(format!("`{scope}` is needed")),
            SqlError::Sql(m) | SqlError::Invalid(m) => Error::Invalid(m),
            SqlError::Quota(m) | SqlError::TooLarge(m) | SqlError::Deadline(m) => Error::Limit(m),
            // Not the val's mistake: the message says to retry.
            SqlError::Busy(m) => Error::Internal(m),
            SqlError::Unavailable(m) => Error::Internal(m),
            SqlError::Internal(m) => {
                tracing::error!("sqlite: {m}");
                Error::Internal("the database failed; retry".into())
            }
        }
    }
}

impl Host for Ctx<'_, Sqlite> {
    async fn execute(&mut self, s: Statement) -> Result<ResultSet, Error> {
        let bounds = self.cap.bounds(self.grant.deadline());
        let result = self
            .cap
            .execute(self.grant, statement(s), bounds, None)
            .await?;
        Ok(result_set(result))
    }

    async fn batch(
        &mut self,
        statements: Vec<Statement>,
        mode: BatchMode,
    ) -> Result<Vec<ResultSet>, Error> {
        let bounds = self.cap.bounds(self.grant.deadline());
        let statements = statements.into_iter().map(statement).collect();
        let mode = match mode {
            BatchMode::Write => Mode::Write,
            BatchMode::Read => Mode::Read,
            BatchMode::Deferred => Mode::Deferred,
        };
        let results = self
            .cap
            .batch(self.grant, statements, mode, bounds, None)
            .await?;
        Ok(results.into_iter().map(result_set).collect())
    }
}
