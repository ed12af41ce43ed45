//! User endpoints: `/v1/me` and `/v1/alias/{username}`.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Authed, Caller};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use valbox_caps::storage::StorageUsage;
use valbox_model::Scope;
use valbox_store::User;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(by_alias))
}

/// A user as the API shows it, in Val Town's shape.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = User)]
struct UserResponse {
    id: String,
    username: String,
    /// Only the user's own `/v1/me` shows it; `null` elsewhere.
    email: Option<String>,
    /// Val Town's fields that Valbox has no data for: always `null`.
    bio: Option<String>,
    profile_image_url: Option<String>,
    #[schema(value_type = String, example = "free")]
    tier: &'static str,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "user")]
    kind: &'static str,
    url: String,
    links: UserLinks,
    /// Only in the user's own `/v1/me`: what they store, against their
    /// quota (Valbox's addition).
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<StorageUsage>,
}

/// The `links` of a [`UserResponse`].
#[derive(Serialize, ToSchema)]
struct UserLinks {
    #[serde(rename = "self")]
    self_link: String,
}

impl UserResponse {
    fn new(app: &App, user: User, with_email: bool) -> Self {
        let base = &app.config.public_url;
        Self {
            url: format!("{base}/u/{}", user.username),
            links: UserLinks {
                self_link: format!("{base}/v1/alias/{}", user.username),
            },
            id: user.id,
            username: user.username,
            email: with_email.then_some(user.email),
            bio: None,
            profile_image_url: None,
            tier: "free",
            kind: "user",
            storage: None,
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "getMe",
    tag = "users",
    summary = "The caller's profile, with what they store",
    description = "Needs `user:read`.",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = UserResponse))
)]
async fn me(State(app): State<App>, Authed(who): Authed) -> ApiResult<Json<UserResponse>> {
    who.require(Scope::UserRead)?;
    let user = app.store.users.by_id(&who.user_id).await?;
    let storage = app.caps.blob.meter.usage(&who.user_id).await?;
    let user = user.ok_or_else(|| ApiError::unauthorized("the token's user no longer exists"))?;
    let mut response = UserResponse::new(&app, user, true);
    response.storage = Some(storage);
    Ok(Json(response))
}

#[utoipa::path(
    get,
    path = "/v1/alias/{username}",
    operation_id = "getUserByAlias",
    tag = "users",
    summary = "A user by name",
    params(("username" = String, Path, description = "The user's name")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The user, without their email", body = UserResponse),
        (status = 404, description = "No such user", body = crate::error::ErrorResponse),
    )
)]
async fn by_alias(
    State(app): State<App>,
    _: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<UserResponse>> {
    let user = app
        .store
        .users
        .by_name(&username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user named `{username}`")))?;
    Ok(Json(UserResponse::new(&app, user, false)))
}
