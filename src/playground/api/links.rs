//! Telegram links and the service's own pages, as a browser in the playground sees them.

use super::{Problem, State};
use crate::replies::esc;
use axum::Form;
use axum::extract::{Path, Query, Request, State as Extract};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct Start {
    #[serde(default)]
    start: Option<String>,
}

/// What a `t.me/<bot>?start=…` link does in the playground (the service's pages and mails
/// link there): Telegram would ask which account opens it; so does this page.
pub(super) async fn open_link(
    Extract(s): Extract<State>,
    Path(bot): Path<String>,
    Query(q): Query<Start>,
) -> Response {
    if !bot.eq_ignore_ascii_case(&s.ctx.bot_username) {
        return (
            StatusCode::NOT_FOUND,
            Html(format!(
                "<!doctype html><meta charset=utf-8><title>Not in the playground</title>\
                 <p>@{} is not the playground's bot. <a href=\"/\">Back to the playground</a></p>",
                esc(&bot)
            )),
        )
            .into_response();
    }
    let start = q.start.unwrap_or_default();
    let buttons: String = s
        .cast()
        .iter()
        .map(|p| {
            format!(
                "<button name=\"person\" value=\"{}\">{}</button>",
                p.id,
                esc(&p.name)
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\
         <title>Open @{bot} — groupbuy playground</title>\
         <link rel=stylesheet href=\"/playground.css\"></head>\
         <body class=\"open-link\"><form method=post class=\"chooser\">\
         <h1>Open @{bot}</h1><p>Telegram would open the bot in your account. Whose chat?</p>\
         <input type=hidden name=start value=\"{start}\">{buttons}\
         <p><a href=\"/\">Back to the playground</a></p></form></body></html>",
        bot = esc(&s.ctx.bot_username),
        start = esc(&start),
    ))
    .into_response()
}

#[derive(Deserialize)]
pub(super) struct Opened {
    person: i64,
    #[serde(default)]
    start: String,
}

/// The chosen person presses START: `/start <payload>` from their account, then back to the
/// page with their chat in view.
pub(super) async fn opened_link(
    Extract(s): Extract<State>,
    Path(bot): Path<String>,
    Form(f): Form<Opened>,
) -> Result<Redirect, Problem> {
    if !bot.eq_ignore_ascii_case(&s.ctx.bot_username) {
        return Err(Problem(
            StatusCode::NOT_FOUND,
            format!("@{bot} is not the playground's bot"),
        ));
    }
    let p = s.person(f.person)?;
    let start = f.start.trim();
    let text = if start.is_empty() {
        "/start".to_string()
    } else {
        format!("/start {start}")
    };
    s.emulator.user_says(&p.user(), &text);
    Ok(Redirect::to(&format!("/?chat={}", p.id)))
}

/// Everything else is the service's own web side (group pages, receipts, health), fetched
/// for the browser; Telegram links in its pages lead to [`open_link`].
pub(super) async fn shop(Extract(s): Extract<State>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "only pages to read here".into(),
        )
        .into_response();
    }
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let res = match s.http.get(format!("{}{path}", s.service_url)).send().await {
        Ok(r) => r,
        Err(e) => {
            return Problem(
                StatusCode::BAD_GATEWAY,
                format!("the service is not answering: {e}"),
            )
            .into_response();
        }
    };
    let status = res.status();
    let mut headers = HeaderMap::new();
    for name in [
        header::CONTENT_TYPE,
        header::CACHE_CONTROL,
        header::LOCATION,
        header::RETRY_AFTER,
    ] {
        if let Some(v) = res.headers().get(&name) {
            headers.insert(name, v.clone());
        }
    }
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    let body = match res.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return Problem(
                StatusCode::BAD_GATEWAY,
                format!("the service broke off: {e}"),
            )
            .into_response();
        }
    };
    let body = if is_html {
        String::from_utf8_lossy(&body)
            .replace("https://t.me/", "/t.me/")
            .into_bytes()
    } else {
        body.to_vec()
    };
    (status, headers, body).into_response()
}
