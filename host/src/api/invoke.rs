//! Calling vals: HTTP vals at `/x/{user}/{val}/...` and on the host
//! `{user}-{val}.{suffix}`, script vals through the Run API.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, HOST};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{JsonBody, respond, vals::can_see};
use crate::app::{App, FullShare};
use crate::auth::{self, CallToken, Principal, Revoker, Scopes};
use crate::caps::CallContext;
use crate::caps::log::LogRecord;
use crate::db::ValRow;
use crate::error::{ApiError, ApiResult};
use crate::runtime::{CallError, HttpRequest, Input, Outcome, Output, ValKind};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/x/{user}/{val}", any(by_path))
        .route("/x/{user}/{val}/", any(by_path))
        .route("/x/{user}/{val}/{*rest}", any(by_path))
        .route("/v1/run/{target}", get(run_get).post(run_post))
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
    let path = format!("/{below}");
    serve_http(&app, caller, user, val, path, req).await
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
    serve_http(&app, caller, &user, &val, path, req).await
}

/// The caller of a val. Only a Valbox token is the platform's business;
/// any other `Authorization` (Basic auth, another service's bearer token)
/// belongs to the val, which may do its own authentication. A Valbox token
/// under any other scheme is refused rather than taken as anonymous.
async fn val_caller(app: &App, headers: &axum::http::HeaderMap) -> ApiResult<Option<Principal>> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let bearer = value.to_str().ok().and_then(auth::bearer);
    match bearer {
        Some(token) if auth::has_token_prefix(token) => {
            auth::authenticate(app, value.to_str().ok()).await
        }
        _ if auth::carries_valbox_token(value.as_bytes()) => Err(ApiError::unauthorized(
            "send a Valbox token as `Authorization: Bearer <token>`; it is never passed to a val",
        )),
        _ => Ok(None),
    }
}

/// Extractor form of [`val_caller`] for the routes that call vals.
struct ValCaller(Option<Principal>);

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
async fn resolve(
    app: &App,
    caller: Option<&Principal>,
    user: &str,
    name: &str,
    kind: ValKind,
) -> ApiResult<Arc<ValRow>> {
    let missing = || ApiError::not_found(format!("no val `{user}/{name}` that you can see"));
    let val = app.val_by_name(user, name).await?.ok_or_else(missing)?;
    if !can_see(&val, caller) {
        return Err(missing());
    }
    let Some(latest) = &val.latest else {
        return Err(ApiError::not_found(format!(
            "val `{user}/{name}` has no deployed version yet; deploy one with `valbox deploy`"
        )));
    };
    if ValKind::parse(&latest.kind) != Some(kind) {
        let hint = match kind {
            ValKind::Http => format!("it is a script val: call it with POST /v1/run/{user}.{name}"),
            ValKind::Script => format!("it is an HTTP val: call it at /x/{user}/{name}/"),
        };
        return Err(ApiError::bad_request("wrong_val_kind", hint));
    }
    Ok(val)
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
    // URLs end up in logs and browser history: a token never belongs there,
    // and a val never gets one that way.
    if auth::carries_valbox_token(parts.uri.to_string().as_bytes()) {
        return Err(ApiError::bad_request(
            "token_in_url",
            "the URL holds a Valbox token; revoke it, and send tokens only as \
             `Authorization: Bearer <token>`",
        ));
    }
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
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let request = HttpRequest {
        method: parts.method.to_string(),
        path,
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers,
        body: body.to_vec(),
    };
    let called = call(app, &val, caller.as_ref(), Input::Http(request), "http").await?;
    match called.output {
        Output::Http(r) => Ok(with_cpu_timing(http_response(r, head), called.cpu_time)),
        Output::Script(_) => Err(ApiError::internal("script output from an HTTP val")),
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

fn http_response(r: crate::runtime::HttpResponse, head: bool) -> Response {
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
        {
            response.headers_mut().append(k, v);
        }
    }
    // The val's own answer, which the JSON-error layer leaves alone.
    response.extensions_mut().insert(super::FromVal);
    response
}

#[derive(Deserialize)]
struct RunBody {
    #[serde(default)]
    args: Vec<Value>,
}

#[derive(Deserialize)]
struct RunQuery {
    args: Option<String>,
}

fn split_target(target: &str) -> ApiResult<(&str, &str)> {
    target.split_once('.').ok_or_else(|| {
        ApiError::bad_request(
            "invalid_target",
            format!("`{target}` is not `user.val`; call /v1/run/{{user}}.{{val}}"),
        )
    })
}

async fn run_post(
    State(app): State<App>,
    ValCaller(caller): ValCaller,
    Path(target): Path<String>,
    JsonBody(body): JsonBody<RunBody>,
) -> ApiResult<Response> {
    run(&app, caller, &target, body.args).await
}

async fn run_get(
    State(app): State<App>,
    ValCaller(caller): ValCaller,
    Path(target): Path<String>,
    Query(q): Query<RunQuery>,
) -> ApiResult<Response> {
    let args = match q.args {
        None => Vec::new(),
        Some(text) => serde_json::from_str::<Vec<Value>>(&text).map_err(|e| {
            ApiError::bad_request(
                "invalid_args",
                format!("`args` must be a URL-encoded JSON array: {e}"),
            )
        })?,
    };
    run(&app, caller, &target, args).await
}

async fn run(
    app: &App,
    caller: Option<Principal>,
    target: &str,
    args: Vec<Value>,
) -> ApiResult<Response> {
    let (user, name) = split_target(target)?;
    let val = resolve(app, caller.as_ref(), user, name, ValKind::Script).await?;
    let args = serde_json::to_string(&args).map_err(ApiError::internal)?;
    let called = call(app, &val, caller.as_ref(), Input::Script(args), "run").await?;
    match called.output {
        Output::Script(Ok(json)) => {
            let value: Value = serde_json::from_str(&json).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "invalid_output",
                    format!("the val returned invalid JSON: {e}"),
                )
            })?;
            Ok(with_cpu_timing(
                Json(value).into_response(),
                called.cpu_time,
            ))
        }
        Output::Script(Err(message)) => Err(ApiError::bad_request("val_error", message)),
        Output::Http(_) => Err(ApiError::internal("HTTP output from a script val")),
    }
}

