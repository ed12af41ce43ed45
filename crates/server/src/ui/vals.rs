//! The vals pages: the list, and a val's page with its URLs, versions,
//! privacy, permissions panel (a switch per scope of its call token), fetch
//! allowlist, libraries, env var names, recent calls and scope requests.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::{self, when};
use super::{FormFields, SignedIn, UiError, UiResult};
use crate::app::App;
use crate::services::deploy::{DeployQuery, deploy_bytes, may_deploy};
use valbox_model::Privacy;
use valbox_store::{ValChange, ValRow, set};

pub async fn list(State(app): State<App>, signed: SignedIn) -> UiResult<Response> {
    let owner = Some(signed.who.user_id.as_str());
    let mut vals = Vec::new();
    for val in app.store.vals.list(owner, owner, 500, 0).await? {
        let last = app.store.logs.recent(&val.id, 1).await?.pop();
        vals.push((val, last));
    }
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
pub(super) async fn own_val(app: &App, signed: &SignedIn, name: &str) -> UiResult<ValRow> {
    app.store
        .vals
        .by_name(&signed.who.username, name)
        .await?
        .ok_or_else(|| UiError::not_found(format!("you have no val named `{name}`")))
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
    let change = ValChange {
        scopes: Some(scopes),
        ..ValChange::default()
    };
    app.store.vals.edit(&val.id, set(change)).await?;
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
    let privacy = Privacy::parse(form.get("privacy").unwrap_or_default())
        .ok_or_else(|| UiError::bad_request("choose public, unlisted or private"))?;
    let change = ValChange {
        privacy: Some(privacy),
        ..ValChange::default()
    };
    app.store.vals.edit(&val.id, set(change)).await?;
    app.forget_vals();
    Ok(Redirect::to(&format!("/vals/{name}")))
}

/// Set how many calls one instance of the val may serve.
pub async fn set_reuse(
    State(app): State<App>,
    signed: SignedIn,
    Path(name): Path<String>,
    form: FormFields,
) -> UiResult<Redirect> {
    form.check_csrf(&signed)?;
    let val = own_val(&app, &signed, &name).await?;
    let max = crate::api::vals::MAX_REUSE;
    let reuse = form
        .get("reuse")
        .and_then(|n| n.trim().parse::<u32>().ok())
        .filter(|n| *n <= max)
        .ok_or_else(|| UiError::bad_request(format!("enter a number of calls from 0 to {max}")))?;
    let change = ValChange {
        reuse: Some(reuse),
        ..ValChange::default()
    };
    app.store.vals.edit(&val.id, set(change)).await?;
    app.forget_vals();
    Ok(Redirect::to(&format!("/vals/{name}#instance-reuse")))
}

/// Set a cron val's schedule from its page, or unpause it.
pub async fn set_schedule(
    State(app): State<App>,
    signed: SignedIn,
    Path(name): Path<String>,
    form: FormFields,
) -> UiResult<Redirect> {
    use crate::services::cron::{self, Refused};
    form.check_csrf(&signed)?;
    let val = own_val(&app, &signed, &name).await?;
    if form.get("unpause").is_some() {
        cron::unpause(&app, &val).await?;
    } else {
        let text = form.get("schedule").unwrap_or_default();
        let refused = |why: Refused| match why {
            Refused::Store(e) => e.into(),
            why => UiError::bad_request(why.to_string()),
        };
        let schedule = cron::check(&app, &val, text).map_err(refused)?;
        cron::set(&app, &val, schedule).await.map_err(refused)?;
    }
    Ok(Redirect::to(&format!("/vals/{name}#schedule")))
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
