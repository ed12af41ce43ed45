//! An operation on an owner's database as it travels from the node that
//! took the call to the database's home node, and its answer back: typed
//! values (blobs as hex), the caller's access as the first node checked
//! it, and the time left.

use rusqlite::types::Value;
use serde::{Deserialize, Serialize};
use valbox_model::Scope;

use super::store::{Access, Args, Mode, ResultSet, SqlError, Statement};

/// What a node asks the home node to run.
#[derive(Serialize, Deserialize)]
pub struct Forwarded {
    pub owner: String,
    pub read: bool,
    pub write: bool,
    pub op: WireOp,
    /// The caller's deadline, as time left when it was sent.
    pub remaining_ms: u64,
}

/// One statement, or a batch in one transaction.
pub enum Op {
    Execute(Statement),
    Batch(Vec<Statement>, Mode),
}

/// What an [`Op`] answers.
pub enum Output {
    One(ResultSet),
    Many(Vec<ResultSet>),
}

#[derive(Serialize, Deserialize)]
pub enum WireOp {
    Execute(WireStatement),
    Batch(Vec<WireStatement>, WireMode),
}

#[derive(Serialize, Deserialize)]
pub enum WireMode {
    Write,
    Read,
    Deferred,
}

#[derive(Serialize, Deserialize)]
pub struct WireStatement {
    sql: String,
    positional: Vec<WireValue>,
    named: Vec<(String, WireValue)>,
}

#[derive(Serialize, Deserialize)]
enum WireValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(String),
}

#[derive(Serialize, Deserialize)]
pub struct WireResultSet {
    columns: Vec<String>,
    column_types: Vec<String>,
    rows: Vec<Vec<WireValue>>,
    rows_affected: u64,
    last_insert_rowid: Option<i64>,
}

/// The home node's answer: the output or the error, and the scopes the
/// statements used (recorded on the node that took the call).
#[derive(Serialize, Deserialize)]
pub struct Answer {
    pub output: Result<WireOutput, WireError>,
    pub used: Vec<Scope>,
}

#[derive(Serialize, Deserialize)]
pub enum WireOutput {
    One(WireResultSet),
    Many(Vec<WireResultSet>),
}

/// A [`SqlError`] that can travel (a refusal travels as the scope).
#[derive(Serialize, Deserialize)]
pub enum WireError {
    NeedsScope(Scope),
    Sql(String),
    Invalid(String),
    Quota(String),
    TooLarge(String),
    Deadline(String),
    Busy(String),
    Internal(String),
    Unavailable(String),
}

fn value(v: Value) -> WireValue {
    match v {
        Value::Null => WireValue::Null,
        Value::Integer(i) => WireValue::Integer(i),
        Value::Real(f) => WireValue::Real(f),
        Value::Text(t) => WireValue::Text(t),
        Value::Blob(b) => WireValue::Blob(hex::encode(b)),
    }
}

fn from_value(v: WireValue) -> Result<Value, SqlError> {
    Ok(match v {
        WireValue::Null => Value::Null,
        WireValue::Integer(i) => Value::Integer(i),
        WireValue::Real(f) => Value::Real(f),
        WireValue::Text(t) => Value::Text(t),
        WireValue::Blob(b) => Value::Blob(
            hex::decode(b).map_err(|e| SqlError::Internal(format!("a forwarded blob: {e}")))?,
        ),
    })
}

fn statement(s: Statement) -> WireStatement {
    let (positional, named) = match s.args {
        Args::Positional(v) => (v.into_iter().map(value).collect(), Vec::new()),
        Args::Named(v) => (
            Vec::new(),
            v.into_iter().map(|(k, v)| (k, value(v))).collect(),
        ),
    };
    WireStatement {
        sql: s.sql,
        positional,
        named,
    }
}

fn from_statement(s: WireStatement) -> Result<Statement, SqlError> {
    let args = if s.named.is_empty() {
        let values = s.positional.into_iter().map(from_value);
        Args::Positional(values.collect::<Result<_, _>>()?)
    } else {
        let pairs = s.named.into_iter().map(|(k, v)| Ok((k, from_value(v)?)));
        Args::Named(pairs.collect::<Result<_, SqlError>>()?)
    };
    Ok(Statement { sql: s.sql, args })
}

