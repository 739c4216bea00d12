//! Builders of realistic Telegram update JSON (what Telegram would send), for
//! `BotApiEmulator::inject` and `post_to_webhook`.

use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Map, Value, json};

use super::answers::bot_user;
use super::http::now;

static NEXT_USER_MESSAGE_ID: AtomicI64 = AtomicI64::new(1_000_000);
static NEXT_QUERY_ID: AtomicI64 = AtomicI64::new(1);

/// A Telegram user on the person's side of a chat (never the bot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TgUser {
    pub id: i64,
    pub first_name: String,
    pub username: Option<String>,
}

impl TgUser {
    /// A user without a username.
    pub fn new(id: i64, first_name: &str) -> TgUser {
        TgUser {
            id,
            first_name: first_name.to_owned(),
            username: None,
        }
    }
    /// The same user with a username (without the `@`).
    pub fn with_username(mut self, username: &str) -> TgUser {
        self.username = Some(username.to_owned());
        self
    }
    /// The user's `User` object (not a bot, language `en`).
    pub fn json(&self) -> Value {
        let mut u = json!({"id": self.id, "is_bot": false, "first_name": self.first_name, "language_code": "en"});
        if let Some(n) = &self.username {
            u["username"] = json!(n);
        }
        u
    }
    /// The user's private `Chat` with the bot.
    pub fn private_chat(&self) -> Value {
        let mut c = json!({"id": self.id, "type": "private", "first_name": self.first_name});
        if let Some(n) = &self.username {
            c["username"] = json!(n);
        }
        c
    }
}

/// A shipping address a payer gives an invoice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShippingAddress {
    pub country_code: String,
    pub state: String,
    pub city: String,
    pub street_line1: String,
    pub street_line2: String,
    pub post_code: String,
}

impl ShippingAddress {
    /// The `ShippingAddress` object.
    pub fn json(&self) -> Value {
        json!({
            "country_code": self.country_code,
            "state": self.state,
            "city": self.city,
            "street_line1": self.street_line1,
            "street_line2": self.street_line2,
            "post_code": self.post_code,
        })
    }
}

/// What a payer fills in on an invoice: name, phone, email and shipping address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderInfo {
    pub name: Option<String>,
    pub phone_number: Option<String>,
    pub email: Option<String>,
    pub shipping_address: Option<ShippingAddress>,
}

impl OrderInfo {
    /// The `OrderInfo` object, with only the fields that are set.
    pub fn json(&self) -> Value {
        let mut o = Map::new();
        if let Some(v) = &self.name {
            o.insert("name".into(), json!(v));
        }
        if let Some(v) = &self.phone_number {
            o.insert("phone_number".into(), json!(v));
        }
        if let Some(v) = &self.email {
            o.insert("email".into(), json!(v));
        }
        if let Some(a) = &self.shipping_address {
            o.insert("shipping_address".into(), a.json());
        }
        Value::Object(o)
    }
}

