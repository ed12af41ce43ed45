//! The page of one of the user's vals: what it is, who may call it, its
//! permissions and scope requests, libraries, env vars, versions and calls.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::layout::{self, csrf, when};
use super::vals::own_val;
use super::{SignedIn, UiResult};
use crate::app::App;
use crate::services::val_views::val_urls;
use valbox_model::{Privacy, Scope, Scopes, ValKind};
use valbox_store::{CallSummary, EnvVarMeta, ScheduleRow, ScopeRequestRow, ValRow, VersionRow};

/// A library as the page lists it: its name, pinned version, grants.
type LibraryLine = (String, Option<i64>, Scopes);
type PageData = (
    Vec<VersionRow>,
    Vec<ScopeRequestRow>,
    Vec<CallSummary>,
    Vec<LibraryLine>,
);

pub async fn page(
    State(app): State<App>,
    signed: SignedIn,
    Path(name): Path<String>,
) -> UiResult<Response> {
    let val = own_val(&app, &signed, &name).await?;
    // Refusals not yet written would be missing from its scope requests.
    crate::services::scope_usage::flush(&app).await?;
    let (versions, requests, calls, libraries) = load(&app, &val, &signed.who.user_id).await?;
    let env = crate::services::env_vars::list(&app, &signed.who, &val.id).await?;
    let held = val.scopes;
    let (path_url, host_url) = val_urls(&app, &val);
    let schedule = app.store.schedules.get(&val.id).await?;
    let body = html! {
        h1 { (val.owner_name) "/" (val.name) }
        p.muted { (val.description) }
        @if let Some(latest) = &val.latest {
            p {
                (if latest.kind == ValKind::Email { "An " } else { "A " })
                strong { (latest.kind) } " val, version " (latest.version) "."
            }
            @if latest.kind == ValKind::Http {
                p { "Serves at " a href=(path_url) { (path_url) } " and " code { (host_url) } "." }
            }
            @if latest.kind == ValKind::Email {
                @match crate::mail_in::address_of(&app, &val) {
                    Some(address) => p #email-address { "Receives the mail sent to " code { (address) } "." },
                    None if app.config.mail.is_none() => p.muted #email-address {
                        "This server receives no mail (its operator starts it with "
                        code { "--smtp-listen" } " and " code { "--mail-domain" } ")."
                    },
                    None => p.muted #email-address {
                        "A private val has no address: make it unlisted or public to receive mail."
                    },
                }
            }
        } @else {
            p { "Not deployed yet: " code { "valbox deploy " (val.name) " FILE.wasm" } }
        }
        @if val.latest.as_ref().is_some_and(|v| v.kind == ValKind::Cron) {
            (schedule_section(&signed, &val, schedule.as_ref()))
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

        @if val.latest.as_ref().is_some_and(|v| v.kind == ValKind::Http) {
            (reuse_section(&signed, &val))
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

        (libraries_section(&libraries))

        (env_section(&signed, &val, &env))

        (versions_section(&signed, &val, &versions))

        h2 { "Recent calls" }
        (calls_table(&calls))
    };
    Ok(layout::page(&val.name, Some(&signed), body).into_response())
}

/// What the page shows beyond the val's row: its versions, its scope
/// requests, its last calls and the libraries its latest version imports.
async fn load(app: &App, val: &ValRow, owner: &str) -> UiResult<PageData> {
    let store = &app.store;
    let versions = store.vals.versions(&val.id).await?;
    let mut requests = store.scopes.requests_of(owner).await?;
    requests.retain(|r| r.val_id == val.id);
    let calls = store.logs.recent(&val.id, 10).await?;
    let mut libraries = Vec::new();
    for l in versions
        .last()
        .map(|v| v.libraries.clone())
        .unwrap_or_default()
    {
        let name = store
            .vals
            .by_id(&l.library_id)
            .await?
            .map(|v| format!("{}/{}", v.owner_name, v.name))
            .unwrap_or_else(|| "(deleted)".into());
        libraries.push((name, l.version, l.grants));
    }
    Ok((versions, requests, calls, libraries))
}

