//! `/unsubscribe/{token}`: "don't email me again". The token is the address's keyed hash
//! (see `Ctx::unsubscribe_url`), so neither the link nor the suppression list names the
//! address. A GET only shows a page with one button, since mail scanners follow links; the
//! POST (the button, or a mail client's RFC 8058 one-click POST, which carries no cookies)
//! adds the address to the suppression list that every later invitation, campaign and
//! reminder honours. A token that could never be one is the plain 404.

use super::error::WebError;
use crate::app::Ctx;
use crate::store::mailing;
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

pub fn router() -> Router<Ctx> {
    Router::new().route("/unsubscribe/{token}", get(offer).post(unsubscribe))
}

#[derive(Template)]
#[template(path = "pages/unsubscribe.html")]
struct UnsubscribePage<'a> {
    heading: &'a str,
    body: &'a str,
    offer: bool,
    action: String,
}

/// A keyed hash: 64 lowercase hex digits.
fn well_formed(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The page's one form posts back to this very address.
fn with_form_allowed(html: String) -> Response {
    let mut r = Html(html).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

async fn offer(Path(token): Path<String>) -> Result<Response, WebError> {
    if !well_formed(&token) {
        return Err(WebError::NotFound);
    }
    let page = UnsubscribePage {
        heading: "Email invitations",
        body: crate::replies::UNSUBSCRIBE_OFFER,
        offer: true,
        action: format!("/unsubscribe/{token}"),
    };
    Ok(with_form_allowed(page.render()?))
}

async fn unsubscribe(
    State(ctx): State<Ctx>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    if !well_formed(&token) {
        return Err(WebError::NotFound);
    }
    let mut tx = ctx.store.write().await?;
    let added = mailing::suppress(&mut tx, &token, ctx.now()).await?;
    tx.commit().await?;
    if added {
        tracing::info!("an address unsubscribed from invitations");
    }
    let page = UnsubscribePage {
        heading: "You will not be emailed again",
        body: crate::replies::UNSUBSCRIBE_DONE,
        offer: false,
        action: String::new(),
    };
    Ok(with_form_allowed(page.render()?))
}
