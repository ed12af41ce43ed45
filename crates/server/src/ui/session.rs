//! Signing in to the web UI: one-time sign-in links (mailed through the
//! outbox, or printed by `valbox user login-link` on the server's
//! machine), sessions held in an `HttpOnly`, `SameSite` cookie (`Secure`
//! behind HTTPS) with idle and absolute expiry, and signing out.

use std::net::IpAddr;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::{FormFields, SignedIn, UiError, UiResult, layout};
use crate::app::App;
use crate::edge::ClientAddr;
use valbox_auth as auth;
use valbox_caps::email::outbox::Outgoing;
use valbox_model::now_ms;
use valbox_model::{Principal, Scopes};
use valbox_store::NewSession;

use crate::services::sign_in::{LINK_PREFIX, NewLink, TOO_MANY_FOR_USER, new_link};
use crate::web::{SECURE_SESSION_COOKIE, SESSION_COOKIE};

const SESSION_PREFIX: &str = "vbs_";
/// A session ends after this long unused...
const IDLE_MS: i64 = 12 * 60 * 60 * 1000;
/// ...and after this long in any case.
const MAX_AGE_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// A session's last use is written at most this often.
const TOUCH_EVERY_MS: i64 = 60 * 1000;

/// The signed-in session the request's cookie names, if it is live.
pub async fn current(app: &App, headers: &HeaderMap) -> UiResult<Option<SignedIn>> {
    let Some(secret) = cookie(headers, cookie_name(app)) else {
        return Ok(None);
    };
    if !auth::well_formed(&secret, SESSION_PREFIX) {
        return Ok(None);
    }
    let hash = auth::hash_token(&secret);
    let Some(session) = app.store.sessions.by_hash(&hash).await? else {
        return Ok(None);
    };
    let now = now_ms();
    let live = session.revoked_at.is_none()
        && session.expires_at > now
        && now - session.last_seen_at < IDLE_MS;
    if !live {
        return Ok(None);
    }
    if now - session.last_seen_at > TOUCH_EVERY_MS {
        app.store.sessions.touch(&session.id).await?;
    }
    let user = app.store.users.by_id(&session.user_id).await?;
    let found = user.map(|u| (session, u));
    Ok(found.map(|(session, user)| SignedIn {
        who: Principal {
            user_id: user.id,
            username: user.username,
            scopes: Scopes::all(),
            token_id: format!("session-{}", session.id),
            call_of_val: None,
            usage: app.auth.usage.clone(),
        },
        session,
    }))
}

/// The value of cookie `name` in the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether the UI is reached over HTTPS (its own TLS, or a proxy's that
/// the public URL names).
pub fn over_https(app: &App) -> bool {
    app.config.tls.is_some() || app.config.public_url.starts_with("https://")
}

fn cookie_name(app: &App) -> &'static str {
    if over_https(app) {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The session cookie: `Secure` and `__Host-` over HTTPS.
fn session_cookie(app: &App, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if over_https(app) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}",
        cookie_name(app)
    ))
    .expect("a cookie of base62 and fixed text")
}

#[derive(Deserialize)]
pub struct LoginQuery {
    link: Option<String>,
}

/// The sign-in page; with `?link=`, the button that uses the link (a GET
/// never uses it, so mail scanners that follow links cannot).
pub async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    let body = match q.link {
        Some(link) => html! {
            h1 { "Sign in" }
            form method="post" action="/login" {
                input type="hidden" name="link" value=(link);
                button type="submit" id="use-link" { "Sign in to Valbox" }
            }
        },
        None => html! {
            h1 { "Sign in" }
            p { "Valbox signs you in with a one-time link. Enter your user name and a link is \
                 mailed to your account's address (when the server can send mail). On the \
                 server's machine, " code { "valbox user login-link NAME" } " prints one." }
            form method="post" action="/login/link" {
                label for="username" { "User name" }
                input id="username" name="username" autocomplete="username" required;
                button type="submit" { "Mail me a sign-in link" }
            }
        },
    };
    layout::page("Sign in", None, body).into_response()
}

