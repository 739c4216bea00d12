//! The playground page and the JSON it polls and posts: the people and their chats (from the
//! emulator), the mailbox (from the mail folder), and the clock. Every action a pane offers is
//! an update the emulator sends to the bot, exactly as Telegram would.

mod actions;
mod links;

use super::cast::{self, Person};
use super::mailbox::Mailbox;
use crate::app::Ctx;
use crate::clock::Clock;
use actions::{add_person, forward, letter, pay, press, say};
use axum::extract::{FromRequest, Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bot_api_emulator::{BotApiEmulator, ChatEntry};
use links::{open_link, opened_link, shop};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PAGE: &str = include_str!("../../../static/playground/index.html");
const SCRIPT: &str = include_str!("../../../static/playground/playground.js");
const STYLE: &str = include_str!("../../../static/playground/playground.css");

/// How long a pane waits for the bot to answer a press or a payment step.
const ANSWER_WAIT: Duration = Duration::from_secs(20);
/// The most people at the table (panes stay readable).
const MAX_PEOPLE: usize = 8;

#[derive(Clone)]
pub struct State {
    emulator: Arc<BotApiEmulator>,
    ctx: Ctx,
    clock: Clock,
    mailbox: Arc<Mailbox>,
    service_url: String,
    cast: Arc<Mutex<Vec<Person>>>,
    /// Fetches the service's pages for the browser (redirects passed on, not followed).
    http: reqwest::Client,
}

impl State {
    pub fn new(
        emulator: Arc<BotApiEmulator>,
        ctx: Ctx,
        clock: Clock,
        mail_dir: PathBuf,
        service_url: String,
    ) -> State {
        State {
            emulator,
            ctx,
            clock,
            mailbox: Arc::new(Mailbox::new(mail_dir)),
            service_url,
            cast: Arc::new(Mutex::new(cast::starting_cast())),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    fn cast(&self) -> Vec<Person> {
        self.cast.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn person(&self, id: i64) -> Result<Person, Problem> {
        self.cast()
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| Problem::bad(format!("nobody with id {id} is playing")))
    }
}

/// Which browsers may use the page. On loopback only a `Host` naming loopback is served and
/// a POST's `Origin` must be the page itself, so a web page elsewhere cannot drive the
/// playground (DNS rebinding, cross-site forms).
#[derive(Clone)]
pub struct Guard {
    /// `host:port` values accepted; empty when bound beyond loopback (the operator chose to).
    hosts: Arc<Vec<String>>,
}

impl Guard {
    pub fn for_address(addr: SocketAddr) -> Guard {
        let port = addr.port();
        let hosts = if addr.ip().is_loopback() {
            vec![
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
            ]
        } else {
            Vec::new()
        };
        Guard {
            hosts: Arc::new(hosts),
        }
    }

    fn admits(&self, headers: &HeaderMap, method: &Method) -> Result<(), &'static str> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !self.hosts.is_empty() && !self.hosts.contains(&host) {
            return Err("this playground answers only to 127.0.0.1 or localhost");
        }
        if *method != Method::GET && *method != Method::HEAD {
            let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
            // Browsers send Origin with every POST; a page of another site has its own.
            if let Some(origin) = origin
                && origin
                    .to_ascii_lowercase()
                    .strip_prefix("http://")
                    .is_none_or(|o| o != host)
            {
                return Err("requests from other sites are refused");
            }
        }
        Ok(())
    }
}

pub fn router(state: State, guard: Guard) -> Router {
    Router::new()
        .route("/", get(page))
        .route(
            "/playground.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/playground.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/state", get(state_of_play))
        .route("/api/say", post(say))
        .route("/api/press", post(press))
        .route("/api/pay", post(pay))
        .route("/api/people", post(add_person))
        .route("/api/forward", post(forward))
        .route("/api/mail/{id}", get(letter))
        .route("/t.me/{bot}", get(open_link).post(opened_link))
        .fallback(shop)
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let guard = guard.clone();
                async move {
                    match guard.admits(req.headers(), req.method()) {
                        Ok(()) => next.run(req).await,
                        Err(why) => {
                            tracing::warn!(reason = why, "playground request refused");
                            Problem(StatusCode::FORBIDDEN, why.into()).into_response()
                        }
                    }
                }
            },
        ))
        .with_state(state)
}

/// The page, with a policy that lets only its own script run (mail HTML included).
async fn page() -> Response {
    let mut r = asset("text/html; charset=utf-8", PAGE);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; frame-src 'self'; form-action 'self'; base-uri 'none'",
        ),
    );
    r
}

/// A JSON body whose mistakes come back as the page's own `{"error": …}`.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(Problem(e.status(), e.body_text())),
        }
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// A refusal the pane shows as it is.
struct Problem(StatusCode, String);

impl Problem {
    fn bad(message: impl Into<String>) -> Problem {
        Problem(StatusCode::UNPROCESSABLE_ENTITY, message.into())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        tracing::info!(status = self.0.as_u16(), error = %self.1, "playground request refused");
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

async fn state_of_play(Extract(s): Extract<State>) -> Json<Value> {
    let people: Vec<Value> = s
        .cast()
        .into_iter()
        .map(|p| {
            let chat: Vec<Value> = s.emulator.chat(p.id).iter().map(entry_json).collect();
            let mut v = serde_json::to_value(&p).unwrap_or(Value::Null);
            v["chat"] = Value::Array(chat);
            v
        })
        .collect();
    let mail = s.mailbox.list();
    let now = s.clock.now();
    Json(json!({
        "revision": s.emulator.revision(),
        "bot": {"username": s.ctx.bot_username, "id": bot_api_emulator::BOT_ID},
        // The menu the bot registered with setMyCommands, as Telegram shows it.
        "commands": s.emulator.commands(),
        "service_url": s.service_url,
        "clock": {"now": now, "skipped_secs": now - chrono::Utc::now().timestamp()},
        "people": people,
        "mail": mail,
        "violations": s.emulator.violations(),
    }))
}

fn entry_json(e: &ChatEntry) -> Value {
    let m = &e.message;
    let mut v = json!({
        "id": e.message_id,
        "from_bot": e.from_bot,
        "date": m.get("date"),
        "edited": m.get("edit_date").is_some(),
        "parse_mode": e.parse_mode,
        "text": m.get("text").or_else(|| m.get("caption")),
        "keyboard": m.get("reply_markup").and_then(|r| r.get("inline_keyboard")),
    });
    if let Some(inv) = &e.invoice {
        v["invoice"] = json!({
            "title": inv.get("title"),
            "description": inv.get("description"),
            "currency": inv.get("currency"),
            "prices": inv.get("prices"),
            "need_name": inv.get("need_name"),
            "need_shipping_address": inv.get("need_shipping_address"),
            "is_flexible": inv.get("is_flexible"),
            "paid": e.paid,
        });
    }
    if let Some(p) = m.get("successful_payment") {
        v["payment"] =
            json!({"currency": p.get("currency"), "total_amount": p.get("total_amount")});
    }
    v
}
