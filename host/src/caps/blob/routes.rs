//! `/v1/blob`: Val Town's blob API over the caller's own namespace.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::BlobError;
use crate::auth::{Holder, Scope};
use crate::caps::{Capabilities, CapsRouter};
use crate::error::{ApiError, ApiResult};
use crate::web::{Authed, iso8601};

pub fn routes() -> CapsRouter {
    CapsRouter::new()
        .route("/v1/blob", get(list))
        .route("/v1/blob/{*key}", get(fetch).post(store).delete(remove))
}

fn api_error(e: BlobError) -> ApiError {
    match e {
        BlobError::Denied(d) => d.into(),
        BlobError::InvalidKey(_) => ApiError::bad_request("invalid_key", e.to_string()),
        BlobError::TooLarge(_) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        BlobError::Quota(_) => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "quota_exceeded",
            e.to_string(),
        ),
        BlobError::Internal(m) => ApiError::internal(m),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
}

/// One blob in a listing.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BlobJson {
    key: String,
    size: u64,
    last_modified: String,
}

async fn list(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<BlobJson>>> {
    let entries = caps
        .blob
        .list(&mut who, q.prefix)
        .await
        .map_err(api_error)?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| BlobJson {
                key: e.key,
                size: e.size,
                last_modified: iso8601(e.last_modified_ms),
            })
            .collect(),
    ))
}

async fn fetch(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
    Path(key): Path<String>,
) -> ApiResult<impl IntoResponse> {
    match caps
        .blob
        .get(&mut who, key.clone())
        .await
        .map_err(api_error)?
    {
        Some(bytes) => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes)),
        None => Err(ApiError::not_found(format!("no blob with key `{key}`"))),
    }
}

async fn store(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
    Path(key): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    // Refused before the body is read: a caller without the scope cannot
    // make the server buffer a blob's worth of bytes. (The service's own
    // check then counts the use.)
    if !who.allowed(Scope::BlobWrite) {
        return Err(who.deny(Scope::BlobWrite).into());
    }
    // Read up to the blob limit itself, not the JSON endpoints' limit.
    let limit = caps.blob.max_bytes();
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| api_error(BlobError::TooLarge(limit)))?;
    caps.blob
        .set(&mut who, key, Vec::from(body))
        .await
        .map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    caps.blob.delete(&mut who, key).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}