/// Mail a sign-in link. The answer is the same whether the user exists,
/// so the page does not tell who has an account, unless a link for an
/// existing user could not be sent: then the page says so, and how else
/// to sign in.
pub async fn request_link(
    State(app): State<App>,
    requester: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    form: FormFields,
) -> UiResult<Response> {
    super::same_origin(&app, &headers)?;
    let username = form.get("username").unwrap_or_default().trim().to_string();
    if username.is_empty() {
        return Err(UiError::bad_request("enter your user name"));
    }
    let requester = requester.map_or(IpAddr::from([0, 0, 0, 0]), |Extension(ClientAddr(ip))| ip);
    let too_many = |why| UiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, why);
    app.sign_in_limit.check(requester).map_err(too_many)?;
    let link = match new_link(&app.store, &username, &app.config.public_url).await? {
        NewLink::TooMany => return Err(too_many(TOO_MANY_FOR_USER)),
        NewLink::NoSuchUser => None,
        NewLink::Made { user_id, url } => Some((user_id, url)),
    };
    app.sign_in_limit.count(requester);
    let mut failed = None;
    if let Some((user_id, link)) = link {
        let mail = Outgoing {
            from_name: Some("Valbox".into()),
            reply_to: Vec::new(),
            subject: "Your Valbox sign-in link".into(),
            text: Some(format!(
                "Sign in to Valbox with this link, within 15 minutes; it works once:\n\n{link}\n\n\
                 If you did not ask for it, ignore this mail.\n"
            )),
            html: None,
            loop_trace: Vec::new(),
        };
        failed = if app.sign_in_limit.allow_mail() {
            let sent = app.caps.email.mailer.send_sign_in(&user_id, mail).await;
            sent.err().map(|e| e.to_string())
        } else {
            Some("the server has mailed many sign-in links lately".into())
        };
    }
    let body = match failed {
        None => html! {
            h1 { "Check your mail" }
            p { "If that account exists and the server can send mail, a sign-in link is on its way. \
                 It works once, for 15 minutes." }
        },
        Some(why) => {
            tracing::info!("mailing a sign-in link: {why}");
            html! {
                h1 { "No link was sent" }
                p #not-sent { "A sign-in link could not be mailed just now (" (why) "). A link mailed \
                     earlier still works; try again in a few minutes, or on the server's machine run "
                     code { "valbox user login-link NAME" } "." }
            }
        }
    };
    Ok(layout::page("Sign in", None, body).into_response())
}

/// Use a sign-in link: a new session (a new id every time), in a cookie;
/// the session the browser had before, if any, ends.
pub async fn redeem(
    State(app): State<App>,
    headers: HeaderMap,
    form: FormFields,
) -> UiResult<Response> {
    // Another site must not sign a browser in to an account of its choice.
    super::same_origin(&app, &headers)?;
    let link = form.get("link").unwrap_or_default().to_string();
    let refused = || {
        UiError::bad_request(
            "this sign-in link was already used, has expired, or is not a link; ask for a new one",
        )
    };
    if !auth::well_formed(&link, LINK_PREFIX) {
        return Err(refused());
    }
    let hash = auth::hash_token(&link);
    let (secret, session_hash) = auth::generate_token(SESSION_PREFIX);
    let (csrf, _) = auth::generate_token("csrf_");
    let session = NewSession {
        hash: session_hash,
        csrf,
        expires_at: now_ms() + MAX_AGE_MS,
    };
    let session = app
        .store
        .sessions
        .sign_in(&hash, session)
        .await?
        .ok_or_else(refused)?;
    // Signed in anew: the browser's previous session (if any) ends.
    if let Some(previous) = current(&app, &headers).await? {
        let (user, id) = (previous.who.user_id, previous.session.id);
        app.store.sessions.revoke(&user, Some(&id)).await?;
    }
    let mut response = Redirect::to("/vals").into_response();
    let cookie = session_cookie(&app, &secret, (session.expires_at - now_ms()) / 1000);
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(response)
}

/// Sign out this browser.
pub async fn logout(
    State(app): State<App>,
    signed: SignedIn,
    form: FormFields,
) -> UiResult<Response> {
    form.check_csrf(&signed)?;
    let (user, id) = (&signed.who.user_id, &signed.session.id);
    app.store.sessions.revoke(user, Some(id)).await?;
    Ok(signed_out(&app))
}

/// Back to the sign-in page, with the cookie cleared.
pub fn signed_out(app: &App) -> Response {
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(app, "", 0));
    response
}
