//! HTTP vals at `/x/{user}/{val}/...` and on the host `{user}-{val}.{suffix}`:
//! who calls, which val, and the request and response in HTTP terms. The
//! call itself is `services::call`; the Run API is `api::run`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, SET_COOKIE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::respond;
use super::val_origin::{confine_to_own_host, confine_to_ui_host, navigation_redirect};
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::services::call::call;
use crate::services::runnable::{NotRunnable, find_runnable};
use crate::services::val_access::can_see;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use valbox_auth as auth;
use valbox_model::Principal;
use valbox_model::{Trigger, ValKind};
use valbox_runtime::{HttpRequest, Input, Output};
use valbox_store::ValRow;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/x/{user}/{val}", any(by_path))
        .route("/x/{user}/{val}/", any(by_path))
        .route("/x/{user}/{val}/{*rest}", any(by_path))
}

async fn by_path(
    State(app): State<App>,
    ValCaller(caller): ValCaller,
    Path(params): Path<Vec<(String, String)>>,
    req: Request,
) -> Response {
    let [(_, user), (_, val), ..] = params.as_slice() else {
        return ApiError::not_found("call a val at /x/{user}/{val}/").into_response();
    };
    // The val sees the raw (still percent-encoded) path below its root.
    let raw = req.uri().path();
    let below = raw.splitn(5, '/').nth(4).unwrap_or_default();
    let query = req.uri().query();
    if let Some(redirect) = navigation_redirect(&app, req.headers(), user, val, below, query) {
        return redirect;
    }
    let path = format!("/{below}");
    let mut response = serve_http(&app, caller, user, val, path, req).await;
    if response.extensions().get::<super::FromVal>().is_some() {
        confine_to_ui_host(&mut response);
    }
    response
}

/// Middleware: a request to `{user}-{val}.{suffix}` is served by that val,
/// whatever its path.
pub async fn val_host(State(app): State<App>, req: Request, next: Next) -> Response {
    let target = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| parse_val_host(h, &app.config.val_host_suffix))
        .map(|(u, v)| (u.to_string(), v.to_string()));
    let Some((user, val)) = target else {
        return next.run(req).await;
    };
    let caller = match val_caller(&app, req.headers()).await {
        Ok(c) => c,
        Err(e) => return respond(e),
    };
    let path = req.uri().path().to_string();
    let mut response = serve_http(&app, caller, &user, &val, path, req).await;
    if response.extensions().get::<super::FromVal>().is_some() {
        confine_to_own_host(&app, &mut response);
    }
    response
}

/// The caller of a val. Only a Valbox token is the platform's business;
/// any other `Authorization` (Basic auth, another service's bearer token)
/// belongs to the val, which may do its own authentication. A Valbox token
/// under any other scheme is refused rather than taken as anonymous.
async fn val_caller(app: &App, headers: &axum::http::HeaderMap) -> ApiResult<Option<Principal>> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().ok();
    match text.and_then(auth::bearer) {
        Some(token) if auth::has_token_prefix(token) => {
            app.auth.authenticate(text).await.map_err(ApiError::from)
        }
        _ if auth::carries_valbox_token(value.as_bytes()) => Err(ApiError::unauthorized(
            "send a Valbox token as `Authorization: Bearer <token>`; it is never passed to a val",
        )),
        _ => Ok(None),
    }
}

/// Extractor form of [`val_caller`] for the routes that call vals.
pub(super) struct ValCaller(pub Option<Principal>);

impl FromRequestParts<App> for ValCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        Ok(ValCaller(val_caller(app, &parts.headers).await?))
    }
}

/// Split `alice-hello.localhost:8080` into `("alice", "hello")`. Usernames
/// cannot contain `-`, so the first one separates user from val.
pub fn parse_val_host<'a>(host: &'a str, suffix: &str) -> Option<(&'a str, &'a str)> {
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let label = host.strip_suffix(suffix)?.strip_suffix('.')?;
    let (user, val) = label.split_once('-')?;
    (!user.is_empty() && !val.is_empty() && !label.contains('.')).then_some((user, val))
}

/// Find a val the caller may run, or 404 (private vals do not leak).
pub(super) async fn resolve(
    app: &App,
    caller: Option<&Principal>,
    user: &str,
    name: &str,
    kind: ValKind,
) -> ApiResult<Arc<ValRow>> {
    let visible = |val: &ValRow| can_see(val, caller);
    find_runnable(app, user, name, None, kind, visible)
        .await
        .map_err(|why| match why {
            NotRunnable::Missing => {
                ApiError::not_found(format!("no val `{user}/{name}` that you can see"))
            }
            NotRunnable::NotDeployed => ApiError::not_found(format!(
                "val `{user}/{name}` has no deployed version yet; deploy one with `valbox deploy`"
            )),
            NotRunnable::NoSuchVersion(n) => {
                ApiError::not_found(format!("val `{user}/{name}` has no version {n}"))
            }
            NotRunnable::OtherKind(other) => {
                let hint = match other {
                    ValKind::Script => {
                        format!("it is a script val: call it with POST /v1/run/{user}.{name}")
                    }
                    ValKind::Http => format!("it is an HTTP val: call it at /x/{user}/{name}/"),
                    ValKind::Library => format!(
                        "it is a library val: it runs inside the vals that import it \
                         (deploy them with `--dep {user}/{name}`)"
                    ),
                    ValKind::Cron => format!(
                        "it is a cron val: it runs on its schedule \
                         (`valbox val schedule {name} EXPR`)"
                    ),
                    ValKind::Email => format!(
                        "it is an email val: it runs when mail arrives at its address \
                         ({user}.{name}@ this server's mail domain)"
                    ),
                };
                ApiError::bad_request("wrong_val_kind", hint)
            }
            NotRunnable::Failed(e) => e.into(),
        })
}

