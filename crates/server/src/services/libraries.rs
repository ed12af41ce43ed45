//! Library vals: naming them at deploy (`USER/VAL[@N]`, and the scopes the
//! caller grants each), the pinning rules, and resolving a version's
//! libraries, with theirs, into the plan the runtime links.
//!
//! Pinning: another owner's library is always pinned to a version, given
//! or the current one, so its author cannot change the code a caller runs.
//! One's own library may follow its latest version (`@latest`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::app::App;
use crate::services::error::{Kind, ServiceError, ServiceResult};
use crate::services::val_access::can_see;
use valbox_model::{Principal, Scopes};
use valbox_runtime::{LibraryPlan, LinkPlan};
use valbox_store::{LibraryRef, StoreResult, ValRow, Vals, VersionRow};

/// How deep libraries may import libraries.
pub const MAX_LIBRARY_DEPTH: usize = 4;

/// How many libraries a version may link, its libraries' own included:
/// each is loaded and linked for the version, so the tree must stay small
/// however wide each level is.
pub const MAX_LIBRARIES: usize = 32;

/// What the runtime links for a call: libraries see the scopes granted.
pub type Plan = LinkPlan<Scopes>;

/// A library as named at deploy: `user/val`, `user/val@3`, `user/val@latest`.
struct Named<'a> {
    user: &'a str,
    val: &'a str,
    pin: Pin,
}

enum Pin {
    /// No version given: the current one, pinned.
    Current,
    Version(i64),
    /// Follow the latest version (own libraries only).
    Latest,
}

fn parse_name(text: &str) -> Result<Named<'_>, ServiceError> {
    let bad = || {
        ServiceError::bad_request(
            "invalid_library",
            format!(
                "`{text}` does not name a library; write `user/val`, `user/val@N` or `user/val@latest`"
            ),
        )
    };
    let (name, pin) = match text.split_once('@') {
        None => (text, Pin::Current),
        Some((name, "latest")) => (name, Pin::Latest),
        Some((name, n)) => (name, Pin::Version(n.parse().map_err(|_| bad())?)),
    };
    let (user, val) = name.split_once('/').ok_or_else(bad)?;
    if user.is_empty() || val.is_empty() || val.contains('/') {
        return Err(bad());
    }
    Ok(Named { user, val, pin })
}

/// One library of a deploy, as the response shows it.
#[derive(Serialize, Clone, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LibraryView {
    /// `user/val`.
    pub name: String,
    /// The version it runs now.
    pub version: i64,
    /// False for an own library that follows its latest version.
    pub pinned: bool,
    pub grants: Vec<String>,
}

/// The libraries a deploy names, checked and resolved.
pub struct Resolved {
    pub refs: Vec<LibraryRef>,
    pub plans: Vec<Arc<LibraryPlan<Scopes>>>,
    pub views: Vec<LibraryView>,
}

/// Check and resolve the libraries `deps` (as named at deploy) and the
/// scopes `grants` gives them (`user/val=scope,scope`) for a new version
/// of `caller`, deployed by `who`.
pub async fn resolve_deploy(
    app: &App,
    who: &Principal,
    caller: &ValRow,
    deps: Vec<String>,
    grants: Vec<String>,
) -> ServiceResult<Resolved> {
    let mut granted = parse_grants(&grants, caller.scopes)?;
    let mut found: Vec<Found> = Vec::new();
    for dep in &deps {
        let (key, val, version) = find_library(app, who, caller, dep).await?;
        if found.iter().any(|(k, ..)| *k == key) {
            return Err(ServiceError::bad_request(
                "invalid_library",
                format!("library `{key}` is named twice"),
            ));
        }
        let scopes = granted.remove(&key).unwrap_or_default();
        found.push((key, val, version, scopes));
    }
    if let Some(name) = granted.keys().next() {
        return Err(ServiceError::bad_request(
            "invalid_grant",
            format!("`{name}` is granted scopes but is not one of the libraries named with --dep"),
        ));
    }
    let refs: Vec<LibraryRef> = found
        .iter()
        .map(|(_, val, version, scopes)| LibraryRef {
            library_id: val.id.clone(),
            version: *version,
            grants: *scopes,
        })
        .collect();
    let mut walk = Walk::from(caller.id.clone());
    let plans = resolve(&*app.store.vals, &refs, &mut walk)
        .await?
        .map_err(|e| ServiceError::bad_request(e.code, e.message))?;
    let views = found
        .iter()
        .zip(&plans)
        .map(|((key, _, version, scopes), plan)| LibraryView {
            name: key.clone(),
            version: plan_version(plan),
            pinned: version.is_some(),
            grants: scopes.iter().map(|s| s.to_string()).collect(),
        })
        .collect();
    Ok(Resolved { refs, plans, views })
}

