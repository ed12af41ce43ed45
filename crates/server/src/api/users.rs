//! User endpoints: `/v1/me` and `/v1/alias/{username}`.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{Authed, Caller};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use valbox_caps::storage::StorageUsage;
use valbox_model::Scope;
use valbox_store::User;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/alias/{username}", get(by_alias))
}

/// A user as the API shows it, in Val Town's shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserResponse {
    id: String,
    username: String,
    /// Only the user's own `/v1/me` shows it; `null` elsewhere.
    email: Option<String>,
    /// Val Town's fields that Valbox has no data for: always `null`.
    bio: Option<String>,
    profile_image_url: Option<String>,
    tier: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
    links: UserLinks,
    /// Only in the user's own `/v1/me`: what they store, against their
    /// quota (Valbox's addition).
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<StorageUsage>,
}

/// The `links` of a [`UserResponse`].
#[derive(Serialize)]
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

async fn me(State(app): State<App>, Authed(who): Authed) -> ApiResult<Json<UserResponse>> {
    who.require(Scope::UserRead)?;
    let user = app.store.users.by_id(&who.user_id).await?;
    let storage = app.caps.blob.meter.usage(&who.user_id).await?;
    let user = user.ok_or_else(|| ApiError::unauthorized("the token's user no longer exists"))?;
    let mut response = UserResponse::new(&app, user, true);
    response.storage = Some(storage);
    Ok(Json(response))
}

async fn by_alias(
    State(app): State<App>,
    Caller(_): Caller,
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
