//! `GET /v2/vals/{id}/versions/{n}/wit`: a version's WIT, so a caller can
//! generate bindings for what the val exports (and see what it imports).

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::version_bytes;
use crate::api::Caller;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use valbox_runtime::component_wit;

pub(super) async fn show(
    State(app): State<App>,
    Caller(who): Caller,
    Path((id, version)): Path<(String, i64)>,
) -> ApiResult<impl IntoResponse> {
    let (_, bytes) = version_bytes(&app, who.as_ref(), &id, version).await?;
    // Decoding walks the whole component: off the async workers.
    let wit = tokio::task::spawn_blocking(move || component_wit(&bytes))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(format!("decoding a stored component's WIT: {e:#}")))?;
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], wit))
}