fn result_set(r: ResultSet) -> WireResultSet {
    WireResultSet {
        columns: r.columns,
        column_types: r.column_types,
        rows: (r.rows.into_iter())
            .map(|row| row.into_iter().map(value).collect())
            .collect(),
        rows_affected: r.rows_affected,
        last_insert_rowid: r.last_insert_rowid,
    }
}

fn from_result_set(r: WireResultSet) -> Result<ResultSet, SqlError> {
    let rows = r.rows.into_iter().map(|row| {
        let values = row.into_iter().map(from_value);
        values.collect::<Result<Vec<_>, _>>()
    });
    Ok(ResultSet {
        columns: r.columns,
        column_types: r.column_types,
        rows: rows.collect::<Result<_, _>>()?,
        rows_affected: r.rows_affected,
        last_insert_rowid: r.last_insert_rowid,
    })
}

impl Op {
    pub fn to_wire(self) -> WireOp {
        match self {
            Op::Execute(s) => WireOp::Execute(statement(s)),
            Op::Batch(statements, mode) => WireOp::Batch(
                statements.into_iter().map(statement).collect(),
                match mode {
                    Mode::Write => WireMode::Write,
                    Mode::Read => WireMode::Read,
                    Mode::Deferred => WireMode::Deferred,
                },
            ),
        }
    }
}

impl WireOp {
    pub fn into_op(self) -> Result<Op, SqlError> {
        Ok(match self {
            WireOp::Execute(s) => Op::Execute(from_statement(s)?),
            WireOp::Batch(statements, mode) => Op::Batch(
                (statements.into_iter().map(from_statement)).collect::<Result<_, _>>()?,
                match mode {
                    WireMode::Write => Mode::Write,
                    WireMode::Read => Mode::Read,
                    WireMode::Deferred => Mode::Deferred,
                },
            ),
        })
    }
}

impl Forwarded {
    pub fn access(&self) -> Access {
        Access {
            read: self.read,
            write: self.write,
        }
    }
}

impl Answer {
    /// The home node's answer to a forwarded operation.
    pub fn new(output: Result<Output, SqlError>, used: Vec<Scope>) -> Self {
        let output = match output {
            Ok(Output::One(r)) => Ok(WireOutput::One(result_set(r))),
            Ok(Output::Many(rs)) => Ok(WireOutput::Many(rs.into_iter().map(result_set).collect())),
            Err(e) => Err(match e {
                // Refusals are made on the node that took the call; one
                // here can only be a statement's need.
                SqlError::Denied(d) => WireError::NeedsScope(d.scope),
                SqlError::NeedsScope(s) => WireError::NeedsScope(s),
                SqlError::Sql(m) => WireError::Sql(m),
                SqlError::Invalid(m) => WireError::Invalid(m),
                SqlError::Quota(m) => WireError::Quota(m),
                SqlError::TooLarge(m) => WireError::TooLarge(m),
                SqlError::Deadline(m) => WireError::Deadline(m),
                SqlError::Busy(m) => WireError::Busy(m),
                SqlError::Internal(m) => WireError::Internal(m),
                SqlError::Unavailable(m) => WireError::Unavailable(m),
            }),
        };
        Self { output, used }
    }

    /// The answer as the caller's node sees it.
    pub fn into_output(self) -> (Result<Output, SqlError>, Vec<Scope>) {
        let output = match self.output {
            Ok(WireOutput::One(r)) => from_result_set(r).map(Output::One),
            Ok(WireOutput::Many(rs)) => (rs.into_iter().map(from_result_set))
                .collect::<Result<_, _>>()
                .map(Output::Many),
            Err(e) => Err(match e {
                WireError::NeedsScope(s) => SqlError::NeedsScope(s),
                WireError::Sql(m) => SqlError::Sql(m),
                WireError::Invalid(m) => SqlError::Invalid(m),
                WireError::Quota(m) => SqlError::Quota(m),
                WireError::TooLarge(m) => SqlError::TooLarge(m),
                WireError::Deadline(m) => SqlError::Deadline(m),
                WireError::Busy(m) => SqlError::Busy(m),
                WireError::Internal(m) => SqlError::Internal(m),
                WireError::Unavailable(m) => SqlError::Unavailable(m),
            }),
        };
        (output, self.used)
    }
}
