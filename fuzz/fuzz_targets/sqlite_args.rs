//! A REST statement's arguments: JSON read into SQLite values
//! (`Args::from_json`) and bound to a statement's parameters
//! (`Args::bind`), as `/v1/sqlite/execute` does before it runs one.
//!
//! The input's first line is the SQL, the rest the JSON `args`. The
//! statement is prepared on an empty in-memory database, never run.
//! Every argument list is refused or kept value for value; a bound list
//! fits the statement, and a refused one says why truly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rusqlite::Connection;
use rusqlite::types::Value;
use serde_json::Value as Json;
use valbox_sql::{Args, ArgsError, BindError};

thread_local! {
    static DB: Connection = Connection::open_in_memory().unwrap();
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (sql, json) = text.split_once('\n').unwrap_or((text, ""));
    let json = match json.trim() {
        "" => None,
        json => match serde_json::from_str::<Json>(json) {
            Ok(json) => Some(json),
            Err(_) => return,
        },
    };
    let Some(args) = check_conversion(json) else {
        return;
    };
    DB.with(|db| {
        if let Ok(mut stmt) = db.prepare(sql) {
            check_binding(&mut stmt, &args);
        }
    });
});

/// The arguments, if `json` holds arguments; each value as the JSON said.
fn check_conversion(json: Option<Json>) -> Option<Args> {
    let args = Args::from_json(json.clone());
    match (&json, &args) {
        (None | Some(Json::Null), Ok(Args::Positional(values))) => assert!(values.is_empty()),
        (Some(Json::Array(json)), Ok(Args::Positional(values))) => {
            assert_eq!(json.len(), values.len());
            json.iter().zip(values).for_each(same);
        }
        (Some(Json::Object(json)), Ok(Args::Named(pairs))) => {
            assert_eq!(json.len(), pairs.len());
            for (name, value) in pairs {
                same((&json[name], value));
            }
        }
        (Some(Json::Array(json)), Err(ArgsError::NotScalar)) => {
            assert!(!json.iter().all(is_scalar))
        }
        (Some(Json::Object(json)), Err(ArgsError::NotScalar)) => {
            assert!(!json.values().all(is_scalar))
        }
        (Some(Json::Bool(_) | Json::Number(_) | Json::String(_)), Err(ArgsError::NotArgs)) => {}
        (json, args) => panic!("{json:?} gave {:?}", args.as_ref().err()),
    }
    args.ok()
}

fn is_scalar(v: &Json) -> bool {
    !matches!(v, Json::Array(_) | Json::Object(_))
}

/// One JSON argument and the SQLite value it became.
fn same((json, value): (&Json, &Value)) {
    match (json, value) {
        (Json::Null, Value::Null) => {}
        (Json::Bool(b), Value::Integer(i)) => assert_eq!(i64::from(*b), *i),
        (Json::Number(n), Value::Integer(i)) => assert_eq!(n.as_i64(), Some(*i)),
        (Json::Number(n), Value::Real(f)) => {
            assert!(n.as_i64().is_none());
            assert_eq!(n.as_f64().map(f64::to_bits), Some(f.to_bits()));
        }
        (Json::String(s), Value::Text(t)) => assert_eq!(s, t),
        (json, value) => panic!("{json:?} became {value:?}"),
    }
}

fn check_binding(stmt: &mut rusqlite::Statement<'_>, args: &Args) {
    let params = stmt.parameter_count();
    match (args, args.bind(stmt)) {
        (Args::Positional(values), Ok(())) => assert_eq!(values.len(), params),
        (Args::Named(pairs), Ok(())) => {
            for (name, _) in pairs {
                let name = if name.starts_with([':', '@', '$']) {
                    name.clone()
                } else {
                    format!(":{name}")
                };
                assert!(stmt.parameter_index(&name).unwrap().is_some(), "{name}");
            }
        }
        (Args::Positional(values), Err(BindError::Count { params: p, args: a })) => {
            assert_eq!((p, a), (params, values.len()));
            assert_ne!(p, a);
        }
        (Args::Named(pairs), Err(BindError::NoParameter(name))) => {
            assert!(stmt.parameter_index(&name).unwrap().is_none());
            let given = |n: &String| *n == name || format!(":{n}") == name;
            assert!(pairs.iter().any(|(n, _)| given(n)), "{name}");
        }
        (_, Err(BindError::Sqlite(_))) => {}
        (_, Err(e)) => panic!("{e}"),
    }
}
