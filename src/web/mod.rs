//! The web side (axum): group pages and receipts ([`router`]; each page module owns its
//! routes), and health and metrics on the operator's own address ([`admin_router`]). The
//! Telegram webhook route is mounted by `startup`.

pub mod client;
pub mod error;
mod group_page;
mod qr;
mod receipt;
mod unsubscribe;
mod view;
pub mod webhook;

use crate::app::Ctx;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn router(ctx: Ctx) -> Router {
    let pages = Router::new()
        .merge(group_page::router())
        .merge(receipt::router())
        .merge(unsubscribe::router())
        .route("/static/style.css", get(stylesheet))
        .fallback(|| async { error::WebError::NotFound })
        .layer(axum::middleware::map_response(page_headers));
    Router::new().merge(pages).with_state(ctx)
}

/// The operator's side: `/healthz` and `/metrics`, served on `admin_addr` (loopback by
/// default), never beside the public pages, so counters and health are not the world's.
pub fn admin_router(ctx: Ctx) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(ctx)
}

/// The one stylesheet, compiled in.
async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/style.css"),
    )
}

const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Pages run no script and load nothing from elsewhere; the key in their URL is not sent on
/// to the sites they link to; seat counts are live, so nothing is cached.
async fn page_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
    }
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
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
