//! The account page: name, email, storage against the quota, the
//! signed-in sessions (each revocable, like a token), and signing out
//! everywhere.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::{self, csrf, when};
use super::session::signed_out;
use super::{FormFields, SignedIn, UiError, UiResult};
use crate::app::App;

pub async fn page(State(app): State<App>, signed: SignedIn) -> UiResult<Response> {
    let owner = &signed.who.user_id;
    let user = app.store.users.by_id(owner).await?;
    let sessions = app.store.sessions.list(owner).await?;
    let storage = app.caps.blob.meter.usage(owner).await?;
    let user = user.ok_or_else(|| UiError::not_found("your account is gone"))?;
    let body = html! {
        h1 { "Account" }
        table {
            tbody {
                tr { th { "User name" } td { (user.username) } }
                tr { th { "Email" } td { (user.email) } }
            }
        }
        h2 { "Storage" }
        table #storage {
            tbody {
                tr { th { "Components (every version)" } td { (bytes(storage.components)) } }
                tr { th { "Blobs" } td { (bytes(storage.blobs)) } }
                tr { th { "SQLite" } td { (bytes(storage.sqlite)) } }
                tr { th { "Call logs" } td { (bytes(storage.logs)) } }
                tr { th { "Total" } td { (bytes(storage.total)) " of " (bytes(storage.quota)) } }
            }
        }
        h2 { "Signed-in browsers" }
        table {
            thead { tr { th { "Signed in" } th { "Last seen" } th { "Ends" } th { "" } } }
            tbody {
                @for s in &sessions {
                    tr {
                        td { (when(s.created_at)) @if s.id == signed.session.id { " " span.tag { "this one" } } }
                        td { (when(s.last_seen_at)) }
                        td { (when(s.expires_at)) }
                        td {
                            form.inline method="post" action={ "/account/sessions/" (s.id) "/revoke" } {
                                (csrf(&signed))
                                button.secondary type="submit" { "Sign out" }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action="/account/sign-out-everywhere"
            onsubmit="return confirm('Sign out of every browser, this one included?')" {
            (csrf(&signed))
            button.danger type="submit" id="sign-out-everywhere" { "Sign out everywhere" }
        }
    };
    Ok(layout::page("Account", Some(&signed), body).into_response())
}

/// `n` bytes for people: `1.5 MiB`.
fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} bytes"),
        1024..1048576 => format!("{:.1} KiB", n as f64 / 1024.0),
        1048576..1073741824 => format!("{:.1} MiB", n as f64 / 1048576.0),
        _ => format!("{:.1} GiB", n as f64 / 1073741824.0),
    }
}

pub async fn revoke_session(
    State(app): State<App>,
    signed: SignedIn,
    Path(id): Path<String>,
    form: FormFields,
) -> UiResult<Response> {
    form.check_csrf(&signed)?;
    let owner = &signed.who.user_id;
    app.store.sessions.revoke(owner, Some(&id)).await?;
    if id == signed.session.id {
        return Ok(signed_out(&app));
    }
    Ok(Redirect::to("/account").into_response())
}

pub async fn sign_out_everywhere(
    State(app): State<App>,
    signed: SignedIn,
    form: FormFields,
) -> UiResult<Response> {
    form.check_csrf(&signed)?;
    let owner = &signed.who.user_id;
    app.store.sessions.revoke(owner, None).await?;
    Ok(signed_out(&app))
}