/// A library named at deploy: its name, its val, the version it is
/// pinned to (`None`: the owner's own, following its latest), its grants.
type Found = (String, Arc<ValRow>, Option<i64>, Scopes);

/// The scopes each library is granted, by `user/val`, from `grants`
/// (`user/val=scope,scope`): never a scope the calling val lacks.
fn parse_grants(
    grants: &[String],
    caller_scopes: Scopes,
) -> ServiceResult<HashMap<String, Scopes>> {
    let mut granted: HashMap<String, Scopes> = HashMap::new();
    for grant in grants {
        let (name, scopes) = grant.split_once('=').ok_or_else(|| {
            ServiceError::bad_request(
                "invalid_grant",
                format!("`{grant}` is not a grant; write `user/val=scope,scope`"),
            )
        })?;
        let scopes = Scopes::parse(&scopes.replace(',', " "))
            .map_err(|e| ServiceError::bad_request("invalid_grant", format!("`{grant}`: {e}")))?;
        if let Some(scope) = scopes.first_missing_from(&caller_scopes) {
            return Err(ServiceError::bad_request(
                "invalid_grant",
                format!(
                    "`{grant}` grants `{scope}`, which this val's calls do not hold; \
                     a library can be granted only scopes of the val that uses it"
                ),
            ));
        }
        let name = name.split('@').next().unwrap_or(name).to_string();
        if granted.insert(name.clone(), scopes).is_some() {
            return Err(ServiceError::bad_request(
                "invalid_grant",
                format!("`{name}` is granted twice; give its scopes in one `--grant`"),
            ));
        }
    }
    Ok(granted)
}

/// The library `dep` names (`user/val[@N|@latest]`), if `who` can see it,
/// and the version it is pinned to.
async fn find_library(
    app: &App,
    who: &Principal,
    caller: &ValRow,
    dep: &str,
) -> ServiceResult<(String, Arc<ValRow>, Option<i64>)> {
    let named = parse_name(dep)?;
    let key = format!("{}/{}", named.user, named.val);
    let val = app
        .val_by_name(named.user, named.val)
        .await?
        .filter(|v| can_see(v, Some(who)))
        .ok_or_else(|| {
            ServiceError::bad_request(
                "unknown_library",
                format!("no val `{key}` that you can see"),
            )
        })?;
    let own = val.owner_id == caller.owner_id;
    let version = match named.pin {
        Pin::Latest if !own => {
            return Err(ServiceError::bad_request(
                "unpinned_library",
                format!(
                    "`{key}` is another user's val, so it is always pinned: \
                     name a version (`{key}@N`) or none for the current one"
                ),
            ));
        }
        Pin::Latest => None,
        Pin::Version(n) => Some(n),
        Pin::Current => Some(
            val.latest
                .as_ref()
                .map(|v| v.version)
                .ok_or_else(|| no_version(&key))?,
        ),
    };
    Ok((key, val, version))
}

fn no_version(key: &str) -> ServiceError {
    ServiceError::bad_request(
        "unknown_library",
        format!("`{key}` has no deployed version yet"),
    )
}

/// The version a plan's label names (`user/val@N`).
fn plan_version(plan: &LibraryPlan<Scopes>) -> i64 {
    plan.label
        .rsplit_once('@')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_default()
}

/// Why a version's libraries cannot be resolved.
pub struct Unresolvable {
    code: &'static str,
    pub message: String,
}

/// Where a resolution is: the vals above the libraries being resolved
/// (none may be one of them: that would be a cycle), and how many more
/// libraries the whole tree may hold.
struct Walk {
    path: Vec<String>,
    left: usize,
}

impl Walk {
    /// The walk below the val `val_id`.
    fn from(val_id: String) -> Self {
        Self {
            path: vec![val_id],
            left: MAX_LIBRARIES,
        }
    }
}

