//! Columns stored as text and read as types (scopes, privacy, kind),
//! parsed once as a row is read: a value no code wrote is an error of the
//! read, never a string that fails later on the call path.

use rusqlite::Row;
use rusqlite::types::Type;

/// Column `col` of `r`, parsed by `parse`.
pub fn column<T, E: std::fmt::Display>(
    r: &Row,
    col: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T> {
    let text: String = r.get(col)?;
    parse(&text).map_err(|e| {
        let index = r.as_ref().column_index(col).unwrap_or(0);
        let why = format!("stored {col} `{text}`: {e}");
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, why.into())
    })
}

/// An `Option`-returning parser as one [`column`] takes.
pub fn known<T>(parse: fn(&str) -> Option<T>) -> impl FnOnce(&str) -> Result<T, &'static str> {
    move |text| parse(text).ok_or("not a known value")
}
