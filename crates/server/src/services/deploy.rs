//! Deploying a val's next version: the component (the raw bytes of a
//! `.wasm` file), the libraries its imports resolve to, and what it
//! declares it needs, granted when the deploy asks.

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::services::declared::{Declared, DeclaredView};
use crate::services::error::{Kind, ServiceError, ServiceResult};
use crate::services::libraries::{LibraryView, resolve_deploy};
use crate::services::tokens::{require_all, require_grantable};
use crate::services::val_access::find_writable;
use crate::services::val_access::{changer_scope, guarded, not_found, out_of_reach};
use crate::services::val_views::{VersionView, val_urls};
use valbox_model::{Principal, Scopes, ValKind};
use valbox_runtime::{LibraryPlan, Prepared, UploadError};
use valbox_store::{NewVersion, Refusal, ValChange, ValRow, VersionRow};

/// A version just deployed, and where it serves (an HTTP val, by path and
/// by host) or runs (any other kind).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeployResponse {
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
    /// What the component declares it needs, against what it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    declared: Option<DeclaredView>,
}

/// What a deploy's query asks: `dep=user/val[@N|@latest]` and
/// `grant=user/val=scope,scope` (both repeatable) for its libraries, and
/// `grantDeclared=true` to grant the scopes and hosts it declares.
#[derive(Default)]
pub struct DeployQuery {
    deps: Vec<String>,
    grants: Vec<String>,
    grant_declared: bool,
}

impl DeployQuery {
    pub fn parse(query: Option<&str>) -> ServiceResult<Self> {
        let mut q = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "dep" => q.deps.push(value.into_owned()),
                "grant" => q.grants.push(value.into_owned()),
                "grantDeclared" => q.grant_declared = value == "true",
                other => {
                    return Err(ServiceError::bad_request(
                        "invalid_query",
                        format!(
                            "unknown query parameter `{other}`; a deploy takes `dep`, `grant` and `grantDeclared`"
                        ),
                    ));
                }
            }
        }
        Ok(q)
    }
}

/// The val `id`, if `who` may deploy to it: checked before the upload is
/// read, so a refused caller cannot make the server buffer it.
pub async fn may_deploy(app: &App, who: &Principal, id: &str) -> ServiceResult<ValRow> {
    let val = find_writable(app, who, id).await?;
    // New code runs with the val's scopes: only a token holding all of
    // them may deploy it, or `val:write` alone would buy every scope.
    require_all(who, &val.scopes, |scope| {
        format!(
            "this val's calls get `{scope}`, which the deploying token lacks; \
             deploy with a token that holds every scope of the val, or narrow its scopes first"
        )
    })?;
    Ok(val)
}

/// Deploy the component `bytes` as `val`'s next version, as `query` asks.
pub async fn deploy_bytes(
    app: &App,
    who: &Principal,
    val: ValRow,
    bytes: &[u8],
    query: DeployQuery,
) -> ServiceResult<DeployResponse> {
    // Refused before it costs a compile; checked again as it is stored.
    let meter = &app.caps.blob.meter;
    meter
        .room_for(&val.owner_id, bytes.len() as i64)
        .await?
        .map_err(storage_full)?;
    let libraries = resolve_deploy(app, who, &val, query.deps, query.grants).await?;
    let prepared = compile(app, &val, bytes, libraries.plans).await?;
    super::components::share(app.objects.as_ref(), &prepared.sha256, bytes).await?;
    // Read once the bytes are known to be a valid component.
    let declared = Declared::read(bytes)?;
    if query.grant_declared {
        may_grant(who, &declared)?;
    }
    let grant = query.grant_declared.then(|| declared.clone());
    let room = meter.room(&val.owner_id, prepared.size as i64).await;
    let version = NewVersion {
        val_id: val.id.clone(),
        owner_id: val.owner_id.clone(),
        sha256: prepared.sha256,
        size: prepared.size as i64,
        kind: prepared.kind,
        libraries: libraries.refs,
        room,
        edit: Some(guarded(who, move |val| match grant {
            Some(declared) => grant_declared(val, &declared),
            None => ValChange::default(),
        })),
    };
    let (version, after) = match app.store.vals.add_version(version).await? {
        None => return Err(not_found(&val.id)),
        Some(Err(Refusal::Holds(scope))) => return Err(out_of_reach(scope)),
        Some(Err(Refusal::Full(stored))) => {
            return Err(storage_full(meter.refusal(&room, &stored)));
        }
        Some(Ok(added)) => added,
    };
    app.forget_vals();
    // Shown against what the val holds now, granted or not.
    let granted = query.grant_declared;
    let declared =
        (!declared.is_empty()).then(|| DeclaredView::new(&declared, after.scopes, granted));
    let (url, host_url) = urls(app, &val, &version);
    Ok(DeployResponse {
        version: VersionView::from(&version),
        val_id: val.id,
        url,
        host_url,
        resolved_libraries: libraries.views,
        declared,
    })
}

