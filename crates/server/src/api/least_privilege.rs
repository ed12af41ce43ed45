//! Least privilege over time: what a token or val did with its scopes
//! (`usage`), narrowing it to what it used (`narrow`), and the scopes vals
//! asked for by being refused them (`scope-requests`), granted or
//! dismissed by their owner.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{Authed, iso8601};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::services::least_privilege::{
    Narrowed, decide_for, narrow_token_to_used, own_token, used_scopes,
};
use crate::services::scope_usage::{UsageReport, report};
use crate::services::val_access::{find_changeable, find_owned};
use valbox_model::{Scope, Subject};
use valbox_store::{ScopeRequestRow, ValChange, ValRow};

/// The window "used" looks back over, unless a request says otherwise.
const DEFAULT_DAYS: i64 = 30;
const MAX_DAYS: i64 = 3650;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/tokens/{id}/usage", get(token_usage))
        .route("/v1/tokens/{id}/narrow", post(narrow_token))
        .route("/v2/vals/{id}/usage", get(val_usage))
        .route("/v2/vals/{id}/narrow", post(narrow_val))
        .route("/v1/scope-requests", get(list_requests))
        .route("/v1/scope-requests/{id}/{decision}", post(decide))
}

/// `?days=N`: the window, 1 to 3650 days (default 30).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    days: Option<i64>,
}

impl Window {
    fn days(&self) -> ApiResult<i64> {
        match self.days.unwrap_or(DEFAULT_DAYS) {
            d @ 1..=MAX_DAYS => Ok(d),
            d => Err(ApiError::bad_request(
                "invalid_days",
                format!("days must be between 1 and {MAX_DAYS}, not {d}"),
            )),
        }
    }
}

async fn token_usage(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    Query(window): Query<Window>,
) -> ApiResult<Json<UsageReport>> {
    let held = own_token(&app, &who, &id, Scope::UserRead).await?;
    let days = window.days()?;
    let report = report(&app, Subject::Token(id), held, days).await?;
    Ok(Json(report))
}

async fn narrow_token(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    Query(window): Query<Window>,
) -> ApiResult<Json<Narrowed>> {
    Ok(Json(
        narrow_token_to_used(&app, &who, id, window.days()?).await?,
    ))
}

async fn val_usage(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    Query(window): Query<Window>,
) -> ApiResult<Json<UsageReport>> {
    let val = find_owned(&app.store, &who, &id, Scope::ValRead).await?;
    let held = val.scopes;
    let days = window.days()?;
    Ok(Json(report(&app, Subject::Val(val.id), held, days).await?))
}

async fn narrow_val(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    Query(window): Query<Window>,
) -> ApiResult<Json<Narrowed>> {
    let val = find_changeable(&app.store, &who, &id, Scope::ValWrite).await?;
    let held = val.scopes;
    let days = window.days()?;
    let report = report(&app, Subject::Val(val.id.clone()), held, days).await?;
    // Only ever narrower: what it holds now, of what it used.
    let after = used_scopes(&report);
    let narrow = move |now: &ValRow| {
        Ok(ValChange {
            scopes: Some(now.scopes.intersect(&after)),
            ..ValChange::default()
        })
    };
    app.store.vals.edit(&val.id, Box::new(narrow)).await?;
    app.forget_vals();
    Ok(Json(Narrowed::new(held, after, days)))
}

/// A scope request as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestView {
    id: String,
    val_id: String,
    val: String,
    scope: String,
    status: String,
    denied: i64,
    first_denied_at: String,
    last_denied_at: String,
    mailed_at: Option<String>,
}

impl From<ScopeRequestRow> for RequestView {
    fn from(r: ScopeRequestRow) -> Self {
        Self {
            id: r.id,
            val: format!("{}/{}", r.owner_name, r.val_name),
            val_id: r.val_id,
            scope: r.scope,
            status: r.status,
            denied: r.denied_count,
            first_denied_at: iso8601(r.first_denied_at),
            last_denied_at: iso8601(r.last_denied_at),
            mailed_at: r.mailed_at.map(iso8601),
        }
    }
}

#[derive(Serialize)]
struct RequestList {
    data: Vec<RequestView>,
}

async fn list_requests(
    State(app): State<App>,
    Authed(who): Authed,
) -> ApiResult<Json<RequestList>> {
    who.require(Scope::ValRead)?;
    crate::services::scope_usage::flush(&app).await?;
    let rows = app.store.scopes.requests_of(&who.user_id).await?;
    Ok(Json(RequestList {
        data: rows.into_iter().map(RequestView::from).collect(),
    }))
}

/// `grant` adds the scope to the val's calls (from its next call);
/// `dismiss` closes the request, which then stays quiet.
async fn decide(
    State(app): State<App>,
    Authed(who): Authed,
    Path((id, decision)): Path<(String, String)>,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(decide_for(&app, &who, &id, &decision).await?.into()))
}
