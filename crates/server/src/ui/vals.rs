//! The vals pages: the list, and a val's page with its URLs, versions,
//! privacy, permissions panel (a switch per scope of its call token), fetch
//! allowlist, libraries, env var names, recent calls and scope requests.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::layout::{self, csrf, when};
use super::{FormFields, SignedIn, UiError, UiResult};
use crate::app::App;
use crate::services::call_log::{CallSummary, recent_calls};
use crate::services::deploy::{DeployQuery, deploy_bytes, may_deploy};
use crate::services::val_views::val_urls;
use valbox_model::{Privacy, ValKind};
use valbox_model::{Scope, Scopes};
use valbox_store as db;
use valbox_store::{ScopeRequestRow, ValRow};

pub async fn list(State(app): State<App>, signed: SignedIn) -> UiResult<Response> {
    let owner = signed.who.user_id.clone();
    let vals = app
        .db
        .call(move |conn| {
            let vals = db::list_vals(conn, Some(&owner), Some(&owner), 500, 0)?;
            let mut listed = Vec::with_capacity(vals.len());
            for val in vals {
                let last = recent_calls(conn, &val.id, 1)?.pop();
                listed.push((val, last));
            }
            Ok(listed)
        })
        .await?;
    let body = html! {
        h1 { "Your vals" }
        @if vals.is_empty() {
            p { "No vals yet. Deploy one with " code { "valbox deploy NAME FILE.wasm" } "." }
        } @else {
            table {
                thead { tr { th { "Name" } th { "Privacy" } th { "Kind" } th { "Versions" } th { "Last call" } } }
                tbody {
                    @for (val, last) in &vals {
                        tr {
                            td { a href={ "/vals/" (val.name) } { (val.name) } }
                            td { (val.privacy) }
                            td { @if let Some(v) = &val.latest { (v.kind) } @else { span.muted { "not deployed" } } }
                            td { @if let Some(v) = &val.latest { (v.version + 1) } @else { "0" } }
                            td {
                                @match last {
                                    Some(c) => {
                                        (when(c.time_ms)) " · " (c.status)
                                        @if let Some(e) = &c.error { br; span.error { (e) } }
                                    },
                                    None => span.muted { "never called" },
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Vals", Some(&signed), body).into_response())
}

/// The signed-in user's val `name`.
async fn own_val(app: &App, signed: &SignedIn, name: &str) -> UiResult<ValRow> {
    let (owner, key) = (signed.who.username.clone(), name.to_string());
    app.db
        .call(move |conn| db::val_by_name(conn, &owner, &key))
        .await?
        .ok_or_else(|| UiError::not_found(format!("you have no val named `{name}`")))
}

pub async fn page(
    State(app): State<App>,
    signed: SignedIn,
    Path(name): Path<String>,
) -> UiResult<Response> {
    let val = own_val(&app, &signed, &name).await?;
    // Refusals not yet written would be missing from its scope requests.
    crate::services::scope_usage::flush(&app).await?;
    let (id, owner) = (val.id.clone(), signed.who.user_id.clone());
    let (versions, requests, calls, libraries) = app
        .db
        .call(move |conn| {
            let versions = db::list_versions(conn, &id)?;
            let requests: Vec<ScopeRequestRow> = db::list_requests(conn, &owner)?
                .into_iter()
                .filter(|r| r.val_id == id)
                .collect();
            let calls = recent_calls(conn, &id, 10)?;
            let mut libraries = Vec::new();
            for l in versions
                .last()
                .map(|v| v.libraries.clone())
                .unwrap_or_default()
            {
                let name = db::val_by_id(conn, &l.library_id)?
                    .map(|v| format!("{}/{}", v.owner_name, v.name))
                    .unwrap_or_else(|| "(deleted)".into());
                libraries.push((name, l.version, l.grants));
            }
            Ok((versions, requests, calls, libraries))
        })
        .await?;
    let env = crate::services::env_vars::list(&app, &signed.who, &val.id).await?;
    let held = val.scopes;
    let (path_url, host_url) = val_urls(&app, &val);
    let body = html! {
        h1 { (val.owner_name) "/" (val.name) }
        p.muted { (val.description) }
        @if let Some(latest) = &val.latest {
            p { "A " strong { (latest.kind) } " val, version " (latest.version) "." }
            @if latest.kind == ValKind::Http {
                p { "Serves at " a href=(path_url) { (path_url) } " and " code { (host_url) } "." }
            }
        } @else {
            p { "Not deployed yet: " code { "valbox deploy " (val.name) " FILE.wasm" } }
        }

        h2 { "Privacy" }
        form method="post" action={ "/vals/" (val.name) "/privacy" } {
            (csrf(&signed))
            label for="privacy" { "Who may call it" }
            select id="privacy" name="privacy" {
                @for level in Privacy::ALL.map(Privacy::as_str) {
                    option value=(level) selected[level == val.privacy.as_str()] { (level) }
                }
            }
            button type="submit" { "Save" }
        }

        h2 id="permissions" { "Permissions" }
        p.muted { "The scopes of the token each call of this val gets. A call refused a scope \
                   it lacks gets a " code { "denied" } " error, and asks you for it below." }
        (permissions(&signed, &val, held))

        h2 { "Scope requests" }
        @if requests.is_empty() {
            p.muted { "None: this val has not been refused a scope." }
        } @else {
            table {
                thead { tr { th { "Scope" } th { "Status" } th { "Refused" } th { "Last" } th { span.muted { "Actions" } } } }
                tbody { @for r in &requests { (request_row(&signed, r)) } }
            }
        }

        h2 { "Fetch allowlist" }
        @match &val.fetch_allowlist {
            None => p { "Any public host." },
            Some(hosts) => p { @for h in hosts { span.tag { (h) } } },
        }

        h2 { "Libraries" }
        @if libraries.is_empty() {
            p.muted { "Its latest version imports no library." }
        } @else {
            table {
                thead { tr { th { "Library" } th { "Version" } th { "Granted" } } }
                tbody {
                    @for (name, version, grants) in &libraries {
                        tr {
                            td { (name) }
                            td { @match version { Some(v) => { "pinned to " (v) }, None => "follows its latest" } }
                            td { @if grants.is_empty() { span.muted { "nothing" } } @else { (grants) } }
                        }
                    }
                }
            }
        }

        h2 { "Environment variables" }
        p.muted { "Values are never shown." }
        table {
            thead { tr { th { "Name" } th { "Updated" } th { span.muted { "Actions" } } } }
            tbody {
                @for var in &env {
                    tr {
                        td.mono { (var.key) }
                        td { (when(var.updated_at)) }
                        td {
                            form.inline method="post" action={ "/vals/" (val.name) "/env/" (var.key) "/delete" }
                                onsubmit="return confirm('Delete this variable?')" {
                                (csrf(&signed))
                                button.danger type="submit" { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action={ "/vals/" (val.name) "/env" } {
            (csrf(&signed))
            label for="env-key" { "Name" }
            input id="env-key" name="key" required;
            label for="env-value" { "Value" }
            input id="env-value" name="value" type="password" autocomplete="off";
            button type="submit" { "Set" }
        }

        h2 { "Versions" }
        table {
            thead { tr { th { "Version" } th { "Kind" } th { "Size" } th { "Deployed" } th { "" } } }
            tbody {
                @for v in versions.iter().rev() {
                    tr {
                        td { (v.version) }
                        td { (v.kind) }
                        td { (v.size) " B" }
                        td { (when(v.created_at)) }
                        td { a href={ "/v2/vals/" (val.id) "/versions/" (v.version) "/component" } download { "download" } }
                    }
                }
            }
        }
        form method="post" action={ "/vals/" (val.name) "/versions" } enctype="multipart/form-data" id="upload-form" {
            (csrf(&signed))
            label for="component" { "New version (.wasm)" }
            input type="file" id="component" name="component" accept=".wasm,application/wasm" required;
            button type="submit" { "Upload" }
        }
        p.muted { "Or " code { "valbox deploy " (val.name) " FILE.wasm" } ", which can also name libraries." }

        h2 { "Recent calls" }
        (calls_table(&calls))
    };
    Ok(layout::page(&val.name, Some(&signed), body).into_response())
}

fn permissions(signed: &SignedIn, val: &ValRow, held: Scopes) -> Markup {
    let defaults = Scopes::val_default();
    html! {
        form method="post" action={ "/vals/" (val.name) "/scopes" } id="permissions-form" {
            (csrf(signed))
            div.grid {
                @for scope in Scope::ALL {
                    label.switch {
                        input type="checkbox" role="switch" name="scope" value=(scope.as_str())
                            id={ "perm-" (scope.as_str().replace(':', "-")) } checked[held.has(scope)];
                        (scope.as_str())
                        @if defaults.has(scope) { span.muted { " (default)" } }
                    }
                }
            }
            button type="submit" { "Save permissions" }
        }
    }
}

fn request_row(signed: &SignedIn, r: &ScopeRequestRow) -> Markup {
    html! {
        tr data-request=(r.id) {
            td.mono { (r.scope) }
            td { (r.status) }
            td { (r.denied_count) " times" }
            td { (when(r.last_denied_at)) }
            td {
                @if r.status != "granted" {
                    form.inline method="post" action={ "/requests/" (r.id) "/grant" } {
                        (csrf(signed))
                        button type="submit" { "Grant" }
                    }
                }
                @if r.status == "open" {
                    form.inline method="post" action={ "/requests/" (r.id) "/dismiss" } {
                        (csrf(signed))
                        button.secondary type="submit" { "Dismiss" }
                    }
                }
            }
        }
    }
}

fn calls_table(calls: &[CallSummary]) -> Markup {
    html! {
        @if calls.is_empty() {
            p.muted { "No calls yet." }
        } @else {
            table {
                thead { tr { th { "When" } th { "Status" } th { "Time" } th { "Fuel" } th { "Error" } } }
                tbody {
                    @for c in calls {
                        tr {
                            td { (when(c.time_ms)) }
                            td { (c.status) }
                            td { (format!("{:.1} ms", c.duration_us as f64 / 1000.0)) }
                            td { (c.fuel_used) }
                            td { @if let Some(e) = &c.error { span.error { (e) } } }
                        }
                    }
                }
            }
        }
    }
}

/// Upload a component as the val's next version (no libraries: those are
/// named with `valbox deploy --dep`).
pub async fn upload(
    State(app): State<App>,
    signed: SignedIn,
    Path(name): Path<String>,
    mut form: axum::extract::Multipart,
) -> UiResult<Redirect> {
    let val = own_val(&app, &signed, &name).await?;
    let val = may_deploy(&app, &signed.who, &val.id).await?;
    let (mut csrf, mut component) = (None, None);
    let bad = |_| UiError::bad_request("the upload did not arrive whole; try again");
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = Some(field.text().await.map_err(bad)?),
            Some("component") => component = Some(field.bytes().await.map_err(bad)?),
            _ => {}
        }
    }
    FormFields(vec![("csrf".into(), csrf.unwrap_or_default())]).check_csrf(&signed)?;
    let bytes = component.ok_or_else(|| UiError::bad_request("choose a .wasm file"))?;
    let limit = app.config.limits.component_bytes;
    if bytes.len() > limit {
        return Err(UiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the component is larger than the limit of {limit} bytes"),
        ));
    }
    deploy_bytes(&app, &signed.who, val, &bytes, DeployQuery::default()).await?;
    Ok(Redirect::to(&format!("/vals/{name}")))
}

pub async fn set_scopes(
    State(app): State<App>,
    signed: SignedIn,
    Path(name): Path<String>,
    form: FormFields,
) -> UiResult<Redirect> {
    form.check_csrf(&signed)?;
    let val = own_val(&app, &signed, &name).await?;
    let scopes = form.scopes()?;
    let id = val.id.clone();
    app.db
        .call(move |conn| db::set_val_scopes(conn, &id, &scopes.to_string()))
        .await?;
    app.forget_vals();
    Ok(Redirect::to(&format!("/vals/{name}#permissions")))
}

pub async fn set_privacy(
    State(app): State<App>,
    signed: SignedIn,
    Path(name): Path<String>,
    form: FormFields,
) -> UiResult<Redirect> {
    form.check_csrf(&signed)?;
    let val = own_val(&app, &signed, &name).await?;
    let privacy = form.get("privacy").unwrap_or_default().to_string();
    if Privacy::parse(&privacy).is_none() {
        return Err(UiError::bad_request("choose public, unlisted or private"));
    }
    app.db
        .call(move |conn| db::update_val(conn, &val.id, Some(&privacy), None))
        .await?;
    app.forget_vals();
    Ok(Redirect::to(&format!("/vals/{name}")))
}

pub async fn set_env(
    State(app): State<App>,
    signed: SignedIn,
    Path(name): Path<String>,
    form: FormFields,
) -> UiResult<Redirect> {
    form.check_csrf(&signed)?;
    let val = own_val(&app, &signed, &name).await?;
    let key = form.get("key").unwrap_or_default().trim().to_string();
    let value = form.get("value").unwrap_or_default().to_string();
    crate::services::env_vars::set(&app, &signed.who, &val.id, key, value, None).await?;
    Ok(Redirect::to(&format!("/vals/{name}")))
}

pub async fn delete_env(
    State(app): State<App>,
    signed: SignedIn,
    Path((name, key)): Path<(String, String)>,
    form: FormFields,
) -> UiResult<Redirect> {
    form.check_csrf(&signed)?;
    let val = own_val(&app, &signed, &name).await?;
    crate::services::env_vars::delete(&app, &signed.who, &val.id, key).await?;
    Ok(Redirect::to(&format!("/vals/{name}")))
}

pub async fn decide_request(
    State(app): State<App>,
    signed: SignedIn,
    Path((id, decision)): Path<(String, String)>,
    form: FormFields,
) -> UiResult<Redirect> {
    form.check_csrf(&signed)?;
    let decided =
        crate::services::least_privilege::decide_for(&app, &signed.who, &id, &decision).await?;
    Ok(Redirect::to(&format!(
        "/vals/{}#permissions",
        decided.val_name
    )))
}
