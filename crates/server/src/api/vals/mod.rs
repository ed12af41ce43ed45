//! Vals and their versions: create, list, get, update, delete, deploy.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod listing;
mod wit;

use super::{Authed, Caller, JsonBody};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::services::cron;
use crate::services::deploy::{DeployQuery, DeployResponse, deploy_bytes, may_deploy};
use crate::services::val_access::{
    can_see, changer_scope, find_writable, guarded, not_found, refused,
};
use crate::services::val_views::{ValResponse, VersionView};
use valbox_model::{Principal, Privacy, Scope};
use valbox_runtime::CallError;
use valbox_store::{NewVal, ValChange, ValRow, VersionRow};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(listing::list, create))
        .routes(routes!(listing::list_mine))
        .routes(routes!(get_one, update, remove))
        .routes(routes!(by_alias))
        .routes(routes!(list_versions, deploy))
        .routes(routes!(download))
        .routes(routes!(wit::show))
}

/// The most calls one reused instance may serve.
pub const MAX_REUSE: u32 = 10_000;

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

fn parse_privacy(privacy: &str) -> ApiResult<Privacy> {
    Privacy::parse(privacy).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_privacy",
            format!(
                "privacy must be one of {}, not `{privacy}`",
                Privacy::ALL.map(Privacy::as_str).join(", ")
            ),
        )
    })
}

/// A val to create (Val Town's shape).
#[derive(Deserialize, ToSchema)]
#[schema(as = NewVal)]
struct CreateBody {
    /// A letter, then letters, digits, `_` or `-`; at most 64; unique
    /// among the owner's vals.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
    name: String,
    #[schema(value_type = PrivacyName)]
    privacy: String,
    description: Option<String>,
}

/// Who may see and call a val.
#[derive(ToSchema)]
#[schema(as = Privacy, rename_all = "lowercase")]
#[allow(dead_code)] // only its schema: the handlers parse the text
enum PrivacyName {
    Public,
    Unlisted,
    Private,
}

#[utoipa::path(
    post,
    path = "/v2/vals",
    operation_id = "createVal",
    tag = "vals",
    summary = "Create a val",
    description = "Needs `val:write`. Its calls get the default scopes the creating token holds.",
    request_body = CreateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new val", body = ValResponse),
        (status = 409, description = "You already have a val of that name", body = ErrorResponse),
    )
)]
async fn create(
    State(app): State<App>,
    Authed(who): Authed,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<ValResponse>)> {
    who.require(Scope::ValWrite)?;
    validate_val_name(&body.name).map_err(|m| ApiError::bad_request("invalid_name", m))?;
    let privacy = parse_privacy(&body.privacy)?;
    // A new val's calls get the default scopes that its creator holds: a
    // narrow token cannot mint a val wider than itself.
    let val = NewVal {
        owner_id: who.user_id.clone(),
        name: body.name,
        privacy,
        description: body.description.unwrap_or_default(),
        scopes: app.config.default_val_scopes.intersect(&who.scopes),
    };
    let val = app.store.vals.create(val).await?;
    app.forget_vals();
    Ok((
        StatusCode::CREATED,
        Json(ValResponse::new(&app, &val, Some(&who))),
    ))
}

#[utoipa::path(
    get,
    path = "/v2/vals/{id}",
    operation_id = "getVal",
    tag = "vals",
    summary = "One val",
    description = "A private val only for its owner with `val:read`; its settings and schedule only for its owner.",
    params(("id" = String, Path, description = "The val's id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The val", body = ValResponse),
        (status = 404, description = "No val with that id that you can see", body = ErrorResponse),
    )
)]
async fn get_one(
    State(app): State<App>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ValResponse>> {
    match app.store.vals.by_id(&id).await? {
        Some(val) if can_see(&val, who.as_ref()) => {
            let response = ValResponse::new(&app, &val, who.as_ref());
            Ok(Json(
                response.with_schedule(&app, &val, who.as_ref()).await?,
            ))
        }
        _ => Err(not_found(&id).into()),
    }
}

#[utoipa::path(
    get,
    path = "/v2/alias/vals/{username}/{name}",
    operation_id = "getValByAlias",
    tag = "vals",
    summary = "One val, by its owner's name and its own",
    params(
        ("username" = String, Path, description = "The owner's name"),
        ("name" = String, Path, description = "The val's name"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The val", body = ValResponse),
        (status = 404, description = "No such val that you can see", body = ErrorResponse),
    )
)]
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

/// A host a val may fetch from: `host.example`, `*.example` for its
/// subdomains, or `*` (any public host); lowercase, no scheme, port or path.
#[derive(ToSchema)]
#[schema(pattern = "^(\\*|(\\*\\.)?[a-z0-9-]{1,63}(\\.[a-z0-9-]{1,63})*)$")]
#[allow(dead_code)] // only its schema: `validate_allowlist_entry` checks the text
struct AllowlistEntry(String);