fn user_message_id() -> i64 {
    NEXT_USER_MESSAGE_ID.fetch_add(1, Ordering::Relaxed)
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn message_body(user: &TgUser, chat: Value, text: &str) -> Value {
    let mut m = json!({
        "message_id": user_message_id(),
        "from": user.json(),
        "chat": chat,
        "date": now(),
        "text": text,
    });
    if text.starts_with('/') {
        let cmd = text.split_whitespace().next().unwrap_or(text);
        m["entities"] = json!([{"type": "bot_command", "offset": 0, "length": utf16_len(cmd)}]);
    }
    m
}

/// A text message from `user` in the private chat with the bot. Commands (`/start x`) carry a
/// `bot_command` entity like real Telegram.
pub fn text_message(user: &TgUser, text: &str) -> Value {
    json!({"message": message_body(user, user.private_chat(), text)})
}

/// A text message from `user` in a group (`chat_id` < 0).
pub fn group_text_message(user: &TgUser, chat_id: i64, title: &str, text: &str) -> Value {
    let chat = json!({"id": chat_id, "type": if chat_id <= -1_000_000_000_000 { "supergroup" } else { "group" }, "title": title});
    json!({"message": message_body(user, chat, text)})
}

/// A press on an inline button with `data` under the bot's message `message_id` in the user's
/// private chat.
pub fn callback_query(user: &TgUser, message_id: i64, data: &str) -> Value {
    let qid = NEXT_QUERY_ID.fetch_add(1, Ordering::Relaxed);
    json!({"callback_query": {
        "id": format!("{}{qid:06}", user.id),
        "from": user.json(),
        "message": {
            "message_id": message_id,
            "from": bot_user(),
            "chat": user.private_chat(),
            "date": now(),
            "text": "…",
        },
        "chat_instance": format!("{}", 8_000_000_000_000_000_000i64 + user.id),
        "data": data,
    }})
}

/// A `pre_checkout_query` update for a payment of `total_amount` minor units.
pub fn pre_checkout_query(
    user: &TgUser,
    id: &str,
    currency: &str,
    total_amount: i64,
    payload: &str,
    order_info: Option<OrderInfo>,
) -> Value {
    let mut q = json!({
        "id": id,
        "from": user.json(),
        "currency": currency,
        "total_amount": total_amount,
        "invoice_payload": payload,
    });
    if let Some(o) = order_info {
        q["order_info"] = o.json();
    }
    json!({"pre_checkout_query": q})
}

/// A `shipping_query` update asking the bot for shipping options to `address`.
pub fn shipping_query(user: &TgUser, id: &str, payload: &str, address: ShippingAddress) -> Value {
    json!({"shipping_query": {
        "id": id,
        "from": user.json(),
        "invoice_payload": payload,
        "shipping_address": address.json(),
    }})
}

/// The service message in the private chat that confirms a payment.
pub fn successful_payment(
    user: &TgUser,
    currency: &str,
    total_amount: i64,
    payload: &str,
    telegram_payment_charge_id: &str,
    provider_payment_charge_id: &str,
    shipping_address: Option<ShippingAddress>,
) -> Value {
    let mut p = json!({
        "currency": currency,
        "total_amount": total_amount,
        "invoice_payload": payload,
        "telegram_payment_charge_id": telegram_payment_charge_id,
        "provider_payment_charge_id": provider_payment_charge_id,
    });
    if let Some(a) = shipping_address {
        p["order_info"] = json!({"shipping_address": a.json()});
    }
    json!({"message": {
        "message_id": user_message_id(),
        "from": user.json(),
        "chat": user.private_chat(),
        "date": now(),
        "successful_payment": p,
    }})
}

/// The service message Telegram sends to the buyer's chat when a payment is refunded.
pub fn refunded_payment(
    user: &Value,
    currency: &str,
    total_amount: i64,
    payload: &str,
    telegram_payment_charge_id: &str,
) -> Value {
    let id = user["id"].as_i64().unwrap_or(0);
    json!({"message": {
        "message_id": user_message_id(),
        "from": user,
        "chat": {"id": id, "type": "private", "first_name": user["first_name"].clone()},
        "date": now(),
        "refunded_payment": {
            "currency": currency,
            "total_amount": total_amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": telegram_payment_charge_id,
        },
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::schema;
    use teloxide::types::{Update, UpdateKind};

    fn alice() -> TgUser {
        TgUser::new(1001, "Alice").with_username("alice")
    }

    fn addr() -> ShippingAddress {
        ShippingAddress {
            country_code: "DE".into(),
            state: "BE".into(),
            city: "Berlin".into(),
            street_line1: "Unter den Linden 1".into(),
            street_line2: "".into(),
            post_code: "10117".into(),
        }
    }

    fn parse(mut v: Value) -> Update {
        v["update_id"] = json!(1);
        if let Some(m) = v.get("message")
            && let Err(e) = serde_json::from_value::<teloxide::types::Message>(m.clone())
        {
            panic!("teloxide cannot parse Message {m}: {e}");
        }
        let errs = schema().validate_type("Update", &v);
        assert!(
            errs.is_empty(),
            "builder JSON is not a valid Update per schema: {errs:#?}"
        );
        // NB: `serde_json::from_value::<Update>` always yields `UpdateKind::Error` (teloxide's
        // flattened `UpdateKind` visitor only handles borrowed keys); teloxide itself parses
        // response text, so parse from a string like it does.
        let u = serde_json::from_str::<Update>(&v.to_string())
            .unwrap_or_else(|e| panic!("teloxide cannot parse {v}: {e}"));
        assert!(
            !matches!(u.kind, UpdateKind::Error(_)),
            "teloxide could not parse the update kind of {v}"
        );
        u
    }

    #[test]
    fn builders_deserialize_as_teloxide_updates() {
        let u = parse(text_message(&alice(), "/start abc_123"));
        let UpdateKind::Message(m) = u.kind else {
            panic!("not a message: {u:?}")
        };
        assert_eq!(m.text(), Some("/start abc_123"));
        assert_eq!(m.chat.id.0, 1001);
        assert_eq!(m.entities().map(|e| e.len()), Some(1));

        let u = parse(group_text_message(&alice(), -100200, "Friends", "hi"));
        assert!(matches!(u.kind, UpdateKind::Message(ref m) if m.chat.is_group()));

        let u = parse(callback_query(&alice(), 5, "join:7"));
        let UpdateKind::CallbackQuery(q) = u.kind else {
            panic!("not a callback query")
        };
        assert_eq!(q.data.as_deref(), Some("join:7"));
        assert_eq!(q.regular_message().map(|m| m.id.0), Some(5));

        let info = OrderInfo {
            name: Some("Alice A".into()),
            email: Some("a@example.com".into()),
            shipping_address: Some(addr()),
            ..Default::default()
        };
        let u = parse(pre_checkout_query(
            &alice(),
            "pcq-1",
            "EUR",
            1999,
            "order:1",
            Some(info),
        ));
        let UpdateKind::PreCheckoutQuery(q) = u.kind else {
            panic!("not a pre-checkout query")
        };
        assert_eq!(q.total_amount, 1999);
        assert_eq!(q.order_info.email.as_deref(), Some("a@example.com"));
        parse(pre_checkout_query(
            &alice(),
            "pcq-2",
            "XTR",
            50,
            "order:2",
            None,
        ));

        let u = parse(shipping_query(&alice(), "sq-1", "order:1", addr()));
        let UpdateKind::ShippingQuery(q) = u.kind else {
            panic!("not a shipping query")
        };
        assert_eq!(q.shipping_address.city, "Berlin");

        let u = parse(successful_payment(
            &alice(),
            "EUR",
            1999,
            "order:1",
            "tg-charge-1",
            "prov-charge-1",
            Some(addr()),
        ));
        let UpdateKind::Message(m) = u.kind else {
            panic!("not a message")
        };
        let p = m.successful_payment().expect("successful_payment");
        assert_eq!(p.invoice_payload, "order:1");
        assert_eq!(
            p.order_info
                .shipping_address
                .as_ref()
                .map(|a| a.post_code.as_str()),
            Some("10117")
        );
        parse(successful_payment(
            &alice(),
            "XTR",
            50,
            "order:2",
            "tg-charge-2",
            "",
            None,
        ));

        let u = parse(refunded_payment(
            &alice().json(),
            "XTR",
            50,
            "order:2",
            "tg-charge-2",
        ));
        let UpdateKind::Message(m) = u.kind else {
            panic!("not a message")
        };
        let teloxide::types::MessageKind::RefundedPayment(r) = m.kind else {
            panic!("not a refunded payment: {m:?}")
        };
        assert_eq!(
            r.refunded_payment.telegram_payment_charge_id.0,
            "tg-charge-2"
        );
        assert_eq!(r.refunded_payment.total_amount, 50);
    }
}
