//! The web side's one error type, turned into a response in one place ([`IntoResponse`]).
//!
//! Every page a person can land on is HTML from `templates/pages/`. An unknown key and a
//! malformed one get the very same 404 page, so a response never tells whether a key exists.

use crate::app::AppError;
use crate::app::guard::SlowDown;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No such group, receipt or page — or a key that could never be one.
    #[error("not found")]
    NotFound,
    /// The group exists but no longer takes purchases (expired, settled or cancelled).
    #[error("group closed")]
    Gone(Closed),
    /// Too many unknown keys from this client in the last minute.
    #[error("slow down for {retry_after} s")]
    SlowDown { retry_after: i64 },
    /// Our side failed; the cause goes to the log, not to the visitor.
    #[error("{0}")]
    Internal(String),
}

/// What the 410 page says about a closed group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub product: String,
    /// "This group purchase has closed", "… was cancelled".
    pub headline: String,
    /// One sentence on how it ended.
    pub detail: String,
}

#[derive(Template)]
#[template(path = "pages/message.html")]
struct MessagePage<'a> {
    title: &'a str,
    heading: &'a str,
    body: &'a str,
    product: Option<&'a str>,
}

impl From<SlowDown> for WebError {
    fn from(s: SlowDown) -> Self {
        WebError::SlowDown {
            retry_after: s.retry_after,
        }
    }
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> Self {
        WebError::Internal(format!("database: {e}"))
    }
}

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        WebError::Internal(format!("rendering a page: {e}"))
    }
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Gone(_) => StatusCode::GONE,
            WebError::SlowDown { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn page(&self) -> MessagePage<'_> {
        let (title, heading, body, product) = match self {
            WebError::NotFound => (
                "Page not found",
                "We can't find this page",
                "Please check the link with the person who sent it to you. Group links look like /g/ followed by 18 letters and digits.",
                None,
            ),
            WebError::Gone(c) => (
                "Group purchase closed",
                c.headline.as_str(),
                c.detail.as_str(),
                Some(c.product.as_str()),
            ),
            WebError::SlowDown { .. } => (
                "Too many attempts",
                "Please slow down",
                "This address tried many links that do not exist. Please wait a minute, then try again with the exact link you were sent.",
                None,
            ),
            WebError::Internal(_) => (
                "Something went wrong",
                "Something went wrong on our side",
                "Nothing was charged or lost. Please try again in a minute.",
                None,
            ),
        };
        MessagePage {
            title,
            heading,
            body,
            product,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::Internal(cause) = &self {
            tracing::error!(error = %cause, "a web page failed");
        }
        let html = self.page().render().unwrap_or_else(|e| {
            tracing::error!(error = %e, "rendering an error page");
            "<!doctype html><title>Error</title><p>Something went wrong.</p>".into()
        });
        let mut response = (self.status(), Html(html)).into_response();
        if let WebError::SlowDown { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