/// What to change; what is left out stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ValChange)]
struct UpdateBody {
    #[schema(value_type = Option<PrivacyName>)]
    privacy: Option<String>,
    description: Option<String>,
    /// The scopes of the val's per-call token.
    scopes: Option<super::tokens::ScopeList>,
    /// Hosts the val may fetch from (`*.example.com` for subdomains);
    /// `["*"]` means any public host.
    #[serde(rename = "fetchAllowlist")]
    #[schema(value_type = Option<Vec<AllowlistEntry>>)]
    fetch_allowlist: Option<Vec<String>>,
    /// A cron val's schedule: `every 15m`, `0 9 * * 1-5`, `TZ=Europe/Paris
    /// 0 9 * * *`, or `off`.
    schedule: Option<String>,
    /// `false` unpauses a cron val paused after failing.
    paused: Option<bool>,
    /// Calls one instance of an HTTP val may serve before it is retired
    /// (its state survives between them); 0 turns reuse off.
    #[serde(default, deserialize_with = "crate::web::whole_number")]
    #[schema(maximum = 10000)]
    reuse: Option<u32>,
}

#[utoipa::path(
    patch,
    path = "/v2/vals/{id}",
    operation_id = "updateVal",
    tag = "vals",
    summary = "Change a val: privacy, description, call scopes, fetch allowlist, schedule",
    description = "Needs `val:write` (owner), every scope it grants, and `fetch` to set `fetchAllowlist`. A refused change changes nothing.",
    params(("id" = String, Path, description = "The val's id")),
    request_body = UpdateBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The val as changed", body = ValResponse),
        (status = 404, description = "No val with that id that you may change", body = ErrorResponse),
        (status = 409, description = "Too many schedules for this owner", body = ErrorResponse),
    )
)]
async fn update(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<Json<ValResponse>> {
    let val = find_writable(&app, &who, &id).await?;
    let privacy = body.privacy.as_deref().map(parse_privacy).transpose()?;
    // A token cannot give a val (and so the val's calls) more than it holds.
    let scopes = match &body.scopes {
        Some(list) => {
            let scopes = list.parse()?;
            crate::services::tokens::require_grantable(&who, &scopes)?;
            // Only a person hands out the power to change vals.
            if let (Some(scope), Some(_)) = (changer_scope(&scopes), &who.call_of_val) {
                return Err(ApiError::forbidden(format!(
                    "a val's call token cannot grant `{scope}`; use a personal API token"
                )));
            }
            Some(scopes)
        }
        None => None,
    };
    // Where a val may fetch is part of its `fetch` grant.
    if let Some(hosts) = &body.fetch_allowlist {
        who.require(Scope::Fetch)?;
        for host in hosts {
            valbox_caps::fetch::validate_allowlist_entry(host)
                .map_err(|m| ApiError::bad_request("invalid_allowlist", m))?;
        }
    }
    // `["*"]`: any public host again.
    let fetch_allowlist = body
        .fetch_allowlist
        .map(|hosts| (!hosts.iter().any(|h| h == "*")).then_some(hosts));
    if let Some(n) = body.reuse
        && n > MAX_REUSE
    {
        return Err(ApiError::bad_request(
            "invalid_reuse",
            format!("an instance may serve at most {MAX_REUSE} calls; 0 turns reuse off"),
        ));
    }
    let change = ValChange {
        privacy,
        description: body.description,
        scopes,
        fetch_allowlist,
        reuse: body.reuse,
    };
    if body.paused == Some(true) {
        return Err(ApiError::bad_request(
            "invalid_paused",
            "only `\"paused\": false` (unpause) can be set; a schedule pauses itself after failing",
        ));
    }
    // Checked before anything changes: a refused PATCH changes nothing.
    let schedule = (body.schedule.as_deref())
        .map(|text| cron::check(&app, &val, text))
        .transpose()
        .map_err(schedule_refused)?;
    let val = match app
        .store
        .vals
        .edit(&val.id, guarded(&who, |_| change))
        .await?
    {
        None => return Err(not_found(&id).into()),
        Some(Err(refusal)) => return Err(refused(refusal).into()),
        Some(Ok(val)) => val,
    };
    app.forget_vals();
    if let Some(schedule) = schedule {
        cron::set(&app, &val, schedule)
            .await
            .map_err(schedule_refused)?;
    }
    if body.paused == Some(false) {
        cron::unpause(&app, &val).await?;
    }
    let response = ValResponse::new(&app, &val, Some(&who));
    Ok(Json(response.with_schedule(&app, &val, Some(&who)).await?))
}

fn schedule_refused(why: cron::Refused) -> ApiError {
    let code = match why {
        cron::Refused::Store(e) => return e.into(),
        cron::Refused::TooMany(_) => {
            return ApiError::new(StatusCode::CONFLICT, "too_many_schedules", why.to_string());
        }
        cron::Refused::Invalid(_) => "invalid_schedule",
        cron::Refused::TooOften { .. } => "schedule_too_frequent",
        cron::Refused::NotCron(_) => "not_a_cron_val",
    };
    ApiError::bad_request(code, why.to_string())
}

#[utoipa::path(
    delete,
    path = "/v2/vals/{id}",
    operation_id = "deleteVal",
    tag = "vals",
    summary = "Delete a val",
    description = "Needs `val:write` (owner).",
    params(("id" = String, Path, description = "The val's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No val with that id that you may change", body = ErrorResponse),
    )
)]
async fn remove(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let val = find_writable(&app, &who, &id).await?;
    app.store.vals.delete(&val.id).await?;
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
    match runtime.fetch_source(&v.sha256).await {
        Ok(()) => {}
        Err(CallError::Unavailable(m)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "object_store_unavailable",
                format!("the component could not be fetched ({m}); retry shortly"),
            ));
        }
        Err(other) => return Err(ApiError::internal(format!("{other:?}"))),
    }
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
    match app.store.vals.by_id(id).await? {
        Some(val) if can_see(&val, who) => {
            let versions = app.store.vals.versions(id).await?;
            Ok((val, versions))
        }
        _ => Err(not_found(id).into()),
    }
}