/// Tell the caller the CPU time of the call, as `Server-Timing: cpu;dur=<ms>`.
fn with_cpu_timing(mut response: Response, cpu_time: Duration) -> Response {
    let value = format!("cpu;dur={:.3}", cpu_time.as_secs_f64() * 1e3);
    if let Ok(value) = HeaderValue::try_from(value) {
        response
            .headers_mut()
            .append(HeaderName::from_static("server-timing"), value);
    }
    response
}

/// What a call answered, and the CPU time it used.
struct Called {
    output: Output,
    cpu_time: Duration,
}

/// The 429 for a call that found its share of the owner's slots full.
fn too_many_calls(full: FullShare) -> ApiError {
    let message = match full {
        FullShare::Others { open, reserved: 0 } => format!(
            "this val's owner already has {open} calls running, the most at once; retry shortly"
        ),
        FullShare::Others { open, reserved } => format!(
            "this val's owner already has {open} calls running for other callers, \
             the most they may have at once ({reserved} more are kept for the owner's \
             own calls); retry shortly"
        ),
        FullShare::All { total } => format!(
            "you already have {total} calls of your vals running, the most at once; \
             retry shortly"
        ),
    };
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_calls", message)
}

/// Run one call of `val` under the owner's concurrency limit, log it, and
/// map a failed call to the error its caller sees.
async fn call(
    app: &App,
    val: &ValRow,
    caller: Option<&Principal>,
    input: Input,
    trigger: &'static str,
) -> ApiResult<Called> {
    let by_owner = caller.is_some_and(|p| p.user_id == val.owner_id);
    let _slot = app
        .try_owner_slot(&val.owner_id, by_owner)
        .map_err(too_many_calls)?;
    let latest = val
        .latest
        .as_ref()
        .ok_or_else(|| ApiError::internal("val without version"))?;
    let scopes = Scopes::parse(&val.scopes).map_err(ApiError::internal)?;
    let timeout = app.config.limits.timeout;
    let now_ms = crate::db::now_ms();
    let (call_token, call_token_hash) = app.call_tokens.mint(CallToken {
        id: String::new(),
        owner_id: val.owner_id.clone(),
        username: val.owner_name.clone(),
        val_id: val.id.clone(),
        scopes,
        created_at_ms: now_ms,
        deadline: std::time::Instant::now() + timeout,
        expires_at_ms: now_ms + timeout.as_millis() as i64,
    });
    // Revoked when the call ends, however it ends.
    let _revoker = Revoker {
        tokens: app.call_tokens.clone(),
        hash: call_token_hash.clone(),
    };
    let caps = CallContext {
        owner_id: val.owner_id.clone(),
        val_id: val.id.clone(),
        scopes,
        call_token,
        call_token_hash,
        call_tokens: app.call_tokens.clone(),
        blobs: app.blobs.clone(),
        sqlite: app.sqlite.clone(),
        fetcher: app.fetcher.clone(),
        mailer: app.mailer.clone(),
        fetch_allowlist: val.fetch_allowlist.clone(),
        fetch_count: 0,
        deadline: std::time::Instant::now() + timeout,
        db: app.db.clone(),
        secrets: app.secrets.clone(),
        env_cache: None,
        denials: Vec::new(),
    };
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let hang_up = HangUpLog::arm(
        app,
        LogRecord {
            owner_id: val.owner_id.clone(),
            val_id: val.id.clone(),
            val_name: val.name.clone(),
            version: latest.version,
            trigger,
            time_ns: started.as_nanos() as i64,
            status: 0,
            duration_us: 0,
            cpu_us: 0,
            fuel_used: 0,
            stdout: String::new(),
            stderr: String::new(),
            error: None,
        },
    );
    let Outcome {
        result,
        fuel_used,
        duration,
        cpu_time,
        stdout,
        stderr,
        denials,
    } = app.runtime.invoke(&latest.sha256, caps, input).await;
    let result = result.map_err(call_error);
    let status = match &result {
        Ok(Output::Http(r)) => r.status,
        Ok(Output::Script(Ok(_))) => 200,
        Ok(Output::Script(Err(_))) => 400,
        Err((e, _)) => e.status.as_u16(),
    };
    let mut error = match &result {
        Err((_, detail)) => Some(detail.clone()),
        Ok(Output::Script(Err(m))) => Some(format!("the val returned an error: {m}")),
        _ => None,
    };
    if !denials.is_empty() {
        let note = format!("denied scopes: {}", denials.join(", "));
        error = Some(error.map_or(note.clone(), |e| format!("{e}; {note}")));
    }
    app.logs.record(LogRecord {
        status,
        duration_us: duration.as_micros() as i64,
        cpu_us: cpu_time.as_micros() as i64,
        fuel_used,
        stdout,
        stderr,
        error,
        ..hang_up.disarm()
    });
    let output = result.map_err(|(e, _)| e)?;
    Ok(Called { output, cpu_time })
}

