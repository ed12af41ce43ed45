//! `GET /metrics`: the server's metrics for Prometheus. Served only on the
//! listener `--metrics-listen` names, never beside the public API: bind it
//! to an address only the scraper reaches.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::App;
use crate::metrics::{self, Snapshot};

pub fn router(app: App) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(app)
}

async fn scrape(State(app): State<App>) -> impl IntoResponse {
    let (loaded_components, loaded_bytes) = app.runtime.loaded();
    let outbox_depth = app.store.outbox.queued().await.unwrap_or_else(|e| {
        tracing::warn!("metrics: counting the email outbox: {e:#}");
        -1
    });
    let text = app.metrics.render(&Snapshot {
        loaded_components,
        loaded_bytes,
        outbox_depth,
        log_records_dropped: app.logs.dropped_total(),
    });
    ([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
}
