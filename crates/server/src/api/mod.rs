//! The HTTP surface: REST endpoints, the Run API and the HTTP endpoints of
//! vals, assembled into one router with the capabilities' routes (each
//! over its capability's service).

pub mod blob;
pub mod email;
pub mod env;
pub mod health;
pub mod invoke;
pub mod least_privilege;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod run;
pub mod secret_scanning;
pub mod sqlite;
pub mod tokens;
pub mod users;
mod val_origin;
pub mod vals;

use axum::Router;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;
use crate::error::ApiError;
pub use crate::web::{Authed, Caller, JsonBody};
use valbox_model::iso8601;

/// Every route of the API, and the vals' own (`/x/...`).
pub fn routes() -> Router<App> {
    let (rest, _) = documented().split_for_parts();
    rest.merge(invoke::routes())
}

/// The REST API: every route mounted from its handler's
/// `#[utoipa::path]` attribute, so each one is in `GET /openapi.json`.
/// (The vals' own endpoints are user content, not described.)
pub fn documented() -> OpenApiRouter<App> {
    openapi::root()
        .merge(health::routes())
        .merge(vals::routes())
        .merge(users::routes())
        .merge(tokens::routes())
        .merge(least_privilege::routes())
        .merge(secret_scanning::routes())
        .merge(run::routes())
        .merge(logs::routes())
        .merge(blob::routes())
        .merge(sqlite::routes())
        .merge(email::routes())
        .merge(env::routes())
}

/// Marks a response that a val produced: the platform never rewrites it.
#[derive(Clone, Copy)]
pub struct FromVal;

/// Every error the platform answers is JSON. axum's own rejections (a bad
/// query string or path parameter, a method a route does not take) are
/// plain text: give them the same `{error, message}` shape.
pub(crate) async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let is_html = resp
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    // The web UI's error pages are HTML, for a browser.
    if !(status.is_client_error() || status.is_server_error())
        || is_json
        || is_html
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

/// Turn any `IntoResponse` error into a response (for middleware).
pub fn respond(e: impl IntoResponse) -> axum::response::Response {
    e.into_response()
}
