//! The services' error: what went wrong in the platform's own terms (a
//! [`Kind`]), a stable machine-readable code, and a message that says what
//! to do. The web layer answers it with an HTTP status (`crate::error`),
//! and a val calling a val gets it as a WIT error (`api_calls`): each in
//! one place.

use valbox_caps::env::{EnvError, MAX_VALUE_LEN};
use valbox_model::Denied;
use valbox_store::StoreError;

/// What kind of failure, whoever reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or asks for what cannot be.
    Invalid,
    /// No valid credential.
    Unauthorized,
    /// The caller may not.
    Forbidden,
    NotFound,
    /// The request contradicts what is there.
    Conflict,
    /// A body past its size limit.
    TooLarge,
    /// A bound of the owner's (calls or deploys at once): retry later.
    TooMany,
    /// The server as a whole is full: retry shortly.
    Busy,
    /// The val ran past its wall-clock limit.
    Deadline,
    /// The val used up its fuel.
    OutOfFuel,
    /// Memory or the owner's storage past its limit.
    OutOfSpace,
    /// The val failed: it crashed, answered too much, or its libraries no
    /// longer link.
    ValFailed,
    /// A failure of ours.
    Internal,
}

impl Kind {
    /// The HTTP status that answers this kind: the one mapping, used by
    /// the web layer and by the call log (which records what the caller
    /// was answered).
    pub fn http_status(self) -> u16 {
        match self {
            Kind::Invalid => 400,
            Kind::Unauthorized => 401,
            Kind::Forbidden => 403,
            Kind::NotFound => 404,
            Kind::Conflict => 409,
            Kind::TooLarge => 413,
            Kind::TooMany => 429,
            Kind::Internal => 500,
            Kind::ValFailed => 502,
            Kind::Busy => 503,
            Kind::Deadline => 504,
            Kind::OutOfSpace => 507,
            Kind::OutOfFuel => 508,
        }
    }
}

#[derive(Debug)]
pub struct ServiceError {
    pub kind: Kind,
    pub code: &'static str,
    pub message: String,
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, "forbidden", message)
    }

    pub fn too_large(what: &str, limit: usize) -> Self {
        Self::new(
            Kind::TooLarge,
            "too_large",
            format!("{what} is larger than the limit of {limit} bytes"),
        )
    }

    /// A failure on our side: logged in full, reported without internals.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {err}");
        Self::new(
            Kind::Internal,
            "internal",
            "internal server error; the server log has details",
        )
    }
}

impl From<anyhow::Error> for ServiceError {
    fn from(err: anyhow::Error) -> Self {
        Self::internal(format!("{err:#}"))
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => Self::new(Kind::Conflict, "conflict", message),
            StoreError::Backend(e) => Self::internal(format!("{e:#}")),
            StoreError::Unavailable(e) => {
                tracing::warn!("the metadata store is not reachable: {e}");
                Self::new(
                    Kind::Busy,
                    "store_unavailable",
                    "the server cannot reach its database just now; retry in a moment",
                )
            }
        }
    }
}

impl From<Denied> for ServiceError {
    fn from(d: Denied) -> Self {
        Self::forbidden(d.message)
    }
}

impl From<EnvError> for ServiceError {
    fn from(e: EnvError) -> Self {
        match e {
            EnvError::InvalidKey(m) => Self::bad_request("invalid_env_var", m),
            EnvError::TooLarge => Self::too_large("the env var's value", MAX_VALUE_LEN),
            EnvError::Store(e) => e.into(),
            EnvError::Sealed(e) => e.into(),
        }
    }
}
