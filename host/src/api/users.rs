//! User endpoints: `/v1/me` and `/v1/alias/{username}`.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Authed, Caller};
use crate::app::App;
use crate::auth::Scope;
use crate::db::{self, User};
use crate::error::{ApiError, ApiResult};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/alias/{username}", get(by_alias))
}

fn user_json(app: &App, user: &User, with_email: bool) -> Value {
    let url = format!("{}/u/{}", app.config.public_url, user.username);
    json!({
        "id": user.id,
        "username": user.username,
        "email": if with_email { Some(&user.email) } else { None },
        "bio": null,
        "profileImageUrl": null,
        "tier": "free",
        "type": "user",
        "url": url,
        "links": { "self": format!("{}/v1/alias/{}", app.config.public_url, user.username) },
    })
}

async fn me(State(app): State<App>, Authed(who): Authed) -> ApiResult<Json<Value>> {
    who.require(Scope::UserRead)?;
    let id = who.user_id.clone();
    let user = app
        .db
        .call(move |conn| db::user_by_id(conn, &id))
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token's user no longer exists"))?;
    Ok(Json(user_json(&app, &user, true)))
}

async fn by_alias(
    State(app): State<App>,
    Caller(_): Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let name = username.clone();
    let user = app
        .db
        .call(move |conn| db::user_by_name(conn, &name))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user named `{username}`")))?;
    Ok(Json(user_json(&app, &user, false)))
}
