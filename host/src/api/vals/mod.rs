//! Vals and their versions: create, list, get, update, delete, deploy.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

mod json;
mod listing;
mod wit;

use super::{Authed, Caller, JsonBody};
use crate::app::App;
use crate::auth::val_access::{
    can_see, changer_scope, changer_scope_now, find_changeable, not_found, out_of_reach,
};
use crate::auth::{Principal, Scope, Scopes};
use crate::db::{self, ValRow, VersionRow};
use crate::error::{ApiError, ApiResult};
use crate::services::libraries::{LibraryView, resolve_deploy};
use json::VersionView;
pub use json::{ValResponse, val_urls};

pub const PRIVACY_LEVELS: &[&str] = &["public", "unlisted", "private"];

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v2/vals", get(listing::list).post(create))
        .route("/v2/me/vals", get(listing::list_mine))
        .route("/v2/vals/{id}", get(get_one).patch(update).delete(remove))
        .route("/v2/alias/vals/{username}/{name}", get(by_alias))
        .route("/v2/vals/{id}/versions", get(list_versions).post(deploy))
        .route("/v2/vals/{id}/versions/{version}/component", get(download))
        .route("/v2/vals/{id}/versions/{version}/wit", get(wit::show))
}

/// Val names: a letter, then letters, digits, `_` or `-`; at most 64.
pub fn validate_val_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid val name `{name}`: start with a letter, then use letters, digits, `_` or `-`, at most 64 characters"
        ))
    }
}

fn validate_privacy(privacy: &str) -> ApiResult<()> {
    if PRIVACY_LEVELS.contains(&privacy) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_privacy",
            format!(
                "privacy must be one of {}, not `{privacy}`",
                PRIVACY_LEVELS.join(", ")
            ),
        ))
    }
}

async fn find_writable(app: &App, who: &Principal, id: &str) -> ApiResult<ValRow> {
    find_changeable(&app.db, who, id, Scope::ValWrite).await
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    privacy: String,
    description: Option<String>,
}

async fn create(
    State(app): State<App>,
    Authed(who): Authed,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<ValResponse>)> {
    who.require(Scope::ValWrite)?;
    validate_val_name(&body.name).map_err(|m| ApiError::bad_request("invalid_name", m))?;
    validate_privacy(&body.privacy)?;
    let owner = who.user_id.clone();
    let who_scopes = who.scopes;
    let name = body.name.clone();
    let val = app
        .db
        .call(move |conn| {
            let username = db::user_by_id(conn, &owner)?
                .map(|u| u.username)
                .unwrap_or_default();
            if db::val_by_name(conn, &username, &body.name)?.is_some() {
                return Ok(None);
            }
            // A new val's calls get the default scopes that its creator
            // holds: a narrow token cannot mint a val wider than itself.
            let scopes = Scopes::val_default().intersect(&who_scopes).to_string();
            let description = body.description.unwrap_or_default();
            let id = db::insert_val(
                conn,
                &owner,
                &body.name,
                &body.privacy,
                &description,
                &scopes,
            )?;
            db::val_by_id(conn, &id)
        })
        .await?
        .ok_or_else(|| ApiError::conflict(format!("you already have a val named `{name}`")))?;
    app.forget_vals();
    Ok((
        StatusCode::CREATED,
        Json(ValResponse::new(&app, &val, Some(&who))),
    ))
}

