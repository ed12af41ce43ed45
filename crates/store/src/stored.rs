//! Columns stored as text and read as types (scopes, privacy, kind,
//! trigger), parsed once as a row is read: a value no code wrote is an
//! error of the read, never a string that fails later on the call path.
//! Each implementation calls these from its own row type.

use std::fmt::Display;

/// `text`, read from column `col`, parsed by `parse`; what is wrong with
/// it if it does not parse.
pub(crate) fn parse<T, E: Display>(
    col: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, String> {
    parse(text).map_err(|e| format!("stored {col} `{text}`: {e}"))
}

/// An `Option`-returning parser as [`parse`] takes.
pub(crate) fn known<T>(
    parse: fn(&str) -> Option<T>,
) -> impl FnOnce(&str) -> Result<T, &'static str> {
    move |text| parse(text).ok_or("not a known value")
}
