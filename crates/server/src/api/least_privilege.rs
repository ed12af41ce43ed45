//! Least privilege over time: what a token or val did with its scopes
//! (`usage`), narrowing it to what it used (`narrow`), and the scopes vals
//! asked for by being refused them (`scope-requests`), granted or
//! dismissed by their owner.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(token_usage))
        .routes(routes!(narrow_token))
        .routes(routes!(val_usage))
        .routes(routes!(narrow_val))
        .routes(routes!(list_requests))
        .routes(routes!(decide))
}

/// `?days=N`: the window, 1 to 3650 days (default 30).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Window {
    /// How many days back "used" looks: 1 to 3650 (default 30).
    #[param(minimum = 1, maximum = 3650)]
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

#[utoipa::path(
    get,
    path = "/v1/tokens/{id}/usage",
    operation_id = "getTokenUsage",
    tag = "least privilege",
    summary = "A token's use of each scope, and what it never used",
    description = "Needs `user:read` and a personal token; your own tokens only.",
    params(("id" = String, Path, description = "The token's id"), Window),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report", body = UsageReport),
        (status = 404, description = "You have no token with that id", body = crate::error::ErrorResponse),
    )
)]
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

#[utoipa::path(
    post,
    path = "/v1/tokens/{id}/narrow",
    operation_id = "narrowToken",
    tag = "least privilege",
    summary = "Narrow a token to the scopes it used in the window",
    description = "Needs `user:write` and a personal token; your own tokens only.",
    params(("id" = String, Path, description = "The token's id"), Window),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Its scopes before and after", body = Narrowed),
        (status = 404, description = "You have no token with that id", body = crate::error::ErrorResponse),
    )
)]
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

#[utoipa::path(
    get,
    path = "/v2/vals/{id}/usage",
    operation_id = "getValUsage",
    tag = "least privilege",
    summary = "A val's calls' use of each scope",
    description = "Needs `val:read` (owner).",
    params(("id" = String, Path, description = "The val's id"), Window),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report", body = UsageReport),
        (status = 404, description = "You own no val with that id", body = crate::error::ErrorResponse),
    )
)]
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

#[utoipa::path(
    post,
    path = "/v2/vals/{id}/narrow",
    operation_id = "narrowVal",
    tag = "least privilege",
    summary = "Narrow a val's call scopes to those its calls used",
    description = "Needs `val:write` (owner).",
    params(("id" = String, Path, description = "The val's id"), Window),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Its scopes before and after", body = Narrowed),
        (status = 404, description = "You own no val with that id", body = crate::error::ErrorResponse),
    )
)]
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
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ScopeRequest)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = ScopeRequestList)]
struct RequestList {
    data: Vec<RequestView>,
}

#[utoipa::path(
    get,
    path = "/v1/scope-requests",
    operation_id = "listScopeRequests",
    tag = "least privilege",
    summary = "The scopes your vals were refused and ask for",
    description = "Needs `val:read`.",
    security(("bearer" = [])),
    responses((status = 200, description = "The requests", body = RequestList))
)]
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
#[utoipa::path(
    post,
    path = "/v1/scope-requests/{id}/{decision}",
    operation_id = "decideScopeRequest",
    tag = "least privilege",
    summary = "Grant a scope request (from the val's next call) or dismiss it",
    description = "Needs `val:write`, the scope itself to grant it, and a personal token.",
    params(
        ("id" = String, Path, description = "The request's id"),
        ("decision" = String, Path, description = "`grant` or `dismiss`", pattern = "^(grant|dismiss)$"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The request as decided", body = RequestView),
        (status = 404, description = "You have no request with that id", body = crate::error::ErrorResponse),
    )
)]
async fn decide(
    State(app): State<App>,
    Authed(who): Authed,
    Path((id, decision)): Path<(String, String)>,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(decide_for(&app, &who, &id, &decision).await?.into()))
}
