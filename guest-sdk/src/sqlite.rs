//! The val owner's SQLite database. Read-only statements need the
//! `sqlite:read` scope, any other `sqlite:write`.

use crate::Error;
use crate::bindings::valbox::platform::sqlite as raw;

/// A SQL value, a statement's arguments, a statement, a batch's mode, and
/// a statement's result (Val Town's ResultSet shape).
pub use raw::{Args, BatchMode, ResultSet, Statement, Value};

/// Run one statement with positional arguments (`?`, `?1`).
///
/// ```no_run
/// use valbox_sdk::sqlite::{self, Value};
/// let rs = sqlite::execute("SELECT name FROM people WHERE age > ?", &[Value::Integer(30)])?;
/// for row in &rs.rows {
///     println!("{:?}", row[0]);
/// }
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn execute(sql: &str, args: &[Value]) -> Result<ResultSet, Error> {
    raw::execute(&statement(sql, args)).map_err(Error::from)
}

/// Run one statement with named arguments (`:name`, `@name`, `$name`).
///
/// ```no_run
/// use valbox_sdk::sqlite::{self, Value};
/// sqlite::execute_named(
///     "INSERT INTO people (name) VALUES (:name)",
///     &[("name", Value::Text("Ada".into()))],
/// )?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn execute_named(sql: &str, args: &[(&str, Value)]) -> Result<ResultSet, Error> {
    let named = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    raw::execute(&Statement {
        sql: sql.into(),
        args: Args::Named(named),
    })
    .map_err(Error::from)
}

/// Run statements in one transaction: all succeed or none do.
///
/// ```no_run
/// use valbox_sdk::sqlite::{self, BatchMode};
/// sqlite::batch(
///     &[
///         sqlite::statement("CREATE TABLE IF NOT EXISTS t (x)", &[]),
///         sqlite::statement("INSERT INTO t VALUES (1)", &[]),
///     ],
///     BatchMode::Write,
/// )?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn batch(statements: &[Statement], mode: BatchMode) -> Result<Vec<ResultSet>, Error> {
    raw::batch(statements, mode).map_err(Error::from)
}

/// A statement with positional arguments, for [`batch`].
///
/// ```
/// let s = valbox_sdk::sqlite::statement("SELECT 1", &[]);
/// assert_eq!(s.sql, "SELECT 1");
/// ```
pub fn statement(sql: &str, args: &[Value]) -> Statement {
    Statement {
        sql: sql.into(),
        args: Args::Positional(args.to_vec()),
    }
}
