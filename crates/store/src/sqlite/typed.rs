//! Typed columns (`crate::stored`) read from SQLite's rows.

use rusqlite::Row;
use rusqlite::types::Type;

pub(crate) use crate::stored::known;

/// Column `col` of `r`, parsed by `parse`.
pub fn column<T, E: std::fmt::Display>(
    r: &Row,
    col: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T> {
    let text: String = r.get(col)?;
    crate::stored::parse(col, &text, parse).map_err(|why| {
        let index = r.as_ref().column_index(col).unwrap_or(0);
        rusqlite::Error::FromSqlConversionFailure(index, Type::Text, why.into())
    })
}
