//! `/v2/vals/{id}/environment_variables`: the owner lists, sets and
//! deletes a val's env vars; values are never shown.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use valbox_caps::env::vars::EnvVarJson;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::services::env_vars;
use crate::web::{Authed, JsonBody};

/// A page of a val's env vars, in Val Town's shape.
#[derive(Serialize, ToSchema)]
struct EnvVarList {
    data: Vec<EnvVarJson>,
    links: Links,
}

#[derive(Serialize, ToSchema)]
#[schema(as = EnvVarLinks)]
struct Links {
    #[serde(rename = "self")]
    self_: String,
}

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_route, create_route))
        .routes(routes!(update_route, delete_route))
}

/// An env var to set (Val Town's shape).
#[derive(Deserialize, ToSchema)]
#[schema(as = NewEnvVar)]
struct CreateBody {
    /// Letters, digits and `_`, not starting with a digit; at most 128.
    /// `valtown` is the call token's own.
    #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    key: String,
    value: String,
    description: Option<String>,
}

/// An env var's new value.
#[derive(Deserialize, ToSchema)]
#[schema(as = EnvVarValue)]
struct UpdateBody {
    value: String,
    description: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v2/vals/{id}/environment_variables",
    operation_id = "listEnvVars",
    tag = "env",
    summary = "A val's env vars, without their values",
    description = "Needs `env:read` (owner).",
    params(("id" = String, Path, description = "The val's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The env vars", body = EnvVarList),
        (status = 404, description = "You own no val with that id", body = crate::error::ErrorResponse),
    )
)]
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

#[utoipa::path(
    post,
    path = "/v2/vals/{id}/environment_variables",
    operation_id = "createEnvVar",
    tag = "env",
    summary = "Set an env var",
    description = "Needs `env:write` (owner).",
    params(("id" = String, Path, description = "The val's id")),
    request_body = CreateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The env var, without its value", body = EnvVarJson),
        (status = 404, description = "You own no val with that id", body = crate::error::ErrorResponse),
    )
)]
async fn create_route(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<EnvVarJson>)> {
    let meta = env_vars::set(&app, &who, &id, body.key, body.value, body.description).await?;
    Ok((StatusCode::CREATED, Json(meta.into())))
}

#[utoipa::path(
    put,
    path = "/v2/vals/{id}/environment_variables/{key}",
    operation_id = "setEnvVar",
    tag = "env",
    summary = "Set an env var's value",
    description = "Needs `env:write` (owner).",
    params(
        ("id" = String, Path, description = "The val's id"),
        ("key" = String, Path, description = "The env var's name", pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$"),
    ),
    request_body = UpdateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The env var, without its value", body = EnvVarJson),
        (status = 404, description = "You own no val with that id", body = crate::error::ErrorResponse),
    )
)]
async fn update_route(
    State(app): State<App>,
    Authed(who): Authed,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<Json<EnvVarJson>> {
    let meta = env_vars::set(&app, &who, &id, key, body.value, body.description).await?;
    Ok(Json(meta.into()))
}

#[utoipa::path(
    delete,
    path = "/v2/vals/{id}/environment_variables/{key}",
    operation_id = "deleteEnvVar",
    tag = "env",
    summary = "Delete an env var",
    description = "Needs `env:write` (owner).",
    params(
        ("id" = String, Path, description = "The val's id"),
        ("key" = String, Path, description = "The env var's name"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such val of yours, or no such env var", body = crate::error::ErrorResponse),
    )
)]
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
