//! The user's side of the emulator: what a person in a private chat with the bot sees (the
//! transcript, with edits applied) and does (types, presses a button, pays an invoice). Each
//! action becomes the update Telegram would send; paying runs Telegram's whole exchange —
//! `shipping_query` (flexible invoices) → `pre_checkout_query` → `successful_payment` —
//! and stops where Telegram would when the bot says no.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::updates::{
    OrderInfo, TgUser, callback_query, pre_checkout_query, shipping_query, successful_payment,
    text_message,
};
use super::{BotApiEmulator, Call};

static NEXT_PAYMENT: AtomicU64 = AtomicU64::new(1);

/// One message of a private chat, as the person sees it now.
#[derive(Debug, Clone)]
pub struct ChatEntry {
    pub message_id: i64,
    /// `true` for the bot's messages, `false` for the person's own.
    pub from_bot: bool,
    /// The Message object, edits applied (`text`, `invoice`, `reply_markup`, …).
    pub message: Value,
    /// For an invoice: what the bot asked for in `sendInvoice` (prices, `need_*`, …).
    pub invoice: Option<Value>,
    /// How the bot asked Telegram to read the text (`HTML`, `MarkdownV2`), if at all.
    pub parse_mode: Option<String>,
    /// For an invoice: paid through this emulator.
    pub paid: bool,
}

/// A payment Telegram completed: the bot accepted the checkout.
#[derive(Debug, Clone)]
pub struct Payment {
    pub telegram_payment_charge_id: String,
    pub currency: String,
    /// Goods plus the delivery option chosen, in minor units.
    pub total_amount: i64,
    /// The delivery option the bot offered and the person took, if the invoice was flexible.
    pub shipping_option: Option<Value>,
}

