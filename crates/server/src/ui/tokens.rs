//! The API tokens page: every token with its scopes, creation, expiry,
//! last use and the scopes it never used (with a "narrow" button); create
//! one (shown once, with a copy button); revoke one.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::layout::{self, csrf, when};
use super::{FormFields, SignedIn, UiError, UiResult};
use crate::app::App;
use crate::services::least_privilege::narrow_token_to_used;
use crate::services::scope_usage::{flush, read_report};
use valbox_model::{Scope, Scopes, Subject};
use valbox_store::TokenRow;

/// The scope grid: a read and a write scope per resource (val, user,
/// blob, sqlite, email, env), then `fetch`.
const RESOURCES: [(Scope, Scope); 6] = [
    (Scope::ValRead, Scope::ValWrite),
    (Scope::UserRead, Scope::UserWrite),
    (Scope::BlobRead, Scope::BlobWrite),
    (Scope::SqliteRead, Scope::SqliteWrite),
    (Scope::EmailRead, Scope::EmailWrite),
    (Scope::EnvRead, Scope::EnvWrite),
];

/// Expiry choices, in days; `0` is never.
const EXPIRIES: [(i64, &str); 5] = [
    (7, "7 days"),
    (30, "30 days"),
    (90, "90 days"),
    (365, "1 year"),
    (0, "Never (not recommended)"),
];
const DEFAULT_EXPIRY_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

pub async fn page(State(app): State<App>, signed: SignedIn) -> UiResult<Response> {
    Ok(render(&app, &signed, None).await?.into_response())
}

/// The page, with a just-created token's secret shown once.
async fn render(app: &App, signed: &SignedIn, created: Option<(&str, &str)>) -> UiResult<Markup> {
    let tokens = app.store.tokens.list(&signed.who.user_id).await?;
    // Counts not yet written are written once, for every token's report.
    flush(app).await?;
    let mut rows = Vec::new();
    for token in tokens.into_iter().filter(|t| t.revoked_at.is_none()) {
        let held = token.scopes;
        let usage = read_report(app, Subject::Token(token.id.clone()), held, 30).await?;
        rows.push((token, usage.unused));
    }
    let body = html! {
        h1 { "API tokens" }
        p.muted { "Tokens let scripts and Val Town's client use this server's API. Each holds \
                   only the scopes you give it." }
        @if let Some((name, secret)) = created {
            section aria-labelledby="new-token" {
                h2 id="new-token" { "Token “" (name) "” created" }
                p.warning { "Copy it now: it is shown only once." }
                div.secret {
                    code id="token-secret" { (secret) }
                    button.secondary type="button" id="copy-token"
                        onclick="navigator.clipboard.writeText(document.getElementById('token-secret').textContent);this.textContent='Copied'" { "Copy" }
                }
            }
        }
        table {
            thead { tr { th { "Name" } th { "Scopes" } th { "Created" } th { "Expires" } th { "Last used" } th { span.muted { "Actions" } } } }
            tbody {
                @for (token, unused) in &rows { (token_row(signed, token, unused)) }
            }
        }
        (create_form(signed))
    };
    Ok(layout::page("API tokens", Some(signed), body))
}

fn token_row(signed: &SignedIn, token: &TokenRow, unused: &[String]) -> Markup {
    html! {
        tr data-token=(token.id) {
            td { (token.name) br; span.muted.mono { (token.id) } }
            td {
                @for scope in token.scopes.names() {
                    @let idle = unused.contains(&scope);
                    span.tag.unused[idle] title=[idle.then_some("not used in the last 30 days")] { (scope) }
                }
            }
            td { (when(token.created_at)) }
            td { @match token.expires_at { Some(t) => (when(t)), None => span.warning { "never" } } }
            td { @match token.last_used_at { Some(t) => (when(t)), None => span.muted { "never" } } }
            td {
                @if !unused.is_empty() {
                    form.inline method="post" action={ "/tokens/" (token.id) "/narrow" } {
                        (csrf(signed))
                        button.secondary type="submit" title="Remove the scopes it did not use in the last 30 days" { "Narrow" }
                    }
                }
                details {
                    summary { "Edit scopes" }
                    form method="post" action={ "/tokens/" (token.id) "/scopes" } {
                        (csrf(signed))
                        (scope_grid(&format!("edit-{}", token.id), &token.scopes))
                        button type="submit" { "Save scopes" }
                    }
                }
                form.inline method="post" action={ "/tokens/" (token.id) "/revoke" }
                    onsubmit="return confirm('Revoke this token? Anything using it stops working at once.')" {
                    (csrf(signed))
                    button.danger type="submit" { "Revoke" }
                }
            }
        }
    }
}

