//! A SQL statement as a caller sends it, before any scope or budget is
//! checked: its arguments, read from a REST request's JSON, and bound to
//! the parameters of a prepared SQLite statement. The capability
//! (`valbox-caps`) runs it; the REST routes and the `sqlite` import make
//! it. No I/O, and no wasmtime, so the fuzz targets reach it cheaply.

use rusqlite::types::Value;
use serde_json::Value as Json;

/// A statement's arguments, by position (`?`, `?NNN`) or by name (`:a`,
/// `@a`, `$a`).
pub enum Args {
    Positional(Vec<Value>),
    Named(Vec<(String, Value)>),
}

pub struct Statement {
    pub sql: String,
    pub args: Args,
}

/// Why a request's arguments are not arguments.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("`args` must be an array (positional) or an object (named)")]
    NotArgs,
    #[error("arguments must be null, booleans, numbers or strings")]
    NotScalar,
}

/// Why arguments do not fit a statement.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("the statement has {params} parameters but {args} arguments were given")]
    Count { params: usize, args: usize },
    #[error("the statement has no parameter `{0}`")]
    NoParameter(String),
    /// SQLite refused a value (too big, say).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

impl Args {
    /// The `args` of a statement in a REST request: none, null, an array
    /// or an object of null, booleans (as 0 and 1), numbers (integers
    /// where they fit in 64 bits, else reals) and strings.
    pub fn from_json(args: Option<Json>) -> Result<Self, ArgsError> {
        Ok(match args {
            None | Some(Json::Null) => Args::Positional(Vec::new()),
            Some(Json::Array(values)) => {
                Args::Positional(values.into_iter().map(value).collect::<Result<_, _>>()?)
            }
            Some(Json::Object(map)) => Args::Named(
                map.into_iter()
                    .map(|(name, v)| Ok((name, value(v)?)))
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => return Err(ArgsError::NotArgs),
        })
    }

    /// Bind these to `stmt`'s parameters: all of them by position, or
    /// each by its name (`a` is `:a`).
    pub fn bind(&self, stmt: &mut rusqlite::Statement<'_>) -> Result<(), BindError> {
        match self {
            Args::Positional(values) => {
                let params = stmt.parameter_count();
                if values.len() != params {
                    let args = values.len();
                    return Err(BindError::Count { params, args });
                }
                for (i, v) in values.iter().enumerate() {
                    stmt.raw_bind_parameter(i + 1, v)?;
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
                        .parameter_index(&key)?
                        .ok_or(BindError::NoParameter(key))?;
                    stmt.raw_bind_parameter(index, v)?;
                }
            }
        }
        Ok(())
    }
}

fn value(v: Json) -> Result<Value, ArgsError> {
    Ok(match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Integer(i64::from(b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Text(s),
        Json::Array(_) | Json::Object(_) => return Err(ArgsError::NotScalar),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bound(sql: &str, args: Json) -> Result<Vec<Value>, BindError> {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        Args::from_json(Some(args)).unwrap().bind(&mut stmt)?;
        let mut rows = stmt.raw_query();
        let row = rows.next().unwrap().unwrap();
        let width = row.as_ref().column_count();
        Ok((0..width).map(|i| row.get(i).unwrap()).collect())
    }

    #[test]
    fn json_arguments_become_sqlite_values() {
        let got = bound(
            "SELECT ?, ?, ?, ?, ?, ?",
            json!([null, true, 7, 1.5, "x", u64::MAX]),
        );
        let want = [
            Value::Null,
            Value::Integer(1),
            Value::Integer(7),
            Value::Real(1.5),
            Value::Text("x".into()),
            Value::Real(u64::MAX as f64),
        ];
        assert_eq!(got.unwrap(), want);
        let got = bound("SELECT :a, @b, $c", json!({"a": 1, "@b": 2, "$c": 3}));
        assert_eq!(got.unwrap(), [1, 2, 3].map(Value::Integer));
    }

    #[test]
    fn what_is_no_argument_is_refused() {
        for args in [json!(1), json!("x"), json!(true)] {
            assert_eq!(Args::from_json(Some(args)).err(), Some(ArgsError::NotArgs));
        }
        for args in [json!([[1]]), json!([{"a": 1}]), json!({"a": [1]})] {
            assert_eq!(
                Args::from_json(Some(args)).err(),
                Some(ArgsError::NotScalar)
            );
        }
        let too_few = bound("SELECT ?, ?", json!([1]));
        assert!(matches!(
            too_few,
            Err(BindError::Count { params: 2, args: 1 })
        ));
        let unknown = bound("SELECT :a", json!({"b": 1}));
        assert!(matches!(unknown, Err(BindError::NoParameter(k)) if k == ":b"));
    }
}
