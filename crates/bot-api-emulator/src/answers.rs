//! Canned answers: Telegram-shaped results for each method, long polling of `getUpdates`,
//! and the messages the bot "sent" (kept so edits return the edited message).

use std::pin::pin;
use std::time::Duration;

use serde_json::{Value, json};

use super::http::{as_i64, now};
use super::schema::schema;
use super::{BOT_FIRST_NAME, BOT_ID, BOT_USERNAME, FakeState, Shared};

pub(super) async fn get_updates(shared: &Shared, params: &Value) -> Value {
    let offset = params.get("offset").and_then(as_i64).unwrap_or(0);
    let limit = params
        .get("limit")
        .and_then(as_i64)
        .unwrap_or(100)
        .clamp(1, 100) as usize;
    let timeout = params.get("timeout").and_then(as_i64).unwrap_or(0).max(0) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    {
        let mut st = shared.lock();
        let before = st.pending.len();
        if offset > 0 {
            st.pending
                .retain(|p| p.id >= offset || (p.forced && !p.delivered));
        } else if offset < 0 {
            let mut ids: Vec<i64> = st.pending.iter().map(|p| p.id).collect();
            ids.sort_unstable();
            let keep = (-offset) as usize;
            let cut = ids.len().saturating_sub(keep);
            let min_kept = ids.get(cut).copied().unwrap_or(i64::MAX);
            st.pending.retain(|p| p.id >= min_kept);
        }
        if st.pending.len() != before {
            drop(st);
            shared.changed.notify_waiters();
        }
    }
    loop {
        let mut notified = pin!(shared.updates.notified());
        notified.as_mut().enable();
        {
            let mut st = shared.lock();
            if !st.pending.is_empty() {
                st.pending.sort_by_key(|p| p.id);
                let batch: Vec<Value> = st
                    .pending
                    .iter_mut()
                    .take(limit)
                    .map(|p| {
                        p.delivered = true;
                        p.update.clone()
                    })
                    .collect();
                return Value::Array(batch);
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return json!([]);
        }
    }
}

pub(super) fn bot_user() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME})
}

pub(super) fn me() -> Value {
    json!({
        "id": BOT_ID,
        "is_bot": true,
        "first_name": BOT_FIRST_NAME,
        "username": BOT_USERNAME,
        "can_join_groups": true,
        "can_read_all_group_messages": false,
        "supports_inline_queries": false,
        "can_connect_to_business": false,
        "has_main_web_app": false
    })
}

fn chat_json(st: &FakeState, chat: &Value) -> (i64, Value) {
    if let Some(id) = as_i64(chat) {
        let c = if id > 0 {
            let user = st.users.get(&id);
            let mut c = json!({"id": id, "type": "private",
                "first_name": user.and_then(|u| u.get("first_name")).cloned().unwrap_or(json!(format!("User {id}")))});
            if let Some(u) = user.and_then(|u| u.get("username")) {
                c["username"] = u.clone();
            }
            c
        } else if id <= -1_000_000_000_000 {
            json!({"id": id, "type": "supergroup", "title": format!("Group {id}")})
        } else {
            json!({"id": id, "type": "group", "title": format!("Group {id}")})
        };
        (id, c)
    } else {
        let username = chat
            .as_str()
            .unwrap_or("@channel")
            .trim_start_matches('@')
            .to_owned();
        let id = -1_009_999_999_999;
        (
            id,
            json!({"id": id, "type": "channel", "title": username, "username": username}),
        )
    }
}

fn inline_markup(params: &Value) -> Option<Value> {
    params
        .get("reply_markup")
        .filter(|m| m.get("inline_keyboard").is_some())
        .cloned()
}

