//! Who may see, run and change a val: the rules every route that touches
//! vals shares, including the rule that running code cannot rewrite itself
//! through a chain of vals.

use crate::app::App;
use crate::services::error::{Kind, ServiceError, ServiceResult};
use valbox_model::{Principal, Privacy, Scope, Scopes};
use valbox_store::{Edit, Refusal, Store, ValChange, ValRow};

/// Whether `caller` may see (and run) `val`. Private vals exist only for
/// their owner holding `val:read`; to everyone else they are a 404.
pub fn can_see(val: &ValRow, caller: Option<&Principal>) -> bool {
    val.privacy != Privacy::Private || owner_reads(val, caller)
}

/// Whether `caller` is `val`'s owner holding `val:read`: who may see a
/// private val, and a val's settings.
pub fn owner_reads(val: &ValRow, caller: Option<&Principal>) -> bool {
    caller.is_some_and(|p| p.user_id == val.owner_id && p.scopes.has(Scope::ValRead))
}

pub fn not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("no val `{id}` that you can see"))
}

/// The val `id` if `who` owns it and holds `scope`; otherwise 403 for a
/// missing scope or 404, so others' vals do not leak.
pub async fn find_owned(
    store: &Store,
    who: &Principal,
    id: &str,
    scope: Scope,
) -> ServiceResult<ValRow> {
    who.require(scope)?;
    match store.vals.by_id(id).await? {
        Some(val) if val.owner_id == who.user_id => Ok(val),
        _ => Err(not_found(id)),
    }
}

/// Scopes with which running code changes vals: their code, settings and
/// deletion (`val:write`) or their env vars (`env:write`).
pub const SCOPES_THAT_CHANGE_VALS: [Scope; 2] = [Scope::ValWrite, Scope::EnvWrite];

/// Like [`find_owned`], for a change that needs `scope`. A val's call token
/// may change only vals that cannot change vals themselves: never its own
/// val, never one holding a scope of [`SCOPES_THAT_CHANGE_VALS`]. So no
/// chain of vals can rewrite itself (A changes B, B changes A back).
pub async fn find_changeable(
    store: &Store,
    who: &Principal,
    id: &str,
    scope: Scope,
) -> ServiceResult<ValRow> {
    let val = find_owned(store, who, id, scope).await?;
    let Some(caller_val) = who.call_of_val.as_deref() else {
        return Ok(val);
    };
    if caller_val == val.id {
        return Err(ServiceError::forbidden(
            "a val's call token cannot change its own val; use a personal API token",
        ));
    }
    let held = val.scopes;
    match changer_scope(&held) {
        Some(scope) => Err(out_of_reach(scope)),
        None => Ok(val),
    }
}

/// The scope of [`SCOPES_THAT_CHANGE_VALS`] that `held` has, if any.
pub fn changer_scope(held: &Scopes) -> Option<Scope> {
    SCOPES_THAT_CHANGE_VALS.into_iter().find(|s| held.has(*s))
}

/// [`find_changeable`]'s rule again, as the write it guards is made: the
/// val's scopes may have changed since the request was checked (a deploy
/// compiles for seconds in between). `change` decides the write from the
/// val as it is then.
pub fn guarded(
    who: &Principal,
    change: impl FnOnce(&ValRow) -> ValChange + Send + Sync + 'static,
) -> Edit {
    let by_val = who.call_of_val.is_some();
    Box::new(move |val| match changer_scope(&val.scopes) {
        Some(scope) if by_val => Err(Refusal::Holds(scope)),
        _ => Ok(change(val)),
    })
}

/// What to answer a write that [`guarded`] refused.
pub fn refused(refusal: Refusal) -> ServiceError {
    match refusal {
        Refusal::Holds(scope) => out_of_reach(scope),
        Refusal::Full(_) => ServiceError::new(
            Kind::OutOfSpace,
            "storage_quota_exceeded",
            "your storage is past its quota; delete what you no longer need (GET /v1/me)",
        ),
    }
}

pub fn out_of_reach(scope: Scope) -> ServiceError {
    ServiceError::forbidden(format!(
        "a val's call token cannot change a val that holds `{scope}`, so that no chain of \
         vals can change itself; use a personal API token"
    ))
}

pub async fn find_writable(app: &App, who: &Principal, id: &str) -> ServiceResult<ValRow> {
    find_changeable(&app.store, who, id, Scope::ValWrite).await
}
