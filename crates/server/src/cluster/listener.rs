//! The internal listener: where other nodes of the cluster send SQLite
//! operations for the databases this node is home to.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use valbox_caps::sqlite::wire::Forwarded;

use crate::app::App;
use crate::error::ApiError;

/// The internal listener's routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/internal/sqlite", post(sqlite))
        .with_state(app)
}

/// The most a forwarded operation may hold: statements and arguments as a
/// call may send them, blobs in hex.
const FORWARDED_BYTES: usize = 256 << 20;

async fn sqlite(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let Some(cluster) = &app.config.cluster else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The secret first: nobody else makes this node read a body.
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same(presented.as_bytes(), cluster.secret.as_bytes()) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the internal listener answers only other nodes of this cluster",
        )
        .into_response();
    }
    let forwarded = match axum::body::to_bytes(body, FORWARDED_BYTES).await {
        Ok(bytes) => serde_json::from_slice::<Forwarded>(&bytes),
        Err(e) => return ApiError::bad_request("invalid_body", e.to_string()).into_response(),
    };
    match forwarded {
        Ok(forwarded) => Json(app.caps.sqlite.serve_forwarded(forwarded).await).into_response(),
        Err(e) => ApiError::bad_request("invalid_body", e.to_string()).into_response(),
    }
}

/// Equal bytes, compared in time that does not depend on where they
/// differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}
