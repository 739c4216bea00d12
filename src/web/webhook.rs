//! `POST /telegram/webhook`: Telegram delivers updates here in webhook mode. The update is
//! stored in the inbox and answered 200 at once; handling happens after (see
//! `telegram::ingest`). A request without the right secret header gets 401 and is dropped.

use crate::config::Secret;
use crate::telegram::ingest::{IngestError, Intake};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

pub const PATH: &str = "/telegram/webhook";
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// Updates are small; anything bigger is not from Telegram.
const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
struct Hook {
    intake: Intake,
    secret: Secret,
}

pub fn router(intake: Intake, secret: Secret) -> Router {
    Router::new()
        .route(PATH, post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Hook { intake, secret })
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn receive(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !same(given, hook.secret.expose().as_bytes()) {
        tracing::warn!(
            header_present = !given.is_empty(),
            "webhook call without the right secret refused"
        );
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    match hook.intake.take_raw(text).await {
        Ok(_) => StatusCode::OK,
        Err(IngestError::NotAnUpdate(e)) => {
            // Only where and what kind: serde's message may quote the body's values.
            tracing::warn!(kind = ?e.classify(), line = e.line(), column = e.column(), "webhook body is not an update");
            StatusCode::BAD_REQUEST
        }
        Err(IngestError::Db(e)) => {
            // Telegram retries non-2xx answers: the update is not lost.
            tracing::error!(error = %e, "could not store a webhook update");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_compare() {
        assert!(super::same(b"abc", b"abc"));
        assert!(!super::same(b"abc", b"abd"));
        assert!(!super::same(b"abc", b"ab"));
        assert!(!super::same(b"", b"a"));
    }
}
