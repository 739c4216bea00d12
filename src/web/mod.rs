//! The web side (axum): group pages, receipts, health and metrics. Each page module owns its
//! routes; [`router`] merges them. The Telegram webhook route is mounted by `startup`.

use crate::app::Ctx;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(ctx)
}

/// 200 when the database answers, 503 otherwise.
async fn healthz(State(ctx): State<Ctx>) -> impl IntoResponse {
    if ctx.store.ping().await {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
    }
}

async fn metrics(State(ctx): State<Ctx>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ctx.metrics.render(),
    )
}