fn new_message(st: &mut FakeState, method: &str, params: &Value) -> Value {
    let (chat_id, chat) = chat_json(st, params.get("chat_id").unwrap_or(&Value::Null));
    let message_id = st.next_message_id;
    st.next_message_id += 1;
    let mut m = json!({"message_id": message_id, "date": now(), "chat": chat, "from": bot_user()});
    match method {
        "sendMessage" => {
            m["text"] = params.get("text").cloned().unwrap_or(json!(""));
            if let Some(e) = params.get("entities") {
                m["entities"] = e.clone();
            }
        }
        "sendInvoice" => {
            let total: i64 = params
                .get("prices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("amount").and_then(Value::as_i64))
                .sum();
            m["invoice"] = json!({
                "title": params.get("title").cloned().unwrap_or(json!("")),
                "description": params.get("description").cloned().unwrap_or(json!("")),
                "start_parameter": params.get("start_parameter").cloned().unwrap_or(json!("")),
                "currency": params.get("currency").cloned().unwrap_or(json!("")),
                "total_amount": total,
            });
        }
        "sendDocument" => {
            // Telegram keeps the file and answers with its ids; the caption comes back.
            m["document"] = json!({
                "file_id": format!("document-{message_id}"),
                "file_unique_id": format!("u{message_id}"),
            });
            if let Some(c) = params.get("caption") {
                m["caption"] = c.clone();
            }
        }
        _ => {
            // Other send* methods: a plain text message carrying the caption, enough for
            // teloxide to deserialize a `Message`.
            m["text"] = params
                .get("caption")
                .cloned()
                .unwrap_or(json!(format!("[{method}]")));
        }
    }
    if let Some(markup) = inline_markup(params) {
        m["reply_markup"] = markup;
    }
    if method == "sendInvoice" {
        st.invoices.insert((chat_id, message_id), params.clone());
    }
    remember_parse_mode(st, (chat_id, message_id), params);
    st.messages.insert((chat_id, message_id), m.clone());
    st.transcript.push((chat_id, message_id, true));
    m
}

fn edit_message(st: &mut FakeState, method: &str, params: &Value) -> Value {
    if params.get("inline_message_id").is_some() {
        return json!(true);
    }
    let (chat_id, chat) = chat_json(st, params.get("chat_id").unwrap_or(&Value::Null));
    let message_id = params.get("message_id").and_then(as_i64).unwrap_or(0);
    // Lenient: a message the fake never sent (e.g. from an injected callback query) is
    // synthesised rather than answered with "message to edit not found".
    let mut m = st.messages.get(&(chat_id, message_id)).cloned().unwrap_or_else(|| {
        json!({"message_id": message_id, "date": now(), "chat": chat, "from": bot_user(), "text": ""})
    });
    m["edit_date"] = json!(now());
    match method {
        "editMessageText" => {
            m["text"] = params.get("text").cloned().unwrap_or(json!(""));
            match params.get("entities") {
                Some(e) => m["entities"] = e.clone(),
                None => {
                    m.as_object_mut().map(|o| o.remove("entities"));
                }
            }
        }
        "editMessageCaption" => m["caption"] = params.get("caption").cloned().unwrap_or(json!("")),
        _ => {}
    }
    match inline_markup(params) {
        Some(markup) => m["reply_markup"] = markup,
        None => {
            m.as_object_mut().map(|o| o.remove("reply_markup"));
        }
    }
    if method == "editMessageText" {
        remember_parse_mode(st, (chat_id, message_id), params);
    }
    st.messages.insert((chat_id, message_id), m.clone());
    m
}

fn remember_parse_mode(st: &mut FakeState, key: (i64, i64), params: &Value) {
    match params.get("parse_mode").and_then(Value::as_str) {
        Some(mode) => st.parse_modes.insert(key, mode.to_owned()),
        None => st.parse_modes.remove(&key),
    };
}

pub(super) fn answer(st: &mut FakeState, method: &str, params: &Value) -> Value {
    match method {
        "getMe" => me(),
        "getWebhookInfo" => json!({
            "url": st.webhook.as_ref().and_then(|w| w.get("url")).cloned().unwrap_or(json!("")),
            "has_custom_certificate": false,
            "pending_update_count": st.pending.len(),
        }),
        "setWebhook" => {
            let url = params.get("url").and_then(Value::as_str).unwrap_or("");
            st.webhook = (!url.is_empty()).then(|| params.clone());
            json!(true)
        }
        "deleteWebhook" => {
            st.webhook = None;
            if params.get("drop_pending_updates").and_then(Value::as_bool) == Some(true) {
                st.pending.clear();
            }
            json!(true)
        }
        "setMyCommands" => {
            st.commands = params.get("commands").cloned().unwrap_or(json!([]));
            json!(true)
        }
        "deleteMyCommands" => {
            st.commands = json!([]);
            json!(true)
        }
        "getMyCommands" => st.commands.clone(),
        "deleteMessage" => {
            if let (Some(c), Some(m)) = (
                params.get("chat_id").and_then(as_i64),
                params.get("message_id").and_then(as_i64),
            ) {
                st.messages.remove(&(c, m));
            }
            json!(true)
        }
        "editMessageText" | "editMessageReplyMarkup" | "editMessageCaption" => {
            edit_message(st, method, params)
        }
        _ => {
            let returns = schema()
                .method(method)
                .map(|d| d.returns.clone())
                .unwrap_or_default();
            match returns.first().map(String::as_str) {
                Some("Message") => new_message(st, method, params),
                Some("User") => me(),
                Some(r) if r.starts_with("Array of") => json!([]),
                _ => json!(true),
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_answers_are_valid_per_schema_and_teloxide() {
        assert!(schema().validate_type("User", &me()).is_empty());
        let me: teloxide::types::Me = serde_json::from_value(me()).expect("Me");
        assert_eq!(me.username(), BOT_USERNAME);

        let mut st = FakeState {
            next_message_id: 1,
            ..Default::default()
        };
        let m = answer(
            &mut st,
            "sendInvoice",
            &json!({"chat_id": 1001, "title": "T", "description": "D", "payload": "p", "currency": "EUR",
                    "prices": [{"label": "a", "amount": 100}, {"label": "b", "amount": 50}]}),
        );
        assert!(schema().validate_type("Message", &m).is_empty(), "{m}");
        let m: teloxide::types::Message = serde_json::from_value(m).expect("invoice Message");
        assert_eq!(m.invoice().map(|i| i.total_amount), Some(150));

        let m = answer(
            &mut st,
            "sendMessage",
            &json!({"chat_id": -5, "text": "hi", "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]}}),
        );
        assert!(schema().validate_type("Message", &m).is_empty(), "{m}");
        let parsed: teloxide::types::Message =
            serde_json::from_value(m.clone()).expect("text Message");
        assert!(parsed.reply_markup().is_some());

        let e = answer(
            &mut st,
            "editMessageText",
            &json!({"chat_id": -5, "message_id": m["message_id"], "text": "edited"}),
        );
        assert_eq!(e["text"], "edited");
        assert!(e.get("reply_markup").is_none());
        let _: teloxide::types::Message = serde_json::from_value(e).expect("edited Message");

        let w = answer(&mut st, "getWebhookInfo", &json!({}));
        let _: teloxide::types::WebhookInfo = serde_json::from_value(w).expect("WebhookInfo");
    }
}
