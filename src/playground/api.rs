//! The playground page and the JSON it polls and posts: the people and their chats (from the
//! emulator), the mailbox (from the mail folder), and the clock. Every action a pane offers is
//! an update the emulator sends to the bot, exactly as Telegram would.

use super::cast::{self, Person};
use super::mailbox;
use crate::app::Ctx;
use crate::clock::Clock;
use crate::emulator::{BotApiEmulator, ChatEntry, OrderInfo};
use axum::extract::{Path, State as Extract};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
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
    mail_dir: PathBuf,
    service_url: String,
    cast: Arc<Mutex<Vec<Person>>>,
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
            mail_dir,
            service_url,
            cast: Arc::new(Mutex::new(cast::starting_cast())),
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

pub fn router(state: State) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
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
        .with_state(state)
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
    let mail = mailbox::list(&s.mail_dir);
    let now = s.clock.now();
    Json(json!({
        "revision": s.emulator.revision(),
        "bot": {"username": s.ctx.bot_username, "id": crate::emulator::BOT_ID},
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

async fn say(Extract(s): Extract<State>, Json(b): Json<Say>) -> Result<Json<Value>, Problem> {
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

async fn press(Extract(s): Extract<State>, Json(b): Json<Press>) -> Result<Json<Value>, Problem> {
    let p = s.person(b.person)?;
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

async fn pay(Extract(s): Extract<State>, Json(b): Json<Pay>) -> Result<Json<Value>, Problem> {
    let p = s.person(b.person)?;
    let field = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_string();
    let address = crate::emulator::ShippingAddress {
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
}

async fn add_person(
    Extract(s): Extract<State>,
    Json(b): Json<AddPerson>,
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
    let person = cast::newcomer(&cast, name);
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
    Json(b): Json<Forward>,
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
    mailbox::read(&s.mail_dir, &id)
        .map(Json)
        .ok_or_else(|| Problem(StatusCode::NOT_FOUND, format!("no letter {id}")))
}
