//! Least privilege as operations: narrowing a token to the scopes it used,
//! and deciding the scopes vals asked for. The REST API and the web UI
//! both call these.

use serde::Serialize;
use valbox_model::{Principal, Scope, Scopes, Subject};
use valbox_store as db;
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
    let (owner, key) = (who.user_id.clone(), id.to_string());
    let row = app
        .db
        .call(move |conn| db::live_token(conn, &owner, &key))
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("you have no live API token `{id}`")))?;
    Ok(row.scopes)
}

/// The outcome of narrowing: the scopes before and after.
#[derive(Serialize)]
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
    let (owner, text) = (who.user_id.clone(), after.to_string());
    app.db
        .call(move |conn| db::set_token_scopes(conn, &owner, &id, &text))
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
    let status = match decision {
        "grant" => "granted",
        "dismiss" => "dismissed",
        _ => {
            return Err(ServiceError::not_found(
                "a scope request is decided with POST .../grant or .../dismiss",
            ));
        }
    };
    // Only a person decides what a val may do.
    crate::services::tokens::require_personal_token(who)?;
    who.require(Scope::ValWrite)?;
    let key = id.to_string();
    let request = app
        .db
        .call(move |conn| db::request_by_id(conn, &key))
        .await?
        .filter(|r| r.owner_id == who.user_id)
        .ok_or_else(|| ServiceError::not_found(format!("you have no scope request `{id}`")))?;
    let scope = Scope::parse(&request.scope)
        .ok_or_else(|| ServiceError::internal(format!("stored scope {}", request.scope)))?;
    if status == "granted" {
        let wanted: Scopes = [scope].into_iter().collect();
        require_grantable(who, &wanted)?;
    }
    let (val_id, key) = (request.val_id.clone(), request.id.clone());
    let row = app
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            if status == "granted" {
                let Some(val) = db::val_by_id(&tx, &val_id)? else {
                    return Ok(None);
                };
                let held = val.scopes;
                db::set_val_scopes(&tx, &val_id, &held.with(scope).to_string())?;
            }
            db::decide_request(&tx, &key, status)?;
            let row = db::request_by_id(&tx, &key)?;
            tx.commit()?;
            Ok(row)
        })
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("you have no scope request `{id}`")))?;
    app.forget_vals();
    Ok(row)
}