async fn get_one(
    State(app): State<App>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ValResponse>> {
    let key = id.clone();
    let val = app.db.call(move |conn| db::val_by_id(conn, &key)).await?;
    match val {
        Some(val) if can_see(&val, who.as_ref()) => {
            Ok(Json(ValResponse::new(&app, &val, who.as_ref())))
        }
        _ => Err(not_found(&id)),
    }
}

async fn by_alias(
    State(app): State<App>,
    Caller(who): Caller,
    Path((username, name)): Path<(String, String)>,
) -> ApiResult<Json<ValResponse>> {
    match app.val_by_name(&username, &name).await? {
        Some(val) if can_see(&val, who.as_ref()) => {
            Ok(Json(ValResponse::new(&app, &val, who.as_ref())))
        }
        _ => Err(ApiError::not_found(format!(
            "no val `{username}/{name}` that you can see"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    privacy: Option<String>,
    description: Option<String>,
    /// The scopes of the val's per-call token.
    scopes: Option<super::tokens::ScopeList>,
    /// Hosts the val may fetch from (`*.example.com` for subdomains);
    /// `["*"]` means any public host.
    #[serde(rename = "fetchAllowlist")]
    fetch_allowlist: Option<Vec<String>>,
}

async fn update(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<Json<ValResponse>> {
    let val = find_writable(&app, &who, &id).await?;
    if let Some(p) = &body.privacy {
        validate_privacy(p)?;
    }
    // A token cannot give a val (and so the val's calls) more than it holds.
    let scopes = match &body.scopes {
        Some(list) => {
            let scopes = list.parse()?;
            super::tokens::require_grantable(&who, &scopes)?;
            // Only a person hands out the power to change vals.
            if let (Some(scope), Some(_)) = (changer_scope(&scopes), &who.call_of_val) {
                return Err(ApiError::forbidden(format!(
                    "a val's call token cannot grant `{scope}`; use a personal API token"
                )));
            }
            Some(scopes.to_string())
        }
        None => None,
    };
    // Where a val may fetch is part of its `fetch` grant.
    if let Some(hosts) = &body.fetch_allowlist {
        who.require(Scope::Fetch)?;
        for host in hosts {
            crate::caps::fetch::validate_allowlist_entry(host)
                .map_err(|m| ApiError::bad_request("invalid_allowlist", m))?;
        }
    }
    let by_val = who.call_of_val.is_some();
    let val = app
        .db
        .call(move |conn| {
            if by_val && let Some(scope) = changer_scope_now(conn, &val.id)? {
                return Ok(Err(scope));
            }
            db::update_val(
                conn,
                &val.id,
                body.privacy.as_deref(),
                body.description.as_deref(),
            )?;
            if let Some(scopes) = &scopes {
                db::set_val_scopes(conn, &val.id, scopes)?;
            }
            if let Some(hosts) = &body.fetch_allowlist {
                let any = hosts.iter().any(|h| h == "*");
                db::set_fetch_allowlist(conn, &val.id, (!any).then_some(hosts.as_slice()))?;
            }
            db::val_by_id(conn, &val.id).map(Ok)
        })
        .await?
        .map_err(out_of_reach)?
        .ok_or_else(|| not_found(&id))?;
    app.forget_vals();
    Ok(Json(ValResponse::new(&app, &val, Some(&who))))
}

async fn remove(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let val = find_writable(&app, &who, &id).await?;
    app.db
        .call(move |conn| db::delete_val(conn, &val.id))
        .await?;
    app.forget_vals();
    Ok(StatusCode::NO_CONTENT)
}

/// A val the caller may see, with its versions; 404 otherwise.
/// The component of version `version` of val `id`, if `who` may see it.
async fn version_bytes(
    app: &App,
    who: Option<&Principal>,
    id: &str,
    version: i64,
) -> ApiResult<(ValRow, Vec<u8>)> {
    let (val, versions) = visible_versions(app, who, id).await?;
    let v = versions.into_iter().find(|v| v.version == version);
    let v = v.ok_or_else(|| {
        ApiError::not_found(format!("val `{}` has no version {version}", val.name))
    })?;
    let runtime = app.runtime.clone();
    let bytes = tokio::task::spawn_blocking(move || runtime.component_bytes(&v.sha256))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok((val, bytes))
}

async fn visible_versions(
    app: &App,
    who: Option<&Principal>,
    id: &str,
) -> ApiResult<(ValRow, Vec<VersionRow>)> {
    let key = id.to_string();
    let found = app
        .db
        .call(move |conn| {
            let Some(val) = db::val_by_id(conn, &key)? else {
                return Ok(None);
            };
            let versions = db::list_versions(conn, &key)?;
            Ok(Some((val, versions)))
        })
        .await?;
    match found {
        Some((val, versions)) if can_see(&val, who) => Ok((val, versions)),
        _ => Err(not_found(id)),
    }
}

/// The body of `GET /v2/vals/{id}/versions`.
#[derive(Serialize)]
struct VersionListResponse {
    data: Vec<VersionView>,
}

async fn list_versions(
    State(app): State<App>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<VersionListResponse>> {
    let (_, versions) = visible_versions(&app, who.as_ref(), &id).await?;
    let data = versions.iter().map(VersionView::from).collect();
    Ok(Json(VersionListResponse { data }))
}

/// A version just deployed, and where it serves (an HTTP val, by path and
/// by host) or runs (any other kind).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeployResponse {
    #[serde(flatten)]
    version: VersionView,
    val_id: String,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_url: Option<String>,
    /// The libraries its imports resolve to, by name, and the version
    /// each runs now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resolved_libraries: Vec<LibraryView>,
}

/// The libraries a deploy names in its query: `dep=user/val[@N|@latest]`
/// (repeatable) and `grant=user/val=scope,scope` (repeatable).
fn deploy_query(query: Option<&str>) -> ApiResult<(Vec<String>, Vec<String>)> {
    let (mut deps, mut grants) = (Vec::new(), Vec::new());
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "dep" => deps.push(value.into_owned()),
            "grant" => grants.push(value.into_owned()),
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown query parameter `{other}`; a deploy takes `dep` and `grant`"),
                ));
            }
        }
    }
    Ok((deps, grants))
}

/// Upload a component (the raw bytes of a `.wasm` file) as the val's next
/// version, with the libraries its imports resolve to. It is validated,
/// linked, compiled and stored before the 201.
async fn deploy(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> ApiResult<(StatusCode, Json<DeployResponse>)> {
    let (deps, grants) = deploy_query(query.as_deref())?;
    let val = find_writable(&app, &who, &id).await?;
    // New code runs with the val's scopes: only a token holding all of
    // them may deploy it, or `val:write` alone would buy every scope.
    let val_scopes = Scopes::parse(&val.scopes).map_err(ApiError::internal)?;
    super::tokens::require_all(&who, &val_scopes, |scope| {
        format!(
            "this val's calls get `{scope}`, which the deploying token lacks; \
             deploy with a token that holds every scope of the val, or narrow its scopes first"
        )
    })?;
    let limit = app.config.limits.component_bytes;
    let bytes: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large("the component", limit))?;
    let libraries = resolve_deploy(&app, &who, &val, deps, grants).await?;
    let prepared = app
        .runtime
        .prepare(bytes.to_vec(), libraries.plans)
        .await
        .map_err(|e| match e {
            crate::runtime::UploadError::Internal(m) => ApiError::internal(m),
            e => ApiError::bad_request(e.code(), e.to_string()),
        })?;
    let val_id = val.id.clone();
    let by_val = who.call_of_val.is_some();
    let refs = libraries.refs;
    let version = app
        .db
        .call(move |conn| {
            if by_val && let Some(scope) = changer_scope_now(conn, &val_id)? {
                return Ok(Err(scope));
            }
            db::insert_version(
                conn,
                &val_id,
                &prepared.sha256,
                prepared.size as i64,
                prepared.kind.as_str(),
                &refs,
            )
            .map(Ok)
        })
        .await?
        .map_err(out_of_reach)?;
    app.forget_vals();
    let (endpoint, host_endpoint) = val_urls(&app, &val);
    let (url, host_url) = match version.kind.as_str() {
        "http" => (endpoint, Some(host_endpoint)),
        // A library is not run: where its interfaces are described.
        "library" => (
            format!(
                "{}/v2/vals/{}/versions/{}/wit",
                app.config.public_url, val.id, version.version
            ),
            None,
        ),
        _ => (
            format!(
                "{}/v1/run/{}.{}",
                app.config.public_url, val.owner_name, val.name
            ),
            None,
        ),
    };
    let body = DeployResponse {
        version: VersionView::from(&version),
        val_id: val.id,
        url,
        host_url,
        resolved_libraries: libraries.views,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// Download a version's component. Public and unlisted vals' code is
/// downloadable; a private val's only by its owner (404 to everyone else).
async fn download(
    State(app): State<App>,
    Caller(who): Caller,
    Path((id, version)): Path<(String, i64)>,
) -> ApiResult<axum::response::Response> {
    let (val, bytes) = version_bytes(&app, who.as_ref(), &id, version).await?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/wasm".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-v{version}.wasm\"", val.name),
            ),
        ],
        bytes,
    )
        .into_response())
}
