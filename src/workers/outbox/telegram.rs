//! Telegram rows: text messages (HTML, or plain when Telegram cannot parse ours) and
//! invoices, each answer classified into a [`Delivery`]. The worker owns the requests it
//! sends, so `workers` does not depend on the `telegram` adapter.

use super::email::send_email;
use super::{Delivery, OutboxWorker, SEND_TIMEOUT};
use crate::app::Ctx;
use crate::app::purchase::InvoiceSpec;
use crate::keyboard::{Action, Keyboard};
use crate::metrics::Metrics;
use crate::replies::strip_tags;
use crate::store::outbox::{Channel, DocumentSpec, OutboxRow};
use crate::workers::limiter::Lane;
use teloxide::payloads::SendInvoice;
use teloxide::prelude::*;
use teloxide::requests::JsonRequest;
use teloxide::types::{
    InlineKeyboardButton, InlineKeyboardMarkup, InputFile, LabeledPrice, LinkPreviewOptions,
    ParseMode,
};
use teloxide::{ApiError, RequestError};

/// One text message: where it goes, its words and buttons, and whether they are HTML.
struct Text<'a> {
    chat_id: i64,
    text: &'a str,
    keyboard: Option<&'a str>,
    html: bool,
}

/// Our keyboard as Telegram's inline keyboard (a URL button that does not parse is left out).
pub fn to_markup(kb: &Keyboard) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(kb.rows.iter().map(|row| {
        row.iter()
            .filter_map(|b| match &b.action {
                Action::Callback(data) => {
                    Some(InlineKeyboardButton::callback(b.text.clone(), data.clone()))
                }
                Action::Url(u) => u
                    .parse()
                    .ok()
                    .map(|u| InlineKeyboardButton::url(b.text.clone(), u)),
            })
            .collect::<Vec<_>>()
    }))
}

/// Messages carry links (group pages, receipts); previews of them would only add noise.
fn no_link_preview() -> LinkPreviewOptions {
    LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}

/// The one place an invoice becomes a `sendInvoice` request (queued by `app::reply::invoice`).
pub fn invoice_request(
    bot: &Bot,
    ctx: &Ctx,
    chat: ChatId,
    spec: &InvoiceSpec,
) -> JsonRequest<SendInvoice> {
    let prices: Vec<LabeledPrice> = spec
        .prices
        .iter()
        .map(|(label, amount)| {
            LabeledPrice::new(label.clone(), u32::try_from(*amount).unwrap_or(u32::MAX))
        })
        .collect();
    let mut req = bot.send_invoice(
        chat,
        &spec.title,
        &spec.description,
        &spec.payload,
        &spec.currency,
        prices,
    );
    // A forwarded copy shows a deep link into the group, not a Pay button.
    req = req.start_parameter(spec.start_parameter.clone());
    // Rows queued before `provider` existed: any currency but Stars went through the provider.
    if spec.provider || spec.currency != crate::domain::payment::STARS {
        req = req
            .provider_token(ctx.config.payment_provider_token.expose())
            .need_name(true)
            .need_shipping_address(spec.need_shipping)
            .is_flexible(spec.need_shipping);
    }
    req
}

impl OutboxWorker {
    /// Sends one row by its channel: an invoice, a text message or an email.
    pub(super) async fn attempt(&self, row: &OutboxRow, lane: Lane) -> Delivery {
        match &row.channel {
            Channel::Telegram {
                chat_id,
                invoice: Some(spec),
                ..
            } => self.send_invoice(*chat_id, spec).await,
            Channel::Telegram {
                chat_id,
                document: Some(spec),
                ..
            } => self.send_document(*chat_id, spec, &row.text).await,
            Channel::Telegram {
                chat_id, keyboard, ..
            } => {
                let text = Text {
                    chat_id: *chat_id,
                    text: &row.text,
                    keyboard: keyboard.as_deref(),
                    html: true,
                };
                self.send_telegram(text, lane).await
            }
            Channel::Email { .. } => {
                let unsubscribe = self.unsubscribe_url(row);
                send_email(&self.mailer, row, unsubscribe).await
            }
        }
    }

    /// Sends a text message, above the free rate (paid broadcast) when `lane` says so.
    async fn send_telegram(&self, msg: Text<'_>, lane: Lane) -> Delivery {
        let mut req = self
            .bot
            .send_message(ChatId(msg.chat_id), msg.text)
            .link_preview_options(no_link_preview());
        if msg.html {
            req = req.parse_mode(ParseMode::Html);
        }
        if let Some(kb) = msg.keyboard.and_then(Keyboard::from_json) {
            req = req.reply_markup(to_markup(&kb));
        }
        if lane == Lane::Paid {
            req = req.allow_paid_broadcast(true);
        }
        self.outcome(tokio::time::timeout(SEND_TIMEOUT, req.send()).await)
    }

