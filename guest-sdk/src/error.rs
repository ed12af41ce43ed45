//! Why a host call failed.

use std::fmt;

use crate::bindings::valbox::platform::types::Error as WitError;

/// Why a call to the host failed: the WIT `types.error` variant.
///
/// Every capability returns it, so a val can match on the reason instead of
/// parsing a message. It displays as `kind: message`, for example
/// `denied: missing scope env:read`.
///
/// ```
/// use valbox_sdk::Error;
///
/// let err = Error::Denied("missing scope env:read".to_string());
/// assert_eq!(err.to_string(), "denied: missing scope env:read");
/// assert_eq!(err.kind(), "denied");
/// assert_eq!(err.message(), "missing scope env:read");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Error {
    /// The call's token lacks the named scope (for example `blob:write`).
    Denied(String),
    /// The capability is not available on this server (yet).
    Unavailable(String),
    /// The arguments were wrong; the message says which and why.
    Invalid(String),
    /// A limit was hit; the message names the limit.
    Limit(String),
    /// The named thing does not exist.
    NotFound(String),
    /// Something failed on the host side; retrying may help.
    Internal(String),
}

impl Error {
    /// The reason as the WIT case name: `denied`, `unavailable`, `invalid`,
    /// `limit`, `not-found` or `internal`.
    ///
    /// ```
    /// use valbox_sdk::Error;
    ///
    /// assert_eq!(Error::NotFound("key a".into()).kind(), "not-found");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Denied(_) => "denied",
            Error::Unavailable(_) => "unavailable",
            Error::Invalid(_) => "invalid",
            Error::Limit(_) => "limit",
            Error::NotFound(_) => "not-found",
            Error::Internal(_) => "internal",
        }
    }

    /// The host's message, without the kind.
    ///
    /// ```
    /// use valbox_sdk::Error;
    ///
    /// assert_eq!(Error::Limit("body too large".into()).message(), "body too large");
    /// ```
    pub fn message(&self) -> &str {
        match self {
            Error::Denied(m)
            | Error::Unavailable(m)
            | Error::Invalid(m)
            | Error::Limit(m)
            | Error::NotFound(m)
            | Error::Internal(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for Error {}

impl From<WitError> for Error {
    fn from(err: WitError) -> Self {
        match err {
            WitError::Denied(m) => Error::Denied(m),
            WitError::Unavailable(m) => Error::Unavailable(m),
            WitError::Invalid(m) => Error::Invalid(m),
            WitError::Limit(m) => Error::Limit(m),
            WitError::NotFound(m) => Error::NotFound(m),
            WitError::Internal(m) => Error::Internal(m),
        }
    }
}

impl From<Error> for WitError {
    fn from(err: Error) -> Self {
        match err {
            Error::Denied(m) => WitError::Denied(m),
            Error::Unavailable(m) => WitError::Unavailable(m),
            Error::Invalid(m) => WitError::Invalid(m),
            Error::Limit(m) => WitError::Limit(m),
            Error::NotFound(m) => WitError::NotFound(m),
            Error::Internal(m) => WitError::Internal(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_conversion() {
        let cases = [
            (WitError::Denied("d".into()), "denied: d"),
            (WitError::Unavailable("u".into()), "unavailable: u"),
            (WitError::Invalid("i".into()), "invalid: i"),
            (WitError::Limit("l".into()), "limit: l"),
            (WitError::NotFound("n".into()), "not-found: n"),
            (WitError::Internal("x".into()), "internal: x"),
        ];
        for (wit, shown) in cases {
            let err = Error::from(wit);
            assert_eq!(err.to_string(), shown);
            let back = WitError::from(err.clone());
            assert_eq!(Error::from(back), err);
        }
    }
}
