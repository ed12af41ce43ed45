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
    Batch(Vec<WireStatement>, Mode),
}

#[derive(Serialize, Deserialize)]
pub struct WireStatement {
    sql: String,
    args: WireArgs,
}

#[derive(Serialize, Deserialize)]
enum WireArgs {
    Positional(Vec<WireValue>),
    Named(Vec<(String, WireValue)>),
}

#[derive(Serialize, Deserialize)]
enum WireValue {
    Null,
    Integer(i64),
    /// The bits: JSON has no infinities or NaN.
    Real(u64),
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
        Value::Real(f) => WireValue::Real(f.to_bits()),
        Value::Text(t) => WireValue::Text(t),
        Value::Blob(b) => WireValue::Blob(hex::encode(b)),
    }
}

fn from_value(v: WireValue) -> Result<Value, SqlError> {
    Ok(match v {
        WireValue::Null => Value::Null,
        WireValue::Integer(i) => Value::Integer(i),
        WireValue::Real(bits) => Value::Real(f64::from_bits(bits)),
        WireValue::Text(t) => Value::Text(t),
        WireValue::Blob(b) => Value::Blob(
            hex::decode(b).map_err(|e| SqlError::Internal(format!("a forwarded blob: {e}")))?,
        ),
    })
}

fn statement(s: Statement) -> WireStatement {
    let args = match s.args {
        Args::Positional(v) => WireArgs::Positional(v.into_iter().map(value).collect()),
        Args::Named(v) => WireArgs::Named(v.into_iter().map(|(k, v)| (k, value(v))).collect()),
    };
    WireStatement { sql: s.sql, args }
}

fn from_statement(s: WireStatement) -> Result<Statement, SqlError> {
    let args = match s.args {
        WireArgs::Positional(values) => Args::Positional(
            values
                .into_iter()
                .map(from_value)
                .collect::<Result<_, _>>()?,
        ),
        WireArgs::Named(pairs) => {
            let pairs = pairs.into_iter().map(|(k, v)| Ok((k, from_value(v)?)));
            Args::Named(pairs.collect::<Result<_, SqlError>>()?)
        }
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
            Op::Batch(statements, mode) => {
                WireOp::Batch(statements.into_iter().map(statement).collect(), mode)
            }
        }
    }
}

impl WireOp {
    pub fn into_op(self) -> Result<Op, SqlError> {
        Ok(match self {
            WireOp::Execute(s) => Op::Execute(from_statement(s)?),
            WireOp::Batch(statements, mode) => Op::Batch(
                (statements.into_iter().map(from_statement)).collect::<Result<_, _>>()?,
                mode,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(values: &[Value]) -> Vec<String> {
        let show = |v: &Value| match v {
            Value::Real(f) => format!("real {:x}", f.to_bits()),
            other => format!("{other:?}"),
        };
        values.iter().map(show).collect()
    }

    /// Every value survives the trip, infinities, NaN and empty named
    /// arguments included.
    #[test]
    fn values_and_arguments_cross_unchanged() {
        let values = vec![
            Value::Null,
            Value::Integer(i64::MIN),
            Value::Real(f64::INFINITY),
            Value::Real(f64::NAN),
            Value::Real(-0.5),
            Value::Text("déjà \u{0}".into()),
            Value::Blob(vec![0, 255, 10]),
        ];
        let positional = Statement {
            sql: "SELECT ?".into(),
            args: Args::Positional(values.clone()),
        };
        let named = Statement {
            sql: "SELECT :a".into(),
            args: Args::Named(Vec::new()),
        };
        let op = Op::Batch(vec![positional, named], Mode::Read);
        let json = serde_json::to_string(&op.to_wire()).unwrap();
        let back: WireOp = serde_json::from_str(&json).unwrap();
        let Op::Batch(statements, Mode::Read) = back.into_op().unwrap() else {
            panic!("not the batch sent");
        };
        let Args::Positional(got) = &statements[0].args else {
            panic!("positional arguments came back named");
        };
        assert_eq!(shown(got), shown(&values));
        assert!(matches!(&statements[1].args, Args::Named(n) if n.is_empty()));

        let rows = ResultSet {
            rows: vec![values.clone()],
            ..ResultSet::default()
        };
        let answer = Answer::new(Ok(Output::One(rows)), vec![Scope::SqliteRead]);
        let json = serde_json::to_string(&answer).unwrap();
        let answer: Answer = serde_json::from_str(&json).unwrap();
        let (Ok(Output::One(back)), used) = answer.into_output() else {
            panic!("not the answer sent");
        };
        assert_eq!(shown(&back.rows[0]), shown(&values));
        assert_eq!(used, [Scope::SqliteRead]);
    }
}