/// Check and compile `bytes` for `val`, linked with the libraries
/// `plans`, within the owner's share of the compilers.
async fn compile(
    app: &App,
    val: &ValRow,
    bytes: &[u8],
    plans: Vec<Arc<LibraryPlan<Scopes>>>,
) -> ServiceResult<Prepared> {
    let _turn = app.compiles.turn(&val.owner_id).await.ok_or_else(|| {
        ServiceError::new(
            Kind::TooMany,
            "too_many_deploys",
            format!(
                "{} deploys of yours are already compiling or waiting to; wait for them to finish",
                crate::services::compile_gate::PER_OWNER
            ),
        )
    })?;
    // Only the owner's own earlier deploys of these bytes are reused.
    let sha256 = hex::encode(Sha256::digest(bytes));
    let own_build = app
        .store
        .vals
        .owner_has_build(&val.owner_id, &sha256)
        .await?;
    app.runtime
        .prepare(bytes.to_vec(), plans, own_build)
        .await
        .map_err(|e| match e {
            UploadError::Internal(m) => ServiceError::internal(m),
            e => ServiceError::bad_request(e.code(), e.to_string()),
        })
}

/// A deploy past the owner's storage quota.
fn storage_full(message: String) -> ServiceError {
    ServiceError::new(Kind::OutOfSpace, "storage_quota_exceeded", message)
}

/// Refuse to grant what the deploying token does not hold itself, or, to
/// a val's token, scopes that change vals.
fn may_grant(who: &Principal, declared: &Declared) -> ServiceResult<()> {
    require_grantable(who, &declared.wanted())?;
    if who.call_of_val.is_some()
        && let Some(scope) = changer_scope(&declared.wanted())
    {
        return Err(ServiceError::forbidden(format!(
            "a val's call token cannot grant `{scope}`; use a personal API token"
        )));
    }
    Ok(())
}

/// Add the declared scopes to the val's, its declared hosts to its fetch
/// allowlist, and take its declared reuse.
fn grant_declared(val: &ValRow, declared: &Declared) -> ValChange {
    let scopes = val.scopes.iter().chain(declared.wanted().iter()).collect();
    let hosts = !declared.fetch_hosts.is_empty();
    ValChange {
        scopes: Some(scopes),
        fetch_allowlist: hosts.then(|| Some(declared.allowlist(val.fetch_allowlist.as_deref()))),
        reuse: declared.reuse,
        ..ValChange::default()
    }
}

/// Where a version serves (an HTTP val, by path and by host), runs (a
/// script val), or is described (a library).
fn urls(app: &App, val: &ValRow, version: &VersionRow) -> (String, Option<String>) {
    let base = &app.config.public_url;
    match version.kind {
        ValKind::Http => {
            let (endpoint, host_endpoint) = val_urls(app, val);
            (endpoint, Some(host_endpoint))
        }
        ValKind::Library => (
            format!("{base}/v2/vals/{}/versions/{}/wit", val.id, version.version),
            None,
        ),
        _ => (
            format!("{base}/v1/run/{}.{}", val.owner_name, val.name),
            None,
        ),
    }
}