/// Resolve `refs`, and their libraries in turn, into plans.
async fn resolve(
    vals: &dyn Vals,
    refs: &[LibraryRef],
    walk: &mut Walk,
) -> StoreResult<Result<Vec<Arc<LibraryPlan<Scopes>>>, Unresolvable>> {
    let mut plans = Vec::with_capacity(refs.len());
    for r in refs {
        let Some(left) = walk.left.checked_sub(1) else {
            return Ok(Err(Unresolvable {
                code: "too_many_libraries",
                message: format!(
                    "a val may link at most {MAX_LIBRARIES} libraries, its libraries' own included"
                ),
            }));
        };
        walk.left = left;
        let Some(val) = vals.by_id(&r.library_id).await? else {
            return Ok(Err(Unresolvable {
                code: "library_gone",
                message: "a library this val imports was deleted; redeploy it with another".into(),
            }));
        };
        let key = format!("{}/{}", val.owner_name, val.name);
        if walk.path.contains(&val.id) {
            return Ok(Err(Unresolvable {
                code: "library_cycle",
                message: format!(
                    "library `{key}` imports, through its libraries, the val that imports it"
                ),
            }));
        }
        if walk.path.len() > MAX_LIBRARY_DEPTH {
            return Ok(Err(Unresolvable {
                code: "library_depth",
                message: format!(
                    "libraries may import libraries at most {MAX_LIBRARY_DEPTH} deep; `{key}` is deeper"
                ),
            }));
        }
        let version: Option<VersionRow> = match r.version {
            Some(n) => vals.version(&val.id, n).await?,
            None => val.latest.clone(),
        };
        let Some(version) = version else {
            return Ok(Err(Unresolvable {
                code: "unknown_library",
                message: match r.version {
                    Some(n) => format!("library `{key}` has no version {n}"),
                    None => format!("library `{key}` has no deployed version"),
                },
            }));
        };
        walk.path.push(val.id.clone());
        let nested = match Box::pin(resolve(vals, &version.libraries, walk)).await? {
            Ok(nested) => nested,
            Err(e) => return Ok(Err(e)),
        };
        walk.path.pop();
        let granted = r.grants;
        plans.push(Arc::new(LibraryPlan {
            label: format!("{key}@{}", version.version),
            view: granted,
            plan: LinkPlan::new(version.sha256, nested),
        }));
    }
    Ok(Ok(plans))
}

/// What to link for a call of `version` of `val`: its component alone, or
/// with its libraries resolved (cached until any val changes).
pub async fn plan_for(app: &App, val: &ValRow, version: &VersionRow) -> ServiceResult<Arc<Plan>> {
    if version.libraries.is_empty() {
        return Ok(Arc::new(LinkPlan::new(version.sha256.clone(), Vec::new())));
    }
    let key = (val.id.clone(), version.version);
    let generation = match app.plans.get(&key) {
        Ok(plan) => return Ok(plan),
        Err(generation) => generation,
    };
    let mut walk = Walk::from(val.id.clone());
    let libraries = resolve(&*app.store.vals, &version.libraries, &mut walk)
        .await?
        .map_err(|e| {
            ServiceError::new(
                Kind::ValFailed,
                "library_unavailable",
                format!("the val's libraries cannot be linked: {}", e.message),
            )
        })?;
    let plan = Arc::new(LinkPlan::new(version.sha256.clone(), libraries));
    app.plans.remember(key, plan.clone(), generation);
    Ok(plan)
}

/// Resolved plans by val and version, dropped whenever any val changes
/// (a floating library's new version changes its callers' plans).
#[derive(Default)]
pub struct PlanCache {
    inner: Mutex<Plans>,
}

#[derive(Default)]
struct Plans {
    /// Counts the times the cache was emptied: a plan resolved before one
    /// is not kept.
    generation: u64,
    by_version: HashMap<(String, i64), Arc<Plan>>,
}

impl PlanCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Plans> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached plan, or the generation to remember a new one under.
    fn get(&self, key: &(String, i64)) -> Result<Arc<Plan>, u64> {
        let plans = self.lock();
        plans.by_version.get(key).cloned().ok_or(plans.generation)
    }

    fn remember(&self, key: (String, i64), plan: Arc<Plan>, generation: u64) {
        let mut plans = self.lock();
        if plans.generation == generation {
            plans.by_version.insert(key, plan);
        }
    }

    pub fn forget(&self) {
        let mut plans = self.lock();
        plans.generation += 1;
        plans.by_version.clear();
    }
}
