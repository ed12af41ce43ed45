//! `GET /healthz`: the process answers. `GET /readyz`: it can serve, its
//! database answering. For load balancers and orchestrators; no token.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(ready))
}

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(Serialize, ToSchema)]
struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// Not ready: the error shape, with `status`.
#[derive(Serialize, ToSchema)]
struct Unready {
    #[schema(value_type = String, example = "unavailable")]
    status: &'static str,
    #[schema(value_type = String, example = "database_unavailable")]
    error: &'static str,
    #[schema(value_type = String)]
    message: &'static str,
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "getHealth",
    tag = "health",
    summary = "The process answers",
    responses((status = 200, description = "Alive", body = Health))
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "getReady",
    tag = "health",
    summary = "The server can serve: its database answers",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database does not answer", body = Unready),
    )
)]
async fn ready(State(app): State<App>) -> Response {
    let database = app.store.health.ping().await;
    match database {
        Ok(_) => Json(Health { status: "ready" }).into_response(),
        Err(e) => {
            tracing::error!("readiness: the database does not answer: {e:#}");
            let body = Unready {
                status: "unavailable",
                error: "database_unavailable",
                message: "the database does not answer; see the server's log",
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
