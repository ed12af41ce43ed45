//! The HTTP surface: REST endpoints, the Run API and the HTTP endpoints of
//! vals, plus the extractors they share.

pub mod invoke;
pub mod run;
pub mod secret_scanning;
pub mod tokens;
pub mod users;
pub mod vals;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Router, middleware};
use serde::de::DeserializeOwned;

use crate::app::App;
use crate::auth::{self, Principal};
use crate::caps;
use crate::error::ApiError;

/// The whole router. Requests to `{user}-{val}.{suffix}` hosts go to that
/// val before any route is matched.
pub fn router(app: App) -> Router {
    Router::new()
        .merge(vals::routes())
        .merge(users::routes())
        .merge(tokens::routes())
        .merge(secret_scanning::routes())
        .merge(invoke::routes())
        .merge(run::routes())
        .merge(caps::routes())
        .fallback(|| async {
            ApiError::not_found("no such route; see the README for the API's routes")
        })
        // JSON bodies (REST, the Run API) share the request-body limit;
        // uploads of components and blobs read their own, larger ones.
        .layer(DefaultBodyLimit::max(app.config.limits.request_body_bytes))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            invoke::val_host,
        ))
        .layer(middleware::map_response(json_errors))
        .with_state(app)
}

/// Marks a response that a val produced: the platform never rewrites it.
#[derive(Clone, Copy)]
pub struct FromVal;

/// Every error the platform answers is JSON. axum's own rejections (a bad
/// query string or path parameter, a method a route does not take) are
/// plain text: give them the same `{error, message}` shape.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error())
        || is_json
        || resp.extensions().get::<FromVal>().is_some()
    {
        return resp;
    }
    let text = axum::body::to_bytes(resp.into_body(), 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (code, hint) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not take that method; see the README's table of routes",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "send a smaller body"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "check Content-Type"),
        StatusCode::NOT_FOUND => ("not_found", "see the README's table of routes"),
        s if s.is_client_error() => (
            "bad_request",
            "check the path and query parameters against the README's table of routes",
        ),
        _ => ("internal", "the server log has details"),
    };
    let message = if text.is_empty() {
        hint.to_string()
    } else {
        format!("{text}; {hint}")
    };
    ApiError::new(status, code, message).into_response()
}

/// The caller: `Some` with a valid token, `None` without an Authorization
/// header. A bad token is refused, never treated as anonymous.
pub struct Caller(pub Option<Principal>);

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let header = match parts.headers.get(AUTHORIZATION) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| {
                ApiError::unauthorized("the Authorization header is not valid text")
            })?),
        };
        Ok(Caller(auth::authenticate(app, header).await?))
    }
}

/// A caller that must present a token.
pub struct Authed(pub Principal);

impl FromRequestParts<App> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, app).await?.0 {
            Some(p) => Ok(Authed(p)),
            None => Err(ApiError::unauthorized(
                "this endpoint needs an API token: send `Authorization: Bearer <token>`",
            )),
        }
    }
}

/// `Json<T>` whose rejections are JSON errors that say what was wrong.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<App> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, app).await {
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

/// Milliseconds since the epoch as an RFC 3339 timestamp.
pub fn iso8601(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Turn any `IntoResponse` error into a response (for middleware).
pub fn respond(e: impl IntoResponse) -> axum::response::Response {
    e.into_response()
}