/// The body of `GET /v2/vals/{id}/versions`.
#[derive(Serialize, ToSchema)]
#[schema(as = VersionList)]
struct VersionListResponse {
    data: Vec<VersionView>,
}

#[utoipa::path(
    get,
    path = "/v2/vals/{id}/versions",
    operation_id = "listVersions",
    tag = "vals",
    summary = "A val's versions, oldest first",
    params(("id" = String, Path, description = "The val's id")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The versions", body = VersionListResponse),
        (status = 404, description = "No val with that id that you can see", body = ErrorResponse),
    )
)]
async fn list_versions(
    State(app): State<App>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<VersionListResponse>> {
    let (_, versions) = visible_versions(&app, who.as_ref(), &id).await?;
    let data = versions.iter().map(VersionView::from).collect();
    Ok(Json(VersionListResponse { data }))
}

/// Download a version's component. Public and unlisted vals' code is
/// downloadable; a private val's only by its owner (404 to everyone else).
#[utoipa::path(
    get,
    path = "/v2/vals/{id}/versions/{version}/component",
    operation_id = "downloadComponent",
    tag = "vals",
    summary = "Download a version's component",
    description = "A private val's only for its owner with `val:read`.",
    params(
        ("id" = String, Path, description = "The val's id"),
        ("version" = i64, Path, description = "The version, from 0"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The `.wasm` bytes", content_type = "application/wasm", body = crate::api::openapi::Binary),
        (status = 404, description = "No such val or version that you can see", body = ErrorResponse),
        (status = 503, description = "The object store does not answer; retry shortly", body = ErrorResponse),
    )
)]
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

/// Upload a component as the val's next version. It is validated,
/// linked, compiled and stored before the 201.
#[utoipa::path(
    post,
    path = "/v2/vals/{id}/versions",
    operation_id = "deployVersion",
    tag = "vals",
    summary = "Deploy a component as the val's next version",
    description = "The body is the `.wasm` bytes. It is validated, linked and compiled before the 201. Needs `val:write` and every scope the val's calls get (and, to grant, the declared ones).",
    params(
        ("id" = String, Path, description = "The val's id"),
        ("dep" = Option<Vec<String>>, Query, description = "A library its imports resolve to: `user/val`, `user/val@N` or `user/val@latest`; repeat for more"),
        ("grant" = Option<Vec<String>>, Query, description = "Scopes for a library: `user/val=scope,scope`; repeat for more"),
        ("grantDeclared" = Option<bool>, Query, description = "`true` grants the scopes and hosts the component declares"),
    ),
    request_body(
        description = "The component: the bytes of a `.wasm` file, whatever the `Content-Type`",
        content(
            (crate::api::openapi::Binary = "application/wasm"),
            (crate::api::openapi::Binary = "application/octet-stream"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The version deployed, and where it serves", body = crate::services::deploy::DeployResponse),
        (status = 404, description = "No val with that id that you may change", body = ErrorResponse),
        (status = 413, description = "The component is larger than the server's limit", body = ErrorResponse),
        (status = 507, description = "The owner's storage quota is full", body = ErrorResponse),
    )
)]
async fn deploy(
    State(app): State<App>,
    Authed(who): Authed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> ApiResult<(StatusCode, Json<DeployResponse>)> {
    let query = DeployQuery::parse(query.as_deref())?;
    let val = may_deploy(&app, &who, &id).await?;
    let limit = app.config.limits.component_bytes;
    let bytes: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large("the component", limit))?;
    let deployed = deploy_bytes(&app, &who, val, &bytes, query).await?;
    Ok((StatusCode::CREATED, Json(deployed)))
}
