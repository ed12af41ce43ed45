//! The web UI, served at `/`: server-rendered pages (maud) over the same
//! services as the REST API, for a signed-in browser session.
//!
//! Vals share this origin (`/x/...`), so the UI's session never reaches
//! them: the session cookie is taken out of requests to vals and out of
//! their answers, and their pages run sandboxed in an opaque origin (see
//! `api::invoke`). Every form carries the session's CSRF token, and a
//! cross-site POST is refused before it is read.

mod account;
mod api_docs;
mod layout;
pub mod session;
mod tokens;
mod val_page;
mod vals;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::app::App;
use valbox_model::Principal;
use valbox_store::SessionRow;

/// The most an upload form may carry: the largest component allowed by
/// default, and room for the form around it. A configured smaller limit is
/// checked when the component is read.
const UPLOAD_LIMIT: usize = 64 << 20;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(home))
        .route("/style.css", get(layout::stylesheet))
        .route("/login", get(session::login_page).post(session::redeem))
        .route("/login/link", post(session::request_link))
        .route("/logout", post(session::logout))
        .route("/tokens", get(tokens::page).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/tokens/{id}/narrow", post(tokens::narrow))
        .route("/tokens/{id}/scopes", post(tokens::set_scopes))
        .route("/vals", get(vals::list))
        .route("/vals/{name}", get(val_page::page))
        .route("/vals/{name}/scopes", post(vals::set_scopes))
        .route(
            "/vals/{name}/versions",
            post(vals::upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/vals/{name}/privacy", post(vals::set_privacy))
        .route("/vals/{name}/reuse", post(vals::set_reuse))
        .route("/vals/{name}/schedule", post(vals::set_schedule))
        .route("/vals/{name}/env", post(vals::set_env))
        .route("/vals/{name}/env/{key}/delete", post(vals::delete_env))
        .route("/requests/{id}/{decision}", post(vals::decide_request))
        .route("/account", get(account::page))
        .route("/api", get(api_docs::page))
        .route(
            "/account/sessions/{id}/revoke",
            post(account::revoke_session),
        )
        .route(
            "/account/sign-out-everywhere",
            post(account::sign_out_everywhere),
        )
        .layer(axum::middleware::map_response(page_headers))
}

/// What every UI answer tells the browser: never inside a frame (no
/// clickjacking), never kept in a cache (pages show tokens, sign-in links
/// and settings), and no `Referer` to other sites (a sign-in page's URL
/// holds its link). Not `no-referrer`: browsers then send `Origin: null`
/// with the UI's own forms, which the origin check refuses.
async fn page_headers(mut response: Response) -> Response {
    use axum::http::HeaderValue;
    use axum::http::header::{
        CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS,
    };
    let headers = response.headers_mut();
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let csp = match headers
        .get(CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
    {
        Some(csp) => HeaderValue::try_from(format!("{csp}; frame-ancestors 'none'")).ok(),
        None => Some(HeaderValue::from_static("frame-ancestors 'none'")),
    };
    if let Some(csp) = csp {
        headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

async fn home(signed: Option<SignedIn>) -> Redirect {
    match signed {
        Some(_) => Redirect::to("/vals"),
        None => Redirect::to("/login"),
    }
}

/// A page's failure, shown as a page with the right status.
pub struct UiError {
    status: StatusCode,
    message: String,
}

impl UiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<anyhow::Error> for UiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!("web UI: {e:#}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "something went wrong on the server; its log has details",
        )
    }
}

impl From<crate::error::ApiError> for UiError {
    fn from(e: crate::error::ApiError) -> Self {
        Self::new(e.status, e.message)
    }
}

impl From<valbox_store::StoreError> for UiError {
    fn from(e: valbox_store::StoreError) -> Self {
        crate::error::ApiError::from(e).into()
    }
}

impl From<crate::services::error::ServiceError> for UiError {
    fn from(e: crate::services::error::ServiceError) -> Self {
        crate::error::ApiError::from(e).into()
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let page = layout::page("Something went wrong", None, layout::error(&self.message));
        (self.status, page).into_response()
    }
}

pub type UiResult<T> = Result<T, UiError>;

/// A signed-in browser: its session and the user's principal (every
/// scope: a session is its user).
pub struct SignedIn {
    pub session: SessionRow,
    pub who: Principal,
}

impl FromRequestParts<App> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            same_origin(app, &parts.headers).map_err(IntoResponse::into_response)?;
        }
        match session::current(app, &parts.headers).await {
            Ok(Some(signed)) => Ok(signed),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

impl axum::extract::OptionalFromRequestParts<App> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Option<Self>, Response> {
        session::current(app, &parts.headers)
            .await
            .map_err(IntoResponse::into_response)
    }
}

/// Refuse a state-changing request that a browser says came from another
/// site, before anything else: with `SameSite` cookies it would not be
/// signed in anyway, and the form token is checked too. An `Origin` must
/// match the UI's scheme as well as its host: `http://` pages of the same
/// host (which anyone on the network can write) are another site.
pub(super) fn same_origin(app: &App, headers: &HeaderMap) -> UiResult<()> {
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let scheme = if session::over_https(app) {
        "https"
    } else {
        "http"
    };
    let foreign_origin = match (headers.get(ORIGIN).and_then(|o| o.to_str().ok()), host) {
        (Some(origin), Some(host)) => !origin.eq_ignore_ascii_case(&format!("{scheme}://{host}")),
        (Some(_), None) => true,
        _ => false,
    };
    if cross_site || foreign_origin {
        return Err(UiError::forbidden(
            "this form was sent from another site; use the page on this server",
        ));
    }
    Ok(())
}

/// A submitted form's fields, in order; a name may repeat (checkboxes).
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The scopes of its `scope` checkboxes.
    pub fn scopes(&self) -> UiResult<valbox_model::Scopes> {
        valbox_model::Scopes::parse(&self.all("scope").collect::<Vec<_>>().join(" "))
            .map_err(UiError::bad_request)
    }

    /// Refuse the form unless it carries `signed`'s CSRF token.
    pub fn check_csrf(&self, signed: &SignedIn) -> UiResult<()> {
        let sent = self.get("csrf").unwrap_or_default();
        let expected = &signed.session.csrf;
        let same = sent.len() == expected.len()
            && sent
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(UiError::forbidden(
                "this form is out of date or did not come from this site; reload the page and try again",
            ))
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for FormFields {
    type Rejection = UiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, UiError> {
        let is_form = req.headers().get(CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        });
        if !is_form {
            return Err(UiError::bad_request("send the page's form"));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| UiError::bad_request("the form is too large"))?;
        Ok(Self(
            url::form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}
