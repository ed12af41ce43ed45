//! `/v2/vals/{id}/environment_variables`: the owner lists, sets and
//! deletes a val's env vars; values are never shown.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};

use axum::Router;
use valbox_caps::env::vars::EnvVarJson;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::services::env_vars;
use crate::web::{Authed, JsonBody};

/// A page of a val's env vars, in Val Town's shape.
#[derive(Serialize)]
struct EnvVarList {
    data: Vec<EnvVarJson>,
    links: Links,
}

#[derive(Serialize)]
struct Links {
    #[serde(rename = "self")]
    self_: String,
}

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/v2/vals/{id}/environment_variables",
            get(list_route).post(create_route),
        )
        .route(
            "/v2/vals/{id}/environment_variables/{key}",
            put(update_route).delete(delete_route),
        )
}

#[derive(Deserialize)]
struct CreateBody {
    key: String,
    value: String,
    description: Option<String>,
}

#[derive(Deserialize)]
struct UpdateBody {
    value: String,
    description: Option<String>,
}

async fn list_route(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<EnvVarList>> {
    let vars = env_vars::list(&app, &who, &id).await?;
    Ok(Json(EnvVarList {
        data: vars.into_iter().map(EnvVarJson::from).collect(),
        links: Links {
            self_: format!("/v2/vals/{id}/environment_variables"),
        },
    }))
}

async fn create_route(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<EnvVarJson>)> {
    let meta = env_vars::set(&app, &who, &id, body.key, body.value, body.description).await?;
    Ok((StatusCode::CREATED, Json(meta.into())))
}

async fn update_route(
    State(app): State<App>,
    Authed(who): Authed,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<Json<EnvVarJson>> {
    let meta = env_vars::set(&app, &who, &id, key, body.value, body.description).await?;
    Ok(Json(meta.into()))
}

async fn delete_route(
    State(app): State<App>,
    Authed(who): Authed,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if env_vars::delete(&app, &who, &id, key.clone()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "the val has no env var `{key}`"
        )))
    }
}
