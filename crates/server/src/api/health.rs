//! `GET /healthz`: the process answers. `GET /readyz`: it can serve, its
//! database answering. For load balancers and orchestrators; no token.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::App;

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(ready))
}

async fn ready(State(app): State<App>) -> (StatusCode, Json<Value>) {
    let database = app.store.health.ping().await;
    match database {
        Ok(_) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(e) => {
            tracing::error!("readiness: the database does not answer: {e:#}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "error": "database_unavailable",
                    "message": "the database does not answer; see the server's log",
                })),
            )
        }
    }
}
