//! The playground page and the JSON it polls and posts: the people and their chats (from the
//! emulator), the mailbox (from the mail folder), and the clock. Every action a pane offers is
//! an update the emulator sends to the bot, exactly as Telegram would.

use super::cast::{self, Person};
use super::mailbox::{self, Mailbox};
use crate::app::Ctx;
use crate::clock::Clock;
use crate::replies::esc;
use axum::extract::{FromRequest, Path, Query, Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use bot_api_emulator::{BotApiEmulator, ChatEntry, OrderInfo};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PAGE: &str = include_str!("../../static/playground/index.html");
const SCRIPT: &str = include_str!("../../static/playground/playground.js");
const STYLE: &str = include_str!("../../static/playground/playground.css");

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

#[derive(Deserialize)]
struct Say {
    person: i64,
    text: String,
}

async fn say(Extract(s): Extract<State>, Body(b): Body<Say>) -> Result<Json<Value>, Problem> {
    let p = s.person(b.person)?;
    let text = b.text.trim();
    if text.is_empty() {
        return Err(Problem::bad("type a message first"));
    }
    if text.chars().count() > 4096 {
        return Err(Problem::bad(
            "Telegram messages hold at most 4096 characters",
        ));
    }
    let id = s.emulator.user_says(&p.user(), text);
    Ok(Json(json!({"message_id": id})))
}

#[derive(Deserialize)]
struct Press {
    person: i64,
    message_id: i64,
    data: String,
}

async fn press(Extract(s): Extract<State>, Body(b): Body<Press>) -> Result<Json<Value>, Problem> {
    let p = s.person(b.person)?;
    let has_button = s
        .emulator
        .message(p.id, b.message_id)
        .and_then(|m| m["reply_markup"]["inline_keyboard"].as_array().cloned())
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .any(|button| button["callback_data"].as_str() == Some(&b.data));
    if !has_button {
        return Err(Problem::bad("there is no such button in this chat"));
    }
    let toast = s
        .emulator
        .user_presses(&p.user(), b.message_id, &b.data, ANSWER_WAIT)
        .await;
    Ok(Json(json!({"toast": toast})))
}

#[derive(Deserialize)]
struct Pay {
    person: i64,
    message_id: i64,
    name: Option<String>,
    phone_number: Option<String>,
    email: Option<String>,
    country_code: Option<String>,
    state: Option<String>,
    city: Option<String>,
    street_line1: Option<String>,
    street_line2: Option<String>,
    post_code: Option<String>,
}

async fn pay(Extract(s): Extract<State>, Body(b): Body<Pay>) -> Result<Json<Value>, Problem> {
    let p = s.person(b.person)?;
    let field = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_string();
    let address = bot_api_emulator::ShippingAddress {
        country_code: field(&b.country_code).to_ascii_uppercase(),
        state: field(&b.state),
        city: field(&b.city),
        street_line1: field(&b.street_line1),
        street_line2: field(&b.street_line2),
        post_code: field(&b.post_code),
    };
    let has_address = !address.city.is_empty() || !address.street_line1.is_empty();
    let order = OrderInfo {
        name: Some(field(&b.name)).filter(|n| !n.is_empty()),
        phone_number: Some(field(&b.phone_number)).filter(|n| !n.is_empty()),
        email: Some(field(&b.email)).filter(|n| !n.is_empty()),
        shipping_address: has_address.then_some(address),
    };
    match s
        .emulator
        .pay(&p.user(), b.message_id, order, ANSWER_WAIT)
        .await
    {
        Ok(paid) => Ok(Json(json!({
            "paid": paid.total_amount,
            "currency": paid.currency,
            "shipping_option": paid.shipping_option,
        }))),
        Err(e) => Err(Problem::bad(e.to_string())),
    }
}

#[derive(Deserialize)]
struct AddPerson {
    name: String,
    #[serde(default)]
    email: Option<String>,
}

async fn add_person(
    Extract(s): Extract<State>,
    Body(b): Body<AddPerson>,
) -> Result<Json<Value>, Problem> {
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(Problem::bad("a name of 1 to 64 characters, please"));
    }
    let mut cast = s.cast.lock().unwrap_or_else(|p| p.into_inner());
    if cast.len() >= MAX_PEOPLE {
        return Err(Problem::bad(format!(
            "the table seats {MAX_PEOPLE}; that is everyone"
        )));
    }
    let email = b.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    if let Some(e) = email
        && crate::domain::email::EmailAddress::parse(e).is_err()
    {
        return Err(Problem::bad(format!("{e} is not an email address")));
    }
    let mut person = cast::newcomer(&cast, name);
    person.email = email.map(str::to_ascii_lowercase);
    cast.push(person.clone());
    Ok(Json(serde_json::to_value(person).unwrap_or(Value::Null)))
}

#[derive(Deserialize)]
struct Forward {
    hours: i64,
}

/// Moves the service's clock forward and wakes the sweep, which settles what expired.
async fn forward(
    Extract(s): Extract<State>,
    Body(b): Body<Forward>,
) -> Result<Json<Value>, Problem> {
    if !(1..=24 * 365).contains(&b.hours) {
        return Err(Problem::bad("fast-forward by 1 hour to 1 year"));
    }
    s.clock.advance(b.hours * 3600);
    s.ctx.sweep_wake.notify_one();
    s.ctx.outbox_wake.notify_one();
    tracing::info!(hours = b.hours, "playground clock moved forward");
    Ok(Json(json!({"now": s.clock.now()})))
}

async fn letter(
    Extract(s): Extract<State>,
    Path(id): Path<String>,
) -> Result<Json<mailbox::Letter>, Problem> {
    s.mailbox
        .read(&id)
        .map(Json)
        .ok_or_else(|| Problem(StatusCode::NOT_FOUND, format!("no letter {id}")))
}

#[derive(Deserialize)]
struct Start {
    #[serde(default)]
    start: Option<String>,
}

/// What a `t.me/<bot>?start=…` link does in the playground (the service's pages and mails
/// link there): Telegram would ask which account opens it; so does this page.
async fn open_link(
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
struct Opened {
    person: i64,
    #[serde(default)]
    start: String,
}

/// The chosen person presses START: `/start <payload>` from their account, then back to the
/// page with their chat in view.
async fn opened_link(
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
async fn shop(Extract(s): Extract<State>, req: Request) -> Response {
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
