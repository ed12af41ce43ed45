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

#[utoipa::path(
    get,
    path = "/v2/vals/{id}/versions/{version}/wit",
    operation_id = "getVersionWit",
    tag = "vals",
    summary = "A version's WIT: its world, exports and imports, with the packages it uses",
    params(
        ("id" = String, Path, description = "The val's id"),
        ("version" = i64, Path, description = "The version, from 0"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The WIT text", content_type = "text/plain", body = String),
        (status = 404, description = "No such val or version that you can see", body = crate::error::ErrorResponse),
        (status = 503, description = "The object store does not answer; retry shortly", body = crate::error::ErrorResponse),
    )
)]
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
