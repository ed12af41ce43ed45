//! `/v1/sqlite/execute` and `/v1/sqlite/batch` over the caller's own
//! database, in Val Town's shapes. Blobs travel as base64 strings.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rusqlite::types::Value as SqlValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use valbox_caps::Capabilities;
use valbox_caps::sqlite::Sqlite;
use valbox_caps::sqlite::store::{Args, Mode, ResultSet, SqlError, Statement};
use valbox_model::Principal;

use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::web::{Authed, JsonBody};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(execute))
        .routes(routes!(batch))
}

/// A statement: the SQL alone, or with arguments, positional (an array)
/// or named (an object). An argument is null, a boolean, a number or a
/// string.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = Statement)]
enum StatementJson {
    Sql(String),
    WithArgs {
        sql: String,
        #[serde(default)]
        #[schema(value_type = Option<ArgsSchema>)]
        args: Option<Value>,
    },
}

/// A statement's arguments: positional or named. (Only the document
/// reads this type; `statement` converts the JSON values.)
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schema(as = Args)]
enum ArgsSchema {
    Positional(Vec<ArgSchema>),
    Named(std::collections::HashMap<String, ArgSchema>),
}

/// One argument: null, a boolean, a number or a string.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schema(as = Arg)]
enum ArgSchema {
    Text(String),
    Number(f64),
    Bool(bool),
    Null,
}

fn from_sql(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::from(i),
        SqlValue::Real(f) => Value::from(f),
        SqlValue::Text(t) => Value::String(t),
        SqlValue::Blob(b) => Value::String(BASE64.encode(b)),
    }
}

fn statement(s: StatementJson) -> ApiResult<Statement> {
    let (sql, args) = match s {
        StatementJson::Sql(sql) => (sql, None),
        StatementJson::WithArgs { sql, args } => (sql, args),
    };
    let args =
        Args::from_json(args).map_err(|e| ApiError::bad_request("invalid_args", e.to_string()))?;
    Ok(Statement { sql, args })
}

/// A statement's result in Val Town's shape; blobs as base64 strings.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResultSet)]
struct ResultJson {
    columns: Vec<String>,
    /// Each column's declared type, or `""`.
    column_types: Vec<String>,
    /// Each value null, a number, or a string (text, or a blob in base64).
    rows: Vec<Vec<Value>>,
    rows_affected: u64,
    last_insert_rowid: Option<i64>,
}

impl From<ResultSet> for ResultJson {
    fn from(r: ResultSet) -> Self {
        Self {
            columns: r.columns,
            column_types: r.column_types,
            rows: r
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(from_sql).collect())
                .collect(),
            rows_affected: r.rows_affected,
            last_insert_rowid: r.last_insert_rowid,
        }
    }
}

fn api_error(e: SqlError) -> ApiError {
    match e {
        SqlError::Denied(d) => d.into(),
        SqlError::NeedsScope(scope) => ApiError::forbidden(format!(
            "this statement needs the `{scope}` scope, which this token lacks"
        )),
        SqlError::Sql(m) => ApiError::bad_request("sql_error", m),
        SqlError::Invalid(m) => ApiError::bad_request("invalid_statement", m),
        SqlError::Quota(m) => ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded", m),
        SqlError::TooLarge(m) => ApiError::bad_request("result_too_large", m),
        SqlError::Deadline(m) => ApiError::new(StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded", m),
        SqlError::Busy(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_busy", m),
        SqlError::Internal(m) => ApiError::internal(m),
        SqlError::Unavailable(m) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "sqlite_unavailable", m)
        }
    }
}

/// A turn among the caller's concurrent SQLite requests, or 429.
fn turn(caps: &Capabilities, who: &Principal) -> ApiResult<tokio::sync::OwnedSemaphorePermit> {
    let store = &caps.sqlite.store;
    store.try_turn(&who.user_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "you already have {} SQLite requests running; wait for one to finish and retry",
                store.concurrent_per_owner
            ),
        )
    })
}

