//! `GET /v1/telemetry/logs`: the caller's call logs, in the
//! OpenTelemetry-like shape Val Town uses.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Authed;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use valbox_model::Scope;
use valbox_store::LoggedCall;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LogParams {
    /// Records a page holds at most: 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `desc` (newest first, the default) or `asc`.
    #[param(pattern = "^(asc|desc)$")]
    direction: Option<String>,
    /// From this time: Unix nanoseconds or RFC 3339.
    #[param(value_type = Option<TimeParam>, inline)]
    start: Option<String>,
    /// Up to this time: Unix nanoseconds or RFC 3339.
    #[param(value_type = Option<TimeParam>, inline)]
    end: Option<String>,
    /// Only this val's calls (Valbox's addition).
    val_id: Option<String>,
}

/// A time in a query: Unix nanoseconds, or an RFC 3339 date-time. (Only
/// the document reads these types; `parse_time` reads the text.)
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum TimeParam {
    Nanos(#[schema(inline)] UnixNanos),
    Rfc3339(#[schema(inline)] DateTime),
}

#[derive(Deserialize, ToSchema)]
#[schema(pattern = "^-?[0-9]{1,18}$")]
#[allow(dead_code)]
struct UnixNanos(String);

#[derive(Deserialize, ToSchema)]
#[schema(format = DateTime)]
#[allow(dead_code)]
struct DateTime(String);

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(list_route))
}

fn parse_time(name: &str, text: &str) -> ApiResult<i64> {
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(ns);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos()).unwrap_or(if t.year() < 1970 { i64::MIN } else { i64::MAX }))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("`{name}` must be Unix nanoseconds or an RFC 3339 time like 2026-01-02T03:04:05Z"),
            )
        })
}

#[utoipa::path(
    get,
    path = "/v1/telemetry/logs",
    operation_id = "listLogs",
    tag = "logs",
    summary = "Your vals' call logs",
    description = "Needs `val:read`. A page holds at most `limit` records and about 4 MiB of text; `links.next` gives the rest.",
    params(LogParams),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of log records", body = LogPage))
)]
async fn list_route(
    State(app): State<App>,
    Authed(who): Authed,
    Query(q): Query<LogParams>,
) -> ApiResult<Json<LogPage>> {
    who.require(Scope::ValRead)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`limit` must be between 1 and 1000",
        ));
    }
    let ascending = match q.direction.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("`direction` must be `asc` or `desc`, not `{other}`"),
            ));
        }
    };
    let start = q
        .start
        .as_deref()
        .map(|t| parse_time("start", t))
        .transpose()?;
    let end = q.end.as_deref().map(|t| parse_time("end", t)).transpose()?;
    let query = valbox_store::LogQuery {
        owner_id: who.user_id.clone(),
        val_id: q.val_id.clone(),
        start,
        end,
        ascending,
        limit,
        page_bytes: PAGE_BYTES,
    };
    let (logged, cut) = app.store.logs.list(query).await?;
    let data: Vec<LogEntry> = logged.into_iter().map(LogEntry::from).collect();
    // Where the next page starts, when this one was cut short by bytes.
    let next = cut.then(|| data.last()).flatten().map(|last| {
        let (key, direction) = if ascending {
            ("start", "asc")
        } else {
            ("end", "desc")
        };
        let at = last.time_ns + i64::from(ascending);
        let mut url = format!("/v1/telemetry/logs?limit={limit}&direction={direction}&{key}={at}");
        if let Some(other) = if ascending { end } else { start } {
            let key = if ascending { "end" } else { "start" };
            url.push_str(&format!("&{key}={other}"));
        }
        if let Some(val_id) = &q.val_id {
            url.push_str(&format!("&val_id={}", urlencoding(val_id)));
        }
        url
    });
    Ok(Json(LogPage {
        data,
        links: Links {
            self_: "/v1/telemetry/logs",
            next,
        },
    }))
}

/// Bytes of log text one page carries at most (at least one record).
const PAGE_BYTES: i64 = 4 << 20;

fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// One call as a log record, in the OpenTelemetry-like shape.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LogRecord)]
struct LogEntry {
    #[serde(skip)]
    time_ns: i64,
    time_unix_nano: String,
    /// `INFO`, or `ERROR` for a call that failed.
    #[schema(value_type = String, example = "INFO")]
    severity_text: &'static str,
    body: String,
    trace_id: String,
    attributes: LogAttributes,
}

#[derive(Serialize, ToSchema)]
struct LogAttributes {
    #[serde(rename = "val.id")]
    val_id: String,
    #[serde(rename = "val.name")]
    val_name: String,
    #[serde(rename = "val.version")]
    val_version: i64,
    /// `http`, `run`, `api`, `cron`, `email`, ...
    #[schema(value_type = String)]
    trigger: &'static str,
    /// For a call by another val (`api`): that val, `owner/val`.
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<String>,
    #[serde(rename = "http.status")]
    http_status: u16,
    duration_ms: f64,
    cpu_ms: f64,
    fuel_used: u64,
    stdout: String,
    stderr: String,
    error: Option<String>,
}

/// A page of log records.
#[derive(Serialize, ToSchema)]
struct LogPage {
    data: Vec<LogEntry>,
    links: Links,
}

#[derive(Serialize, ToSchema)]
#[schema(as = LogLinks)]
struct Links {
    #[serde(rename = "self")]
    #[schema(value_type = String)]
    self_: &'static str,
    /// The rest, when the page was cut short by its size.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

impl From<LoggedCall> for LogEntry {
    fn from(logged: LoggedCall) -> Self {
        let r = logged.record;
        let body = match (&r.error, &r.caller) {
            (Some(e), _) => e.clone(),
            (None, Some(caller)) => format!("{} call by {caller} answered {}", r.trigger, r.status),
            (None, None) => format!("{} call answered {}", r.trigger, r.status),
        };
        LogEntry {
            time_ns: r.time_ns,
            time_unix_nano: r.time_ns.to_string(),
            severity_text: if r.error.is_some() { "ERROR" } else { "INFO" },
            body,
            trace_id: format!("{:032x}", logged.id),
            attributes: LogAttributes {
                val_id: r.val_id,
                val_name: r.val_name,
                val_version: r.version,
                trigger: r.trigger.as_str(),
                caller: r.caller,
                http_status: r.status,
                duration_ms: r.duration_us as f64 / 1000.0,
                cpu_ms: r.cpu_us as f64 / 1000.0,
                fuel_used: r.fuel_used,
                stdout: r.stdout,
                stderr: r.stderr,
                error: r.error,
            },
        }
    }
}
