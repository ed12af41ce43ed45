//! The whole HTTP surface: the API and the web UI side by side, neither
//! knowing the other, under the layers every request passes.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;

use crate::api::{self, invoke, json_errors};
use crate::app::App;
use crate::error::ApiError;

/// The whole router: the API and the web UI side by side. Requests to
/// `{user}-{val}.{suffix}` hosts go to that val before any route is
/// matched.
pub fn router(app: App) -> Router {
    api::routes()
        .merge(crate::ui::routes())
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