fn create_form(signed: &SignedIn) -> Markup {
    html! {
        h2 { "Create a token" }
        form method="post" action="/tokens" id="create-token" {
            (csrf(signed))
            p {
                label for="token-name" { "Name" }
                input id="token-name" name="name" required maxlength="100" placeholder="deploy script";
            }
            fieldset {
                legend { "Scopes" }
                (scope_grid("scope", &Scopes::none()))
            }
            p {
                label for="token-expiry" { "Expires" }
                select id="token-expiry" name="expires" {
                    @for (days, text) in EXPIRIES {
                        option value=(days) selected[days == DEFAULT_EXPIRY_DAYS] { (text) }
                    }
                }
                span.muted { " A token that never expires is a risk if it leaks." }
            }
            button type="submit" { "Create token" }
        }
    }
}

/// A checkbox per scope (ids `{prefix}-{scope}`), `held` ones checked.
fn scope_grid(prefix: &str, held: &Scopes) -> Markup {
    let scopes = RESOURCES
        .into_iter()
        .flat_map(|(read, write)| [read, write])
        .chain([Scope::Fetch]);
    html! {
        div.grid {
            @for scope in scopes {
                label.switch {
                    input type="checkbox" name="scope" value=(scope.as_str())
                        id={ (prefix) "-" (scope.as_str().replace(':', "-")) } checked[held.has(scope)];
                    (scope.as_str())
                }
            }
        }
    }
}

/// Set a token's scopes to those checked (never more than the session's
/// user holds, which is all).
pub async fn set_scopes(
    State(app): State<App>,
    signed: SignedIn,
    Path(id): Path<String>,
    form: FormFields,
) -> UiResult<Redirect> {
    form.check_csrf(&signed)?;
    let scopes = form.scopes()?;
    let owner = &signed.who.user_id;
    let found = app.store.tokens.set_scopes(owner, &id, &scopes).await?;
    if !found {
        return Err(UiError::not_found("no such live token of yours"));
    }
    Ok(Redirect::to("/tokens"))
}

pub async fn create(
    State(app): State<App>,
    signed: SignedIn,
    form: FormFields,
) -> UiResult<Response> {
    form.check_csrf(&signed)?;
    let scopes = form.scopes()?;
    let days: i64 = form
        .get("expires")
        .unwrap_or_default()
        .parse()
        .map_err(|_| UiError::bad_request("choose when the token expires"))?;
    let expires_at = match days {
        0 => None,
        d if EXPIRIES.iter().any(|(e, _)| *e == d) => Some(valbox_model::now_ms() + d * DAY_MS),
        _ => return Err(UiError::bad_request("choose when the token expires")),
    };
    let name = form.get("name").unwrap_or_default();
    let (row, secret) =
        crate::services::tokens::issue(&app, &signed.who, name, scopes, expires_at).await?;
    let page = render(&app, &signed, Some((&row.name, &secret))).await?;
    Ok(page.into_response())
}

pub async fn revoke(
    State(app): State<App>,
    signed: SignedIn,
    Path(id): Path<String>,
    form: FormFields,
) -> UiResult<Redirect> {
    form.check_csrf(&signed)?;
    let found = app.store.tokens.revoke(&signed.who.user_id, &id).await?;
    if !found {
        return Err(UiError::not_found("no such live token of yours"));
    }
    Ok(Redirect::to("/tokens"))
}

pub async fn narrow(
    State(app): State<App>,
    signed: SignedIn,
    Path(id): Path<String>,
    form: FormFields,
) -> UiResult<Redirect> {
    form.check_csrf(&signed)?;
    narrow_token_to_used(&app, &signed.who, id, 30).await?;
    Ok(Redirect::to("/tokens"))
}
