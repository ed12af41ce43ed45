//! `GET /v1/telemetry/logs`: the caller's call logs, in the
//! OpenTelemetry-like shape Val Town uses.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::params;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Authed;
use crate::app::App;
use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};

#[derive(Deserialize)]
struct LogQuery {
    limit: Option<i64>,
    direction: Option<String>,
    /// Unix nanoseconds or RFC 3339.
    start: Option<String>,
    end: Option<String>,
    /// Only this val's calls (Valbox's addition).
    val_id: Option<String>,
}

pub fn routes() -> Router<App> {
    Router::new().route("/v1/telemetry/logs", get(list_route))
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

async fn list_route(
    State(app): State<App>,
    Authed(who): Authed,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<Value>> {
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
    let owner = who.user_id.clone();
    let val_id = q.val_id.clone();
    let rows = app
        .db
        .call(move |conn| {
            let order = if ascending { "ASC" } else { "DESC" };
            let mut stmt = conn.prepare(&format!(
                "SELECT * FROM call_logs WHERE owner_id = ?1
                   AND (?2 IS NULL OR val_id = ?2)
                   AND (?3 IS NULL OR time_ns >= ?3)
                   AND (?4 IS NULL OR time_ns < ?4)
                 ORDER BY time_ns {order}, id {order} LIMIT ?5"
            ))?;
            let rows = stmt.query_map(params![owner, val_id, start, end, limit], row_to_json)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(
        json!({ "data": rows, "links": { "self": "/v1/telemetry/logs" } }),
    ))
}

fn row_to_json(r: &rusqlite::Row) -> rusqlite::Result<Value> {
    let status: u16 = r.get("status")?;
    let error: Option<String> = r.get("error")?;
    let trigger: String = r.get("trigger")?;
    let id: i64 = r.get("id")?;
    let body = match &error {
        Some(e) => e.clone(),
        None => format!("{trigger} call answered {status}"),
    };
    Ok(json!({
        "timeUnixNano": r.get::<_, i64>("time_ns")?.to_string(),
        "severityText": if error.is_some() { "ERROR" } else { "INFO" },
        "body": body,
        "traceId": format!("{id:032x}"),
        "attributes": {
            "val.id": r.get::<_, String>("val_id")?,
            "val.name": r.get::<_, String>("val_name")?,
            "val.version": r.get::<_, i64>("version")?,
            "trigger": trigger,
            "http.status": status,
            "duration_ms": r.get::<_, i64>("duration_us")? as f64 / 1000.0,
            "cpu_ms": r.get::<_, i64>("cpu_us")? as f64 / 1000.0,
            "fuel_used": r.get::<_, i64>("fuel_used")?,
            "stdout": r.get::<_, String>("stdout")?,
            "stderr": r.get::<_, String>("stderr")?,
            "error": error,
        },
    }))
}
