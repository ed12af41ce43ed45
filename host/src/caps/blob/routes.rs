//! `/v1/blob`: Val Town's blob API over the caller's own namespace.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::BlobError;
use crate::api::{Authed, iso8601};
use crate::app::App;
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/blob", get(list))
        .route("/v1/blob/{*key}", get(fetch).post(store).delete(remove))
}

fn api_error(e: BlobError) -> ApiError {
    match e {
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

async fn run<R: Send + 'static>(
    app: &App,
    who: &Principal,
    op: impl FnOnce(&super::BlobStore, &rusqlite::Connection, &str) -> Result<R, BlobError>
    + Send
    + 'static,
) -> ApiResult<R> {
    let (store, owner) = (app.blobs.clone(), who.user_id.clone());
    app.db
        .call(move |conn| Ok(op(&store, conn, &owner)))
        .await?
        .map_err(api_error)
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
}

async fn list(
    State(app): State<App>,
    Authed(who): Authed,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    who.require(Scope::BlobRead)?;
    let entries = run(&app, &who, move |s, c, o| s.list(c, o, &q.prefix)).await?;
    let data: Vec<Value> = entries
        .into_iter()
        .map(|e| json!({ "key": e.key, "size": e.size, "lastModified": iso8601(e.last_modified_ms) }))
        .collect();
    Ok(Json(Value::Array(data)))
}

async fn fetch(
    State(app): State<App>,
    Authed(who): Authed,
    Path(key): Path<String>,
) -> ApiResult<impl IntoResponse> {
    who.require(Scope::BlobRead)?;
    let k = key.clone();
    match run(&app, &who, move |s, c, o| s.get(c, o, &k)).await? {
        Some(bytes) => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes)),
        None => Err(ApiError::not_found(format!("no blob with key `{key}`"))),
    }
}

async fn store(
    State(app): State<App>,
    Authed(who): Authed,
    Path(key): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    who.require(Scope::BlobWrite)?;
    // Read up to the blob limit itself, not the JSON endpoints' limit.
    let limit = app.blobs.max_blob_bytes;
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| api_error(BlobError::TooLarge(limit)))?;
    run(&app, &who, move |s, c, o| s.set(c, o, &key, &body)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(app): State<App>,
    Authed(who): Authed,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    who.require(Scope::BlobWrite)?;
    run(&app, &who, move |s, c, o| s.delete(c, o, &key)).await?;
    Ok(StatusCode::NO_CONTENT)
}
