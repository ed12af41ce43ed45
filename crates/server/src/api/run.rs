//! The Run API: `GET|POST /v1/run/{user}.{val}` calls a script val with
//! JSON arguments and answers its JSON result.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::JsonBody;
use super::invoke::{ValCaller, resolve, with_cpu_timing};
use crate::app::App;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::services::call::call;
use valbox_model::Principal;
use valbox_model::{Trigger, ValKind};
use valbox_runtime::{Input, Output};

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(run_get, run_post))
}

/// The arguments of a script val's call.
#[derive(Deserialize, ToSchema)]
#[schema(as = RunArgs)]
struct RunBody {
    /// Any JSON values, passed to the val's `run` in order.
    #[serde(default)]
    args: Vec<Value>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RunQuery {
    /// A URL-encoded JSON array of the arguments.
    #[param(example = "[1,2]")]
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

#[utoipa::path(
    post,
    path = "/v1/run/{target}",
    operation_id = "run",
    tag = "run",
    summary = "Call a script val; answers the JSON it returns",
    description = "Anyone may call a public or unlisted val; a private one only its owner.",
    params(("target" = String, Path, description = "`{user}.{val}`", example = "alice.echo", pattern = "^[a-z][a-z0-9_]{0,31}\\.[A-Za-z][A-Za-z0-9_-]{0,63}$")),
    request_body = RunBody,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "What the val returned", body = Value),
        (status = 400, description = "The val failed (`val_error`), or the target or arguments are not valid", body = ErrorResponse),
        (status = 404, description = "No such script val that you can call", body = ErrorResponse),
        (status = 502, description = "The val returned something that is not JSON", body = ErrorResponse),
    )
)]
async fn run_post(
    State(app): State<App>,
    ValCaller(caller): ValCaller,
    Path(target): Path<String>,
    JsonBody(body): JsonBody<RunBody>,
) -> ApiResult<Response> {
    run(&app, caller, &target, body.args).await
}

#[utoipa::path(
    get,
    path = "/v1/run/{target}",
    operation_id = "runByGet",
    tag = "run",
    summary = "Call a script val with arguments in the URL",
    description = "As `POST`; the URL must not hold a token.",
    params(
        ("target" = String, Path, description = "`{user}.{val}`", example = "alice.echo", pattern = "^[a-z][a-z0-9_]{0,31}\\.[A-Za-z][A-Za-z0-9_-]{0,63}$"),
        RunQuery,
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "What the val returned", body = Value),
        (status = 400, description = "The val failed (`val_error`), or the target or arguments are not valid", body = ErrorResponse),
        (status = 404, description = "No such script val that you can call", body = ErrorResponse),
        (status = 502, description = "The val returned something that is not JSON", body = ErrorResponse),
    )
)]
async fn run_get(
    State(app): State<App>,
    ValCaller(caller): ValCaller,
    Path(target): Path<String>,
    uri: axum::http::Uri,
    Query(q): Query<RunQuery>,
) -> ApiResult<Response> {
    super::invoke::refuse_token_in_url(&uri)?;
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
    let called = call(
        app,
        &val,
        caller.as_ref(),
        Input::Script(args),
        Trigger::Run,
    )
    .await?;
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
        Output::Http(_) | Output::Cron(_) | Output::Email(_) => Err(ApiError::internal(
            "another kind's output from a script val",
        )),
    }
}
