//! SQLite per owner: the host import (read-only statements need
//! `sqlite:read`, any other `sqlite:write`), its storage (`store`) and its
//! REST routes (`routes`).

mod functions;
pub mod policy;
mod routes;
mod statement;
pub mod store;
mod tempfiles;

pub use routes::routes;
pub use store::SqliteStore;

use rusqlite::types::Value as SqlValue;
use store::{Access, Args, Bounds, Mode, SqlError};

use super::CallContext;
use crate::auth::Scope;
use crate::runtime::bindings::sqlite::{self as wit, BatchMode, Host, ResultSet, Statement, Value};
use crate::runtime::bindings::types::Error;

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

impl CallContext {
    /// The call's deadline; the blob size limit also bounds a value, a row
    /// and a result, so no query can take more memory than a blob.
    fn bounds(&self) -> Bounds {
        Bounds {
            deadline: self.deadline,
            max_bytes: self.blobs.max_blob_bytes,
        }
    }

    async fn with_sqlite<R: Send + 'static>(
        &mut self,
        op: impl FnOnce(&SqliteStore, &str, Access) -> Result<R, SqlError> + Send + 'static,
    ) -> Result<R, Error> {
        let access = Access {
            read: self.allowed(Scope::SqliteRead),
            write: self.allowed(Scope::SqliteWrite),
        };
        if !access.read && !access.write {
            return Err(self.deny(Scope::SqliteRead));
        }
        let (store, owner) = (self.sqlite.clone(), self.owner_id.clone());
        let result = store::on_sql_thread(move || op(&store, &owner, access)).await;
        result.map_err(|e| match e {
            SqlError::NeedsScope(scope) => self.deny(scope),
            SqlError::Sql(m) | SqlError::Invalid(m) => Error::Invalid(m),
            SqlError::Quota(m) | SqlError::TooLarge(m) | SqlError::Deadline(m) => Error::Limit(m),
            // Not the val's mistake: the message says to retry.
            SqlError::Busy(m) => Error::Internal(m),
            SqlError::Internal(m) => {
                tracing::error!("sqlite: {m}");
                Error::Internal("the database failed; retry".into())
            }
        })
    }
}

impl Host for CallContext {
    async fn execute(&mut self, s: Statement) -> Result<ResultSet, Error> {
        let bounds = self.bounds();
        let s = statement(s);
        self.with_sqlite(move |store, owner, access| store.execute(owner, access, &s, bounds))
            .await
            .map(result_set)
    }

    async fn batch(
        &mut self,
        statements: Vec<Statement>,
        mode: BatchMode,
    ) -> Result<Vec<ResultSet>, Error> {
        let bounds = self.bounds();
        let statements: Vec<_> = statements.into_iter().map(statement).collect();
        let mode = match mode {
            BatchMode::Write => Mode::Write,
            BatchMode::Read => Mode::Read,
            BatchMode::Deferred => Mode::Deferred,
        };
        let results = self
            .with_sqlite(move |store, owner, access| {
                store.batch(owner, access, &statements, mode, bounds)
            })
            .await?;
        Ok(results.into_iter().map(result_set).collect())
    }
}