    /// Sends a file (`/export`): the row's text as its content, named and captioned by `spec`.
    async fn send_document(&self, chat_id: i64, spec: &str, content: &str) -> Delivery {
        let spec: DocumentSpec = match serde_json::from_str(spec) {
            Ok(s) => s,
            Err(e) => return Delivery::Dead(format!("a document this version cannot read: {e}")),
        };
        let file = InputFile::memory(content.as_bytes().to_vec()).file_name(spec.file_name);
        let req = self
            .bot
            .send_document(ChatId(chat_id), file)
            .caption(spec.caption)
            .parse_mode(ParseMode::Html);
        self.outcome(tokio::time::timeout(SEND_TIMEOUT, req.send()).await)
    }

    /// Sends an invoice row (its spec as queued by `app::reply::invoice`).
    async fn send_invoice(&self, chat_id: i64, spec: &str) -> Delivery {
        let spec: InvoiceSpec = match serde_json::from_str(spec) {
            Ok(s) => s,
            Err(e) => return Delivery::Dead(format!("an invoice this version cannot read: {e}")),
        };
        let req = invoice_request(&self.bot, &self.ctx, ChatId(chat_id), &spec);
        let outcome = self.outcome(tokio::time::timeout(SEND_TIMEOUT, req.send()).await);
        if matches!(outcome, Delivery::Sent(_)) {
            tracing::info!(chat = chat_id, "invoice sent");
        }
        match outcome {
            Delivery::Unparseable(e) => Delivery::Dead(e),
            other => other,
        }
    }

    /// A send's answer (or its timeout) as a [`Delivery`].
    fn outcome(
        &self,
        answer: Result<Result<teloxide::types::Message, RequestError>, tokio::time::error::Elapsed>,
    ) -> Delivery {
        match answer {
            Err(_) => {
                // It may have arrived: the retry can show it twice.
                Metrics::inc(&self.ctx.metrics.outbox_ambiguous_total);
                Delivery::Retry("Telegram did not answer within 30 s".into())
            }
            Ok(Ok(msg)) => Delivery::Sent(Some(msg.id.0.to_string())),
            Ok(Err(e)) => classify(e),
        }
    }

    /// The same words as plain text, sent now.
    pub(super) async fn resend_plain(&mut self, row: &OutboxRow) -> Delivery {
        let Channel::Telegram {
            chat_id, keyboard, ..
        } = &row.channel
        else {
            return Delivery::Dead("HTML in an email row".into());
        };
        let plain = strip_tags(&row.text);
        let text = Text {
            chat_id: *chat_id,
            text: &plain,
            keyboard: keyboard.as_deref(),
            html: false,
        };
        match self.send_telegram(text, Lane::Free).await {
            Delivery::Unparseable(e) => Delivery::Dead(e),
            other => other,
        }
    }
}

/// What a Bot API error means for the row: wait, retry, give up, or mark the chat unreachable.
fn classify(e: RequestError) -> Delivery {
    match e {
        RequestError::RetryAfter(s) => Delivery::Throttled {
            secs: u64::from(s.seconds().max(1)),
            whole_bot: false,
        },
        RequestError::Api(
            ApiError::BotBlocked
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel,
        ) => Delivery::Unreachable(e.to_string()),
        RequestError::Api(
            ApiError::CantInitiateConversation
            | ApiError::ChatNotFound
            | ApiError::CantTalkWithBots,
        ) => Delivery::Unreachable(e.to_string()),
        RequestError::Api(ApiError::Unknown(ref s)) if s.contains("can't parse entities") => {
            Delivery::Unparseable(s.clone())
        }
        RequestError::Api(ApiError::Unknown(ref s))
            if s.starts_with("Forbidden: bot can't send messages") =>
        {
            // Seen to clear after minutes (RELIABILITY.md §1.5): retry, do not mark blocked.
            Delivery::Retry(s.clone())
        }
        RequestError::Api(ApiError::InvalidToken) => Delivery::Retry(e.to_string()),
        RequestError::Api(_) => Delivery::Dead(e.to_string()),
        RequestError::MigrateToChatId(_) => Delivery::Dead(e.to_string()),
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            Delivery::Retry(e.to_string())
        }
    }
}