/// Whether one instance serves several calls, and a form to change it.
fn reuse_section(signed: &SignedIn, val: &ValRow) -> Markup {
    html! {
        h2 id="instance-reuse" { "Instance reuse" }
        @if val.reuse > 1 {
            p #reuse-state { "On: one instance serves up to " (val.reuse) " calls, and keeps its \
                memory between them. Each call still gets its own token." }
        } @else {
            p.muted #reuse-state { "Off: every call gets a fresh instance." }
        }
        form method="post" action={ "/vals/" (val.name) "/reuse" } id="reuse-form" {
            (csrf(signed))
            label for="reuse" { "Calls per instance (0: off)" }
            input type="number" id="reuse" name="reuse" min="0" max=(crate::api::vals::MAX_REUSE)
                value=(val.reuse);
            button type="submit" { "Save" }
        }
    }
}

/// A cron val's schedule, next and last run, and a form to change it (or
/// unpause it).
fn schedule_section(signed: &SignedIn, val: &ValRow, schedule: Option<&ScheduleRow>) -> Markup {
    let action = format!("/vals/{}/schedule", val.name);
    html! {
    h2 id="schedule" { "Schedule" }
    @match schedule {
        None => p { "No schedule: it does not run." },
        Some(s) => {
            p {
                code { (s.schedule) } "."
                // A paused schedule has no next run until it is unpaused.
                @if s.paused_at.is_none() { " Next run " (when(s.next_run_ms)) " UTC;" }
                " Last run "
                @match s.last_run_ms { Some(ms) => { (when(ms)) " UTC" }, None => "never" } "."
            }
            @if s.paused_at.is_some() {
                form method="post" action=(action) {
                    (csrf(signed))
                    input type="hidden" name="unpause" value="1";
                    p.error { "Paused after " (s.failures) " failures in a row. "
                        button type="submit" id="unpause" { "Unpause" } }
                }
            } @else if s.failures > 0 {
                p.muted { (s.failures) " failed in a row (" (crate::services::cron::PAUSE_AFTER) " pause it)." }
            }
        }
    }
    form method="post" action=(action) id="schedule-form" {
        (csrf(signed))
        label for="schedule-input" { "Run" }
        input id="schedule-input" name="schedule" placeholder="every 15m, 0 9 * * 1-5, TZ=Europe/Paris 0 9 * * *, off"
            value=[schedule.map(|s| s.schedule.as_str())];
        button type="submit" { "Save" }
    }
    }
}

fn libraries_section(libraries: &[LibraryLine]) -> Markup {
    html! {
    h2 { "Libraries" }
    @if libraries.is_empty() {
        p.muted { "Its latest version imports no library." }
    } @else {
        table {
            thead { tr { th { "Library" } th { "Version" } th { "Granted" } } }
            tbody {
                @for (name, version, grants) in libraries {
                    tr {
                        td { (name) }
                        td { @match version { Some(v) => { "pinned to " (v) }, None => "follows its latest" } }
                        td { @if grants.is_empty() { span.muted { "nothing" } } @else { (grants) } }
                    }
                }
            }
        }
    }
    }
}

fn env_section(signed: &SignedIn, val: &ValRow, env: &[EnvVarMeta]) -> Markup {
    html! {
    h2 { "Environment variables" }
    p.muted { "Values are never shown." }
    table {
        thead { tr { th { "Name" } th { "Updated" } th { span.muted { "Actions" } } } }
        tbody {
            @for var in env {
                tr {
                    td.mono { (var.key) }
                    td { (when(var.updated_at)) }
                    td {
                        form.inline method="post" action={ "/vals/" (val.name) "/env/" (var.key) "/delete" }
                            onsubmit="return confirm('Delete this variable?')" {
                            (csrf(signed))
                            button.danger type="submit" { "Delete" }
                        }
                    }
                }
            }
        }
    }
    form method="post" action={ "/vals/" (val.name) "/env" } {
        (csrf(signed))
        label for="env-key" { "Name" }
        input id="env-key" name="key" required;
        label for="env-value" { "Value" }
        input id="env-value" name="value" type="password" autocomplete="off";
        button type="submit" { "Set" }
    }
    }
}

fn versions_section(signed: &SignedIn, val: &ValRow, versions: &[VersionRow]) -> Markup {
    html! {
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
        (csrf(signed))
        label for="component" { "New version (.wasm)" }
        input type="file" id="component" name="component" accept=".wasm,application/wasm" required;
        button type="submit" { "Upload" }
    }
    p.muted { "Or " code { "valbox deploy " (val.name) " FILE.wasm" } ", which can also name libraries." }
    }
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
