//! `/v1/blob`: Val Town's blob API over the caller's own namespace.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use valbox_caps::Capabilities;
use valbox_caps::blob::{BlobError, Condition};
use valbox_model::{Holder, Scope};

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::web::Authed;
use valbox_model::iso8601;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(fetch, store, remove))
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
        BlobError::Storage(_) => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_quota_exceeded",
            e.to_string(),
        ),
        BlobError::Conflict(_) => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            e.to_string(),
        ),
        BlobError::Unavailable(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "blob_storage_unavailable",
            e.to_string(),
        ),
        BlobError::Internal(m) => ApiError::internal(m),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only the keys that start with this.
    #[serde(default)]
    prefix: String,
}

/// One blob in a listing.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BlobEntry)]
struct BlobJson {
    key: String,
    size: u64,
    last_modified: String,
}

#[utoipa::path(
    get,
    path = "/v1/blob",
    operation_id = "listBlobs",
    tag = "blob",
    summary = "Your blobs' keys, sizes and times",
    description = "Needs `blob:read`.",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The blobs", body = Vec<BlobJson>))
)]
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

/// A version as an HTTP entity tag.
fn etag(version: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("versions are hex")
}

/// The versions an `If-Match` / `If-None-Match` header lists (`*` as is).
fn listed(value: &HeaderValue) -> Vec<String> {
    value
        .to_str()
        .unwrap_or_default()
        .split(',')
        .map(|t| t.trim().trim_matches('"').to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

#[utoipa::path(
    get,
    path = "/v1/blob/{*key}",
    operation_id = "getBlob",
    tag = "blob",
    summary = "A blob's bytes",
    description = "Needs `blob:read`. The `ETag` is the blob's version.",
    params(
        ("key" = String, Path, description = "The blob's key: 1 to 512 bytes of UTF-8, `/` allowed", min_length = 1),
        ("If-None-Match" = Option<String>, Header, description = "A version from an `ETag`, or `*`: 304 when it still matches"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream", body = super::openapi::Binary,
            headers(("ETag" = String, description = "The blob's version"))),
        (status = 304, description = "Unchanged since the version `If-None-Match` names"),
        (status = 404, description = "No blob with that key", body = ErrorResponse),
        (status = 503, description = "Blob storage does not answer; retry shortly", body = ErrorResponse),
    )
)]
async fn fetch(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some((bytes, version)) = caps
        .blob
        .get(&mut who, key.clone())
        .await
        .map_err(api_error)?
    else {
        return Err(ApiError::not_found(format!("no blob with key `{key}`")));
    };
    if let Some(wanted) = headers.get(header::IF_NONE_MATCH)
        && listed(wanted).iter().any(|t| *t == version || t == "*")
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag(&version))]).into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::ETAG, etag(&version)),
        ],
        bytes,
    )
        .into_response())
}

/// The condition of a write, from `If-Match: "<version>"` or
/// `If-None-Match: *`.
fn condition(headers: &HeaderMap) -> ApiResult<Condition> {
    match (
        headers.get(header::IF_MATCH),
        headers.get(header::IF_NONE_MATCH),
    ) {
        (None, None) => Ok(Condition::Always),
        (Some(m), None) => match listed(m).as_slice() {
            [one] if one != "*" => Ok(Condition::IfMatch(one.clone())),
            _ => Err(ApiError::bad_request(
                "invalid_precondition",
                "If-Match takes one version, as the ETag a read answered",
            )),
        },
        (None, Some(n)) if listed(n) == ["*"] => Ok(Condition::IfAbsent),
        _ => Err(ApiError::bad_request(
            "invalid_precondition",
            "a write takes `If-Match: \"<version>\"` (only if unchanged) or `If-None-Match: *` (only if new), not both",
        )),
    }
}

#[utoipa::path(
    post,
    path = "/v1/blob/{*key}",
    operation_id = "storeBlob",
    tag = "blob",
    summary = "Store a blob",
    description = "Needs `blob:write`. Conditional with `If-Match: \"<version>\"` (only if unchanged) or `If-None-Match: *` (only if new).",
    params(
        ("key" = String, Path, description = "The blob's key: 1 to 512 bytes of UTF-8, `/` allowed", min_length = 1),
        ("If-Match" = Option<String>, Header, description = "Write only if the blob is at this version"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: write only if there is no such blob"),
    ),
    request_body(content = super::openapi::Binary, content_type = "application/octet-stream", description = "The bytes"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Stored", headers(("ETag" = String, description = "The new version"))),
        (status = 412, description = "The condition does not hold; `ETag` names the current version", body = ErrorResponse),
        (status = 413, description = "Larger than a blob may be", body = ErrorResponse),
        (status = 503, description = "Blob storage does not answer; retry shortly", body = ErrorResponse),
        (status = 507, description = "Your storage quota is full", body = ErrorResponse),
    )
)]
async fn store(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // Refused before the body is read: a caller without the scope cannot
    // make the server buffer a blob's worth of bytes. (The service's own
    // check then counts the use.)
    if !who.allowed(Scope::BlobWrite) {
        return Err(who.deny(Scope::BlobWrite).into());
    }
    let condition = condition(&headers)?;
    // Read up to the blob limit itself, not the JSON endpoints' limit.
    let limit = caps.blob.max_bytes();
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| api_error(BlobError::TooLarge(limit)))?;
    match caps
        .blob
        .set(&mut who, key, Vec::from(body), condition)
        .await
    {
        Ok(version) => {
            Ok((StatusCode::NO_CONTENT, [(header::ETAG, etag(&version))]).into_response())
        }
        Err(BlobError::Conflict(current)) => {
            let message = BlobError::Conflict(current.clone()).to_string();
            let mut response = ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                message,
            )
            .into_response();
            if let Some(v) = current {
                response.headers_mut().insert(header::ETAG, etag(&v));
            }
            Ok(response)
        }
        Err(e) => Err(api_error(e)),
    }
}

#[utoipa::path(
    delete,
    path = "/v1/blob/{*key}",
    operation_id = "deleteBlob",
    tag = "blob",
    summary = "Delete a blob",
    description = "Needs `blob:write`. Deleting a blob that is not there succeeds.",
    params(("key" = String, Path, description = "The blob's key", min_length = 1)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Gone"),
        (status = 503, description = "Blob storage does not answer; retry shortly", body = ErrorResponse),
    )
)]
async fn remove(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    caps.blob.delete(&mut who, key).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}