/// The status logged for a call whose caller went away mid-call (nginx's
/// "client closed request"); no caller ever sees it.
const STATUS_CALLER_HUNG_UP: u16 = 499;

/// Logs a call that is dropped before it ends: when a caller hangs up,
/// its request future, and with it the call, is dropped mid-way.
struct HangUpLog<'a> {
    app: &'a App,
    record: Option<LogRecord>,
    started: std::time::Instant,
}

impl<'a> HangUpLog<'a> {
    fn arm(app: &'a App, record: LogRecord) -> Self {
        Self {
            app,
            record: Some(record),
            started: std::time::Instant::now(),
        }
    }

    /// The call ended: hand back the record for its caller to complete.
    fn disarm(mut self) -> LogRecord {
        self.record.take().expect("armed until disarmed")
    }
}

impl Drop for HangUpLog<'_> {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            self.app.logs.record(LogRecord {
                status: STATUS_CALLER_HUNG_UP,
                duration_us: self.started.elapsed().as_micros() as i64,
                error: Some(
                    "the caller hung up before the val answered; the call was stopped".into(),
                ),
                ..record
            });
        }
    }
}

/// The error the caller sees, and the detail for the owner's log. Trap
/// details stay in the log: they may reveal the val's internals.
fn call_error(e: CallError) -> (ApiError, String) {
    let (status, code, message) = match &e {
        CallError::Fuel(n) => (
            StatusCode::LOOP_DETECTED,
            "fuel_exhausted",
            format!("the val used up its fuel limit ({n} units of CPU work) and was stopped"),
        ),
        CallError::Deadline(d) => (
            StatusCode::GATEWAY_TIMEOUT,
            "deadline_exceeded",
            format!(
                "the val ran past its wall-clock limit of {} ms and was stopped",
                d.as_millis()
            ),
        ),
        CallError::Memory(n) => (
            StatusCode::INSUFFICIENT_STORAGE,
            "memory_limit_exceeded",
            format!("the val tried to use more than its memory limit of {n} bytes and was stopped"),
        ),
        CallError::ResponseTooLarge(n) => (
            StatusCode::BAD_GATEWAY,
            "response_too_large",
            format!("the val's response body is larger than the limit of {n} bytes"),
        ),
        CallError::Trap(_) => (
            StatusCode::BAD_GATEWAY,
            "val_crashed",
            "the val crashed (a panic or trap); its owner can read the details in the val's logs"
                .to_string(),
        ),
        CallError::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_busy",
            "the server is running as many vals as it can; retry shortly".to_string(),
        ),
        CallError::Internal(detail) => return (ApiError::internal(detail), detail.clone()),
    };
    let detail = match e {
        CallError::Trap(detail) => format!("{message}: {detail}"),
        _ => message.clone(),
    };
    (ApiError::new(status, code, message), detail)
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