/// Why a payment did not complete, in the words Telegram's payment form would show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayError {
    #[error("there is no invoice with that message id in this chat")]
    NoInvoice,
    #[error("the invoice needs {0}")]
    Missing(&'static str),
    #[error("the bot refused the address: {0}")]
    ShippingRefused(String),
    #[error("the bot refused the payment: {0}")]
    CheckoutRefused(String),
    #[error("the bot did not answer the {0} in time (Telegram cancels the payment)")]
    NoAnswer(&'static str),
    #[error("this invoice is already paid")]
    AlreadyPaid,
}

impl BotApiEmulator {
    /// The private chat of `chat_id` (a user id), oldest first; deleted messages are gone.
    pub fn chat(&self, chat_id: i64) -> Vec<ChatEntry> {
        let st = self.shared.lock();
        st.transcript
            .iter()
            .filter(|(chat, _, _)| *chat == chat_id)
            .filter_map(|&(chat, id, from_bot)| {
                Some(ChatEntry {
                    message_id: id,
                    from_bot,
                    message: st.messages.get(&(chat, id))?.clone(),
                    invoice: st.invoices.get(&(chat, id)).cloned(),
                    parse_mode: st.parse_modes.get(&(chat, id)).cloned(),
                    paid: st.paid.contains(&(chat, id)),
                })
            })
            .collect()
    }

    /// A number that grows whenever anything happened (a call, an update): pollers compare it.
    pub fn revision(&self) -> u64 {
        let st = self.shared.lock();
        st.calls.len() as u64 + st.next_update_id.max(0) as u64
    }

    /// In the playground nothing is asserted on drop; violations are shown instead.
    pub fn set_strict(&self, strict: bool) {
        self.shared.lock().lax = !strict;
    }

    /// The person types `text` in their chat with the bot; returns the message id.
    pub fn user_says(&self, user: &TgUser, text: &str) -> i64 {
        let update = text_message(user, text);
        let id = update["message"]["message_id"].as_i64().unwrap_or(0);
        self.inject(update);
        id
    }

    /// The person presses the inline button carrying `data` under the bot's `message_id`;
    /// returns what the bot answered the press with (`answerCallbackQuery`'s text, shown by
    /// Telegram as a toast), waiting up to `timeout` for it.
    pub async fn user_presses(
        &self,
        user: &TgUser,
        message_id: i64,
        data: &str,
        timeout: Duration,
    ) -> Option<String> {
        let mut update = callback_query(user, message_id, data);
        // The real message the button sits under, as Telegram sends it.
        if let Some(m) = self.message(user.id, message_id) {
            update["callback_query"]["message"] = m;
        }
        let id = update["callback_query"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.inject(update);
        let answer = self
            .answer_to("answerCallbackQuery", "callback_query_id", &id, timeout)
            .await?;
        answer.str_param("text").map(str::to_string)
    }

    /// The person pays the invoice `message_id` of their chat with `order` (name, address…).
    /// Telegram's exchange, step by step, each waiting up to `timeout` for the bot's answer.
    /// An invoice is paid once: a second attempt, or one while the first is under way, is
    /// refused as Telegram's payment form would.
    pub async fn pay(
        &self,
        user: &TgUser,
        message_id: i64,
        order: OrderInfo,
        timeout: Duration,
    ) -> Result<Payment, PayError> {
        let key = (user.id, message_id);
        let invoice = {
            let mut st = self.shared.lock();
            let invoice = st.invoices.get(&key).cloned().ok_or(PayError::NoInvoice)?;
            if st.paid.contains(&key) || !st.paying.insert(key) {
                return Err(PayError::AlreadyPaid);
            }
            invoice
        };
        let result = self.pay_invoice(user, &invoice, order, timeout).await;
        let mut st = self.shared.lock();
        st.paying.remove(&key);
        if result.is_ok() {
            st.paid.insert(key);
        }
        result
    }

    /// Telegram's payment exchange for one invoice: the form, the shipping query (flexible
    /// invoices), the pre-checkout query, then the successful payment.
    async fn pay_invoice(
        &self,
        user: &TgUser,
        invoice: &Value,
        order: OrderInfo,
        timeout: Duration,
    ) -> Result<Payment, PayError> {
        let form = Form::new(invoice);
        let asked = form.fill(&order)?;
        let order_info = (asked != OrderInfo::default()).then(|| asked.json());
        let n = NEXT_PAYMENT.fetch_add(1, Ordering::Relaxed);
        let mut total = sum_prices(&invoice["prices"]);
        let shipping_option = match &asked.shipping_address {
            Some(addr) if form.flag("is_flexible") => {
                let option = self.ship_to(user, &form.payload, addr, n, timeout).await?;
                total += sum_prices(&option["prices"]);
                Some(option).filter(|o| !o.is_null())
            }
            _ => None,
        };
        let option_id = shipping_option
            .as_ref()
            .and_then(|o| o["id"].as_str())
            .map(str::to_string);
        let qid = format!("{}{:08}9", user.id, n);
        let mut query = pre_checkout_query(user, &qid, &form.currency, total, &form.payload, None);
        attach(&mut query["pre_checkout_query"], &order_info, &option_id);
        self.inject(query);
        let answer = self
            .answer_to(
                "answerPreCheckoutQuery",
                "pre_checkout_query_id",
                &qid,
                timeout,
            )
            .await
            .ok_or(PayError::NoAnswer("pre-checkout query"))?;
        if answer.params["ok"] != json!(true) {
            return Err(PayError::CheckoutRefused(error_message(&answer)));
        }
        let charge = format!("emu-charge-{}-{n}", user.id);
        let provider = format!("emu-provider-{n}");
        let (currency, payload) = (&form.currency, &form.payload);
        let mut paid = successful_payment(user, currency, total, payload, &charge, &provider, None);
        attach(
            &mut paid["message"]["successful_payment"],
            &order_info,
            &option_id,
        );
        self.inject(paid);
        Ok(Payment {
            telegram_payment_charge_id: charge,
            currency: form.currency,
            total_amount: total,
            shipping_option,
        })
    }

    /// The shipping query of a flexible invoice: the bot's first option, as the form
    /// preselects it (`Value::Null` when it offers none).
    async fn ship_to(
        &self,
        user: &TgUser,
        payload: &str,
        addr: &super::ShippingAddress,
        n: u64,
        timeout: Duration,
    ) -> Result<Value, PayError> {
        let qid = format!("{}{:08}", user.id, n);
        self.inject(shipping_query(user, &qid, payload, addr.clone()));
        let answer = self
            .answer_to("answerShippingQuery", "shipping_query_id", &qid, timeout)
            .await
            .ok_or(PayError::NoAnswer("shipping query"))?;
        if answer.params["ok"] != json!(true) {
            return Err(PayError::ShippingRefused(error_message(&answer)));
        }
        Ok(answer.params["shipping_options"]
            .get(0)
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// The bot's successful call of `method` whose `field` is `id`.
    async fn answer_to(
        &self,
        method: &str,
        field: &str,
        id: &str,
        timeout: Duration,
    ) -> Option<Call> {
        self.wait_for_call(
            |c| {
                !c.failed && c.method.eq_ignore_ascii_case(method) && c.str_param(field) == Some(id)
            },
            timeout,
        )
        .await
    }
}

/// Telegram's payment form for an invoice: what it asks for and insists on.
struct Form<'a> {
    invoice: &'a Value,
    payload: String,
    currency: String,
}

impl<'a> Form<'a> {
    fn new(invoice: &'a Value) -> Self {
        Self {
            invoice,
            payload: invoice["payload"].as_str().unwrap_or_default().to_string(),
            currency: invoice["currency"].as_str().unwrap_or_default().to_string(),
        }
    }

    fn flag(&self, name: &str) -> bool {
        self.invoice.get(name).and_then(Value::as_bool) == Some(true)
    }

    /// What the form passes on of `order`: only what the invoice asked for, and only once
    /// every field it insists on is filled in.
    fn fill(&self, order: &OrderInfo) -> Result<OrderInfo, PayError> {
        let needs_address = self.flag("need_shipping_address") || self.flag("is_flexible");
        let filled = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if needs_address && !order.shipping_address.as_ref().is_some_and(complete) {
            return Err(PayError::Missing(
                "a shipping address (country, city, street and post code)",
            ));
        }
        for (flag, value, what) in [
            ("need_name", &order.name, "a name"),
            ("need_phone_number", &order.phone_number, "a phone number"),
            ("need_email", &order.email, "an email address"),
        ] {
            if self.flag(flag) && !filled(value) {
                return Err(PayError::Missing(what));
            }
        }
        Ok(OrderInfo {
            name: order.name.clone().filter(|_| self.flag("need_name")),
            phone_number: order
                .phone_number
                .clone()
                .filter(|_| self.flag("need_phone_number")),
            email: order.email.clone().filter(|_| self.flag("need_email")),
            shipping_address: order.shipping_address.clone().filter(|_| needs_address),
        })
    }
}

/// Country, city, street and post code: what Telegram's address form requires.
fn complete(a: &super::ShippingAddress) -> bool {
    a.country_code.trim().len() == 2
        && [&a.city, &a.street_line1, &a.post_code]
            .iter()
            .all(|f| !f.trim().is_empty())
}

/// `order_info` and `shipping_option_id`, as PreCheckoutQuery and SuccessfulPayment carry them.
fn attach(target: &mut Value, order_info: &Option<Value>, option_id: &Option<String>) {
    if let Some(o) = order_info {
        target["order_info"] = o.clone();
    }
    if let Some(id) = option_id {
        target["shipping_option_id"] = json!(id);
    }
}

fn sum_prices(prices: &Value) -> i64 {
    prices
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("amount").and_then(Value::as_i64))
        .sum()
}

fn error_message(answer: &Call) -> String {
    answer
        .str_param("error_message")
        .unwrap_or("no reason given")
        .to_string()
}