/// An error answer; a busy database also says when to retry.
struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let busy = self.0.status == StatusCode::SERVICE_UNAVAILABLE;
        let mut resp = self.0.into_response();
        if busy {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// One statement to run (Val Town's shape).
#[derive(Deserialize, ToSchema)]
#[schema(as = SqliteExecute)]
struct ExecuteBody {
    statement: StatementJson,
}

#[utoipa::path(
    post,
    path = "/v1/sqlite/execute",
    operation_id = "sqliteExecute",
    tag = "sqlite",
    summary = "Run one statement on your database",
    description = "Needs `sqlite:read` for a read-only statement, else `sqlite:write`.",
    request_body = ExecuteBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Its result", body = ResultJson),
        (status = 429, description = "Too many of your SQLite requests at once", body = ErrorResponse),
        (status = 503, description = "The database is busy or does not answer; retry after `Retry-After`", body = ErrorResponse),
        (status = 504, description = "The statement ran past the time limit", body = ErrorResponse),
        (status = 507, description = "Your storage quota is full", body = ErrorResponse),
    )
)]
async fn execute(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
    JsonBody(body): JsonBody<ExecuteBody>,
) -> Result<Json<ResultJson>, Failure> {
    // Refused before taking a turn: a caller without the scope must not
    // hold up the owner's own requests.
    Sqlite::access(&mut who).map_err(api_error)?;
    let turn = turn(&caps, &who)?;
    let s = statement(body.statement)?;
    let bounds = caps.sqlite.rest_bounds();
    let result = caps
        .sqlite
        .execute(&mut who, s, bounds, Some(turn))
        .await
        .map_err(api_error)?;
    Ok(Json(result.into()))
}

/// Statements to run all or nothing (Val Town's shape).
#[derive(Deserialize, ToSchema)]
#[schema(as = SqliteBatch)]
struct BatchBody {
    statements: Vec<StatementJson>,
    /// `deferred` when left out.
    #[serde(default)]
    #[schema(value_type = Option<BatchMode>)]
    mode: Option<String>,
}

/// How a batch's transaction begins.
#[derive(ToSchema)]
#[allow(dead_code)] // only its schema: the handler parses the text
#[schema(rename_all = "lowercase")]
enum BatchMode {
    Write,
    Read,
    Deferred,
}

#[utoipa::path(
    post,
    path = "/v1/sqlite/batch",
    operation_id = "sqliteBatch",
    tag = "sqlite",
    summary = "Run statements in one transaction, all or nothing",
    description = "Needs `sqlite:read` or `sqlite:write` as each statement does.",
    request_body = BatchBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Each statement's result", body = Vec<ResultJson>),
        (status = 429, description = "Too many of your SQLite requests at once", body = ErrorResponse),
        (status = 503, description = "The database is busy or does not answer; retry after `Retry-After`", body = ErrorResponse),
        (status = 504, description = "The batch ran past the time limit", body = ErrorResponse),
        (status = 507, description = "Your storage quota is full", body = ErrorResponse),
    )
)]
async fn batch(
    State(caps): State<Arc<Capabilities>>,
    Authed(mut who): Authed,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<Json<Vec<ResultJson>>, Failure> {
    // Refused before taking a turn: a caller without the scope must not
    // hold up the owner's own requests.
    Sqlite::access(&mut who).map_err(api_error)?;
    let turn = turn(&caps, &who)?;
    let mode = match body.mode.as_deref() {
        None | Some("deferred") => Mode::Deferred,
        Some("write") => Mode::Write,
        Some("read") => Mode::Read,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_mode",
                format!("`mode` must be write, read or deferred, not `{other}`"),
            )
            .into());
        }
    };
    let statements = body
        .statements
        .into_iter()
        .map(statement)
        .collect::<ApiResult<Vec<_>>>()?;
    let bounds = caps.sqlite.rest_bounds();
    let results = caps
        .sqlite
        .batch(&mut who, statements, mode, bounds, Some(turn))
        .await
        .map_err(api_error)?;
    Ok(Json(results.into_iter().map(ResultJson::from).collect()))
}