async fn serve_http(
    app: &App,
    caller: Option<Principal>,
    user: &str,
    name: &str,
    path: String,
    req: Request,
) -> Response {
    match serve_http_inner(app, caller, user, name, path, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// URLs end up in logs and browser history: a token never belongs there,
/// and a val never gets one that way, whichever route runs it.
pub fn refuse_token_in_url(uri: &axum::http::Uri) -> ApiResult<()> {
    if auth::carries_valbox_token(uri.to_string().as_bytes()) {
        return Err(ApiError::bad_request(
            "token_in_url",
            "the URL holds a Valbox token; revoke it, and send tokens only as \
             `Authorization: Bearer <token>`",
        ));
    }
    Ok(())
}

async fn serve_http_inner(
    app: &App,
    caller: Option<Principal>,
    user: &str,
    name: &str,
    path: String,
    req: Request,
) -> ApiResult<Response> {
    let val = resolve(app, caller.as_ref(), user, name, ValKind::Http).await?;
    let (parts, body) = req.into_parts();
    refuse_token_in_url(&parts.uri)?;
    let head = parts.method == axum::http::Method::HEAD;
    let limit = app.config.limits.request_body_bytes;
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large("the request body", limit))?;
    let headers = parts
        .headers
        .iter()
        // A Valbox token of either kind is for the platform, never for the
        // val's author, in whatever header, scheme or encoding it came.
        .filter(|(_, v)| !auth::carries_valbox_token(v.as_bytes()))
        .filter_map(|(k, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            // Nor is the web UI's session, which rides in a cookie.
            let value = if k == COOKIE {
                crate::web::strip_session_cookie(&value)?
            } else {
                value
            };
            Some((k.to_string(), value))
        })
        .collect();
    let request = HttpRequest {
        method: parts.method.to_string(),
        path,
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers,
        body: body.to_vec(),
    };
    let called = call(
        app,
        &val,
        caller.as_ref(),
        Input::Http(request),
        Trigger::Http,
    )
    .await?;
    match called.output {
        Output::Http(r) => Ok(with_cpu_timing(http_response(r, head), called.cpu_time)),
        Output::Script(_) | Output::Cron(_) | Output::Email(_) => {
            Err(ApiError::internal("another kind's output from an HTTP val"))
        }
    }
}

/// Headers that describe the connection or the body's framing: a val's
/// values for them could only contradict what the server sends.
const FRAMING_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn http_response(r: valbox_runtime::HttpResponse, head: bool) -> Response {
    // Informational answers (1xx) belong to the connection, which is the
    // server's: a val may only give a final status.
    let status = StatusCode::from_u16(r.status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()));
    let Some(status) = status else {
        return ApiError::new(
            StatusCode::BAD_GATEWAY,
            "invalid_response",
            format!(
                "the val answered with status {}; a val must answer with a final HTTP \
                 status from 200 to 599",
                r.status
            ),
        )
        .into_response();
    };
    // HTTP forbids content in 204, 205 and 304, and any answer to HEAD.
    let bodiless = head || matches!(status.as_u16(), 204 | 205 | 304);
    let body = if bodiless {
        Body::empty()
    } else {
        Body::from(r.body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for (k, v) in r.headers {
        // Headers that are not valid HTTP are dropped rather than failing
        // the whole response; framing is the server's, not the val's.
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v))
            && !FRAMING_HEADERS.contains(&k.as_str())
            && !sets_session_cookie(&k, &v)
        {
            response.headers_mut().append(k, v);
        }
    }
    // The val's own answer, which the JSON-error layer leaves alone.
    response.extensions_mut().insert(super::FromVal);
    response
}

/// Whether a val's header would set (or clear) the web UI's session cookie:
/// a val may set cookies of its own, never that one.
fn sets_session_cookie(name: &HeaderName, value: &HeaderValue) -> bool {
    name == SET_COOKIE
        && value
            .as_bytes()
            .split(|b| *b == b'=')
            .next()
            .is_some_and(|n| crate::web::is_session_cookie(&String::from_utf8_lossy(n)))
}

/// Tell the caller the CPU time of the call, as `Server-Timing: cpu;dur=<ms>`.
pub(super) fn with_cpu_timing(mut response: Response, cpu_time: Duration) -> Response {
    let value = format!("cpu;dur={:.3}", cpu_time.as_secs_f64() * 1e3);
    if let Ok(value) = HeaderValue::try_from(value) {
        response
            .headers_mut()
            .append(HeaderName::from_static("server-timing"), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::parse_val_host;

    #[test]
    fn val_hosts() {
        assert_eq!(
            parse_val_host("alice-hello.localhost:8080", "localhost"),
            Some(("alice", "hello"))
        );
        assert_eq!(
            parse_val_host("alice-my-val.localhost", "localhost"),
            Some(("alice", "my-val"))
        );
        assert_eq!(parse_val_host("localhost:8080", "localhost"), None);
        assert_eq!(parse_val_host("127.0.0.1:8080", "localhost"), None);
        assert_eq!(parse_val_host("alice.localhost", "localhost"), None);
        assert_eq!(parse_val_host("x.alice-hello.localhost", "localhost"), None);
        assert_eq!(
            parse_val_host("alice-hello.evillocalhost", "localhost"),
            None
        );
    }
}
