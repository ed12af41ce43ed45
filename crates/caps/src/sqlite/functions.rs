//! Linear-time stand-ins for the built-in string functions whose SQLite
//! versions take time proportional to the product of their arguments'
//! lengths: `instr`, `replace`, and the two-argument `trim`, `ltrim` and
//! `rtrim`. One function call is one step of SQLite's VM, so the progress
//! handler cannot stop it at the deadline: with two long arguments the
//! built-ins ran for minutes. These give the same answers as the built-ins
//! for valid UTF-8 text and for blobs.

use std::borrow::Cow;
use std::collections::HashSet;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, Error, Result};

/// Register the stand-ins on `conn`; no result may exceed `max_bytes`.
pub fn register(conn: &Connection, max_bytes: usize) -> Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("instr", 2, flags, instr)?;
    conn.create_scalar_function("replace", 3, flags, move |ctx| replace(ctx, max_bytes))?;
    for (name, ends) in [
        ("trim", Ends::Both),
        ("ltrim", Ends::Start),
        ("rtrim", Ends::End),
    ] {
        conn.create_scalar_function(name, 2, flags, move |ctx| trim(ctx, ends))?;
    }
    Ok(())
}

/// An argument as SQLite's string functions see it.
enum Arg<'a> {
    Null,
    Text(Cow<'a, str>),
    Blob(&'a [u8]),
}

impl<'a> Arg<'a> {
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Arg::Null => None,
            Arg::Text(t) => Some(t),
            Arg::Blob(b) => Some(String::from_utf8_lossy(b)),
        }
    }
}

fn arg<'a>(ctx: &'a Context<'_>, i: usize) -> Result<Arg<'a>> {
    Ok(match ctx.get_raw(i) {
        ValueRef::Null => Arg::Null,
        ValueRef::Text(t) => Arg::Text(String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => Arg::Blob(b),
        ValueRef::Integer(n) => Arg::Text(n.to_string().into()),
        ValueRef::Real(f) => Arg::Text(real_as_text(ctx, f)?.into()),
    })
}

/// A real number as SQLite writes it (`1.0`, `1.0e+100`), asked of SQLite
/// itself so that results match the built-ins exactly.
fn real_as_text(ctx: &Context<'_>, f: f64) -> Result<String> {
    // SAFETY: the connection is only used for this one query, inside the
    // function call, on the thread that called it.
    let conn = unsafe { ctx.get_connection()? };
    conn.query_row("SELECT CAST(?1 AS TEXT)", [f], |r| r.get(0))
}

fn instr(ctx: &Context<'_>) -> Result<Value> {
    let (haystack, needle) = (arg(ctx, 0)?, arg(ctx, 1)?);
    if let (Arg::Blob(h), Arg::Blob(n)) = (&haystack, &needle) {
        let at = memchr::memmem::find(h, n).map_or(0, |i| i + 1);
        return Ok(Value::Integer(at as i64));
    }
    let (Some(h), Some(n)) = (haystack.text(), needle.text()) else {
        return Ok(Value::Null);
    };
    let at = h.find(n.as_ref()).map_or(0, |i| h[..i].chars().count() + 1);
    Ok(Value::Integer(at as i64))
}

fn replace(ctx: &Context<'_>, max_bytes: usize) -> Result<Value> {
    let (Some(text), Some(from), Some(to)) = (
        arg(ctx, 0)?.text(),
        arg(ctx, 1)?.text(),
        arg(ctx, 2)?.text(),
    ) else {
        return Ok(Value::Null);
    };
    if from.is_empty() {
        return Ok(Value::Text(text.into_owned()));
    }
    // Refuse before allocating: the answer may be far larger than its input.
    let count = text.matches(from.as_ref()).count();
    let size = (text.len() - count * from.len()).saturating_add(count.saturating_mul(to.len()));
    if size > max_bytes {
        return Err(Error::UserFunctionError(
            format!("replace() would make a string of {size} bytes; the limit is {max_bytes}")
                .into(),
        ));
    }
    Ok(Value::Text(text.replace(from.as_ref(), &to)))
}

#[derive(Clone, Copy)]
enum Ends {
    Both,
    Start,
    End,
}

fn trim(ctx: &Context<'_>, ends: Ends) -> Result<Value> {
    let (Some(text), Some(set)) = (arg(ctx, 0)?.text(), arg(ctx, 1)?.text()) else {
        return Ok(Value::Null);
    };
    let set: HashSet<char> = set.chars().collect();
    let strip = |c: char| set.contains(&c);
    let trimmed = match ends {
        Ends::Both => text.trim_matches(strip),
        Ends::Start => text.trim_start_matches(strip),
        Ends::End => text.trim_end_matches(strip),
    };
    Ok(Value::Text(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case answers the same through the stand-ins as through the
    /// built-ins.
    #[test]
    fn the_stand_ins_answer_as_the_built_ins_do() {
        let builtin = Connection::open_in_memory().unwrap();
        let ours = Connection::open_in_memory().unwrap();
        register(&ours, 1 << 20).unwrap();
        for expr in [
            "instr('hello', 'll')",
            "instr('héllo wörld', 'wö')",
            "instr('abc', '')",
            "instr('abc', 'z')",
            "instr(NULL, 'a')",
            "instr('a', NULL)",
            "instr(x'00010203', x'0203')",
            "instr(x'616263', 'c')",
            "instr(12345, 34)",
            "instr(1.5, '.')",
            "instr(1.0, '.0')",
            "replace('aaa', 'a', 'bb')",
            "replace('héllo', 'é', 'e')",
            "replace('abc', '', 'x')",
            "replace(NULL, 'a', 'b')",
            "replace('abc', 'b', NULL)",
            "replace(12321, 2, 9)",
            "replace(2.5, '.', ',')",
            "trim('xxhixx', 'x')",
            "ltrim('xxhixx', 'x')",
            "rtrim('xxhixx', 'x')",
            "trim('äbcä', 'ä')",
            "trim('abc', '')",
            "trim(NULL, 'a')",
            "trim('abc', NULL)",
            "trim(1221, 1)",
        ] {
            let sql = format!("SELECT quote({expr})");
            let want: String = builtin.query_row(&sql, [], |r| r.get(0)).unwrap();
            let got: String = ours.query_row(&sql, [], |r| r.get(0)).unwrap();
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn long_arguments_take_linear_time_and_results_stay_bounded() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn, 1 << 20).unwrap();
        // Quadratic in the built-in: minutes; here a moment.
        let at: i64 = conn
            .query_row(
                "SELECT instr(hex(zeroblob(400000)), hex(zeroblob(200000)) || '1')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(at, 0);
        let e = conn
            .query_row(
                "SELECT replace(hex(zeroblob(1000)), '0', hex(zeroblob(1000)))",
                [],
                |r| r.get::<_, String>(0),
            )
            .unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
    }
}
