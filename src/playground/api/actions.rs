//! What the page's people do: say something, press a button, pay, join the table, and
//! the operator's fast-forward and mail reader.

use super::{ANSWER_WAIT, Body, MAX_PEOPLE, Problem, State};
use crate::playground::cast;
use crate::playground::mailbox;
use axum::Json;
use axum::extract::{Path, State as Extract};
use axum::http::StatusCode;
use bot_api_emulator::OrderInfo;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub(super) struct Say {
    person: i64,
    text: String,
}

pub(super) async fn say(
    Extract(s): Extract<State>,
    Body(b): Body<Say>,
) -> Result<Json<Value>, Problem> {
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
pub(super) struct Press {
    person: i64,
    message_id: i64,
    data: String,
}

pub(super) async fn press(
    Extract(s): Extract<State>,
    Body(b): Body<Press>,
) -> Result<Json<Value>, Problem> {
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
pub(super) struct Pay {
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

pub(super) async fn pay(
    Extract(s): Extract<State>,
    Body(b): Body<Pay>,
) -> Result<Json<Value>, Problem> {
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
pub(super) struct AddPerson {
    name: String,
    #[serde(default)]
    email: Option<String>,
}

pub(super) async fn add_person(
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
pub(super) struct Forward {
    hours: i64,
}

/// Moves the service's clock forward and wakes the sweep, which settles what expired.
pub(super) async fn forward(
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

pub(super) async fn letter(
    Extract(s): Extract<State>,
    Path(id): Path<String>,
) -> Result<Json<mailbox::Letter>, Problem> {
    s.mailbox
        .read(&id)
        .map(Json)
        .ok_or_else(|| Problem(StatusCode::NOT_FOUND, format!("no letter {id}")))
}
