//! What every route shares, whichever layer mounts it: the extractors for
//! the caller and for JSON bodies. Generic
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

/// `Json<T>` whose rejections are JSON errors that say what was wrong.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(json_rejection(e)),
        }
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

/// Refuse a val's per-call token: it may never manage tokens.
pub fn require_personal_token(who: &Principal) -> Result<(), ApiError> {
    if who.is_personal() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "a val's per-call token cannot manage tokens; use a personal API token",
        ))
    }
}
