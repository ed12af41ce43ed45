//! What every route shares, whichever face mounts it (the API or the UI):
//! the extractors for the caller and for JSON bodies, and the name of the
//! UI's session cookie, which the API keeps from vals. Generic
//! over the router's state, so a capability's routes need only an
//! [`Authenticator`] from it, not the whole app.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use valbox_auth::Authenticator;
use valbox_model::Principal;

/// The caller: `Some` with a valid token, `None` without an Authorization
/// header. A bad token is refused, never treated as anonymous.
pub struct Caller(pub Option<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = match parts.headers.get(AUTHORIZATION) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| {
                ApiError::unauthorized("the Authorization header is not valid text")
            })?),
        };
        let auth = Authenticator::from_ref(state);
        Ok(Caller(auth.authenticate(header).await?))
    }
}

/// A caller that must present a token.
pub struct Authed(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authed
where
    Authenticator: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await?.0 {
            Some(p) => Ok(Authed(p)),
            None => Err(ApiError::unauthorized(
                "this endpoint needs an API token: send `Authorization: Bearer <token>`",
            )),
        }
    }
}

/// A JSON object body, as `Json<T>` reads it, but whose rejections are
/// JSON errors that say what was wrong. Only an object: serde would take
/// a struct from an array of its fields too (`["name", "public"]`), a
/// shape no route documents.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => value,
            Err(e) => return Err(json_rejection(e)),
        };
        let shape_error = |message: String| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_json",
                format!("{message}; send a JSON object with `Content-Type: application/json`"),
            )
        };
        if !value.is_object() {
            return Err(shape_error("the body must be a JSON object".into()));
        }
        T::deserialize(value)
            .map(JsonBody)
            .map_err(|e| shape_error(format!("the JSON body does not have the right shape: {e}")))
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    let status = e.status();
    let code = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        "unsupported_media_type"
    } else if status == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "invalid_json"
    };
    ApiError::new(
        status,
        code,
        format!(
            "{}; send a JSON body with `Content-Type: application/json`",
            e.body_text()
        ),
    )
}

/// An optional integer field of a JSON body, as JSON Schema (and so the
/// OpenAPI document) counts integers: `30` or `30.0`, which some clients
/// send for every number. serde alone refuses `30.0` for an integer type.
/// Use it on every integer field of a request body:
/// `#[serde(default, deserialize_with = "crate::web::whole_number")]`.
pub fn whole_number<'de, D, N>(d: D) -> Result<Option<N>, D::Error>
where
    D: serde::Deserializer<'de>,
    N: TryFrom<i64>,
{
    use serde::Deserialize;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_i64().or_else(|| {
        let f = n.as_f64()?;
        // Exactly representable, so the cast loses nothing.
        (f.fract() == 0.0 && f.abs() < 2f64.powi(53)).then_some(f as i64)
    });
    let fits = whole.and_then(|i| N::try_from(i).ok());
    fits.map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!("expected a whole number in range, not {n}"))
    })
}

/// The session cookie's name over plain HTTP...
pub const SESSION_COOKIE: &str = "valbox_session";
/// ...and over HTTPS, where the `__Host-` prefix makes browsers refuse it
/// from any other host (a val's host included) and without `Secure`.
pub const SECURE_SESSION_COOKIE: &str = "__Host-valbox_session";

/// A `Cookie` header without the session cookie, for a val's request;
/// `None` when nothing else is left.
pub fn strip_session_cookie(value: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            !pair.is_empty() && !is_session_cookie(pair.split_once('=').map_or(*pair, |(k, _)| k))
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Whether `name` (as a request or a val spells it) is the session
/// cookie's, under either name.
pub fn is_session_cookie(name: &str) -> bool {
    let name = name.trim();
    name.eq_ignore_ascii_case(SESSION_COOKIE) || name.eq_ignore_ascii_case(SECURE_SESSION_COOKIE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_taken_out_of_a_vals_cookie_header() {
        assert_eq!(
            strip_session_cookie("a=1; valbox_session=vbs_x; b=2").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(strip_session_cookie("valbox_session=vbs_x"), None);
        assert_eq!(strip_session_cookie(" valbox_session = x ;"), None);
        assert_eq!(
            strip_session_cookie("valbox_sessionx=1").as_deref(),
            Some("valbox_sessionx=1")
        );
        assert_eq!(
            strip_session_cookie("__Host-valbox_session=vbs_x; a=1").as_deref(),
            Some("a=1")
        );
    }
}
