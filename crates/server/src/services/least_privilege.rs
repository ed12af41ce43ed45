//! Least privilege as operations: narrowing a token to the scopes it used,
//! and deciding the scopes vals asked for. The REST API and the web UI
//! both call these.

use serde::Serialize;
use valbox_model::{Principal, Scope, Scopes, Subject};
use valbox_store::ScopeRequestRow;

use crate::app::App;
use crate::services::error::{ServiceError, ServiceResult};
use crate::services::scope_usage::{UsageReport, report};
use crate::services::tokens::require_grantable;

/// The caller's own live personal token `id`, and its scopes.
pub async fn own_token(
    app: &App,
    who: &Principal,
    id: &str,
    scope: Scope,
) -> ServiceResult<Scopes> {
    crate::services::tokens::require_personal_token(who)?;
    who.require(scope)?;
    let row = app
        .store
        .tokens
        .live(&who.user_id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("you have no live API token `{id}`")))?;
    Ok(row.scopes)
}

/// The outcome of narrowing: the scopes before and after.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Narrowed {
    before: Vec<String>,
    after: Vec<String>,
    removed: Vec<String>,
    days: i64,
}

impl Narrowed {
    pub fn new(before: Scopes, after: Scopes, days: i64) -> Self {
        let names = |s: Scopes| s.iter().map(|s| s.to_string()).collect();
        let removed = before.iter().filter(|s| !after.has(*s)).collect::<Scopes>();
        Self {
            before: names(before),
            after: names(after),
            removed: names(removed),
            days,
        }
    }
}

/// The scopes of `report` it used within its window, as a set.
pub fn used_scopes(report: &UsageReport) -> Scopes {
    report
        .suggested
        .iter()
        .filter_map(|s| Scope::parse(s))
        .collect()
}

/// Narrow `who`'s token `id` to the scopes it used in the last `days`.
pub async fn narrow_token_to_used(
    app: &App,
    who: &Principal,
    id: String,
    days: i64,
) -> ServiceResult<Narrowed> {
    let held = own_token(app, who, &id, Scope::UserWrite).await?;
    let report = report(app, Subject::Token(id.clone()), held, days).await?;
    let after = used_scopes(&report);
    app.store
        .tokens
        .set_scopes(&who.user_id, &id, &after)
        .await?;
    Ok(Narrowed::new(held, after, days))
}

/// Decide `who`'s scope request `id`: `grant` or `dismiss`.
pub async fn decide_for(
    app: &App,
    who: &Principal,
    id: &str,
    decision: &str,
) -> ServiceResult<ScopeRequestRow> {
    let grant = match decision {
        "grant" => true,
        "dismiss" => false,
        _ => {
            return Err(ServiceError::not_found(
                "a scope request is decided with POST .../grant or .../dismiss",
            ));
        }
    };
    // Only a person decides what a val may do.
    crate::services::tokens::require_personal_token(who)?;
    who.require(Scope::ValWrite)?;
    let request = app
        .store
        .scopes
        .request(id)
        .await?
        .filter(|r| r.owner_id == who.user_id)
        .ok_or_else(|| ServiceError::not_found(format!("you have no scope request `{id}`")))?;
    let scope = Scope::parse(&request.scope)
        .ok_or_else(|| ServiceError::internal(format!("stored scope {}", request.scope)))?;
    if grant {
        let wanted: Scopes = [scope].into_iter().collect();
        require_grantable(who, &wanted)?;
    }
    let row = app
        .store
        .scopes
        .decide(&request.id, grant)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("you have no scope request `{id}`")))?;
    app.forget_vals();
    Ok(row)
}
