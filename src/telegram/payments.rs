//! The buy flow in Telegram: buttons, invoices, `pre_checkout_query` (answered within 10 s),
//! `shipping_query`, and `successful_payment`.

use super::handlers::{reply, reply_error};
use super::{HandlerResult, person, update_id};
use crate::app::purchase::{self, Address, Payment, Recorded, Step};
use crate::app::reply::{invoice, key, send};
use crate::app::{AppError, Ctx};
use crate::keyboard::Press;
use crate::replies::UserError;
use std::time::Duration;
use teloxide::prelude::*;
use teloxide::types::{LabeledPrice, ShippingAddress, ShippingOption};

/// Telegram wants the pre-checkout answer within 10 s; we answer "try again" at 8 s.
const PRE_CHECKOUT_BUDGET: Duration = Duration::from_secs(8);

pub async fn on_callback(bot: Bot, q: CallbackQuery, ctx: Ctx, upd: Update) -> HandlerResult {
    let who = person(&q.from);
    // Stop the button's spinner first; the answer itself comes as a message.
    if let Err(e) = bot.answer_callback_query(q.id.clone()).await {
        tracing::warn!(error = %e, "could not answer a callback query");
    }
    let chat = ChatId(who.id.get());
    let id = update_id(&upd);
    let step = match q.data.as_deref().and_then(Press::decode) {
        Some(Press::Regroup { key }) => {
            // "Buy together again": the new group's confirmation is queued with it.
            return match crate::app::regroup::regroup(&ctx, id, &who, None, &key).await {
                Ok(_) => Ok(()),
                Err(e) => reply_error(&ctx, id, chat, &who, "regroup button", &e).await,
            };
        }
        Some(Press::MyGroups { page }) => {
            return match crate::app::queries::my_groups(&ctx, &who, page).await {
                Ok(g) => {
                    let kb = crate::app::views::my_groups_keyboard(&g);
                    reply(&ctx, id, chat, g.html(), kb).await
                }
                Err(e) => reply_error(&ctx, id, chat, &who, "mygroups button", &e).await,
            };
        }
        Some(press) => purchase::press(&ctx, &who, &press).await,
        None => Err(UserError::StaleButton.into()),
    };
    match step {
        Ok(Step::Message(html, kb)) => reply(&ctx, id, chat, html, Some(kb)).await?,
        Ok(Step::Invoice(spec)) => {
            // Sent by the outbox worker (`workers::outbox::invoice_request`); if Telegram
            // refuses it, the worker tells the person (UserError::InvoiceRefused).
            send(&ctx, &invoice(key(chat.0, id), chat.0, &spec)?).await?
        }
        Err(e) => reply_error(&ctx, id, chat, &who, "button", &e).await?,
    }
    Ok(())
}

pub async fn on_pre_checkout(bot: Bot, q: PreCheckoutQuery, ctx: Ctx) -> HandlerResult {
    let who = person(&q.from);
    let check = purchase::pre_checkout(
        &ctx,
        &who,
        &q.currency,
        i64::from(q.total_amount),
        &q.invoice_payload,
    );
    let verdict = match tokio::time::timeout(PRE_CHECKOUT_BUDGET, check).await {
        Ok(v) => v,
        // Telegram gives up at 10 s: say no in time, with words the buyer can act on.
        Err(_) => Err(UserError::CheckoutBusy.into()),
    };
    match &verdict {
        Ok(()) => {
            bot.answer_pre_checkout_query(q.id.clone(), true).await?;
            tracing::info!(user = %who.id, "pre-checkout approved");
        }
        Err(e) => {
            super::handlers::note_failure(&ctx, &who, "pre-checkout", e);
            bot.answer_pre_checkout_query(q.id.clone(), false)
                .error_message(e.user_error().plain())
                .await?;
        }
    }
    Ok(())
}

fn address(a: &ShippingAddress) -> Address {
    let country = serde_json::to_value(a.country_code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    Address {
        country_code: country,
        state: a.state.clone(),
        city: a.city.clone(),
        street_line1: a.street_line1.clone(),
        street_line2: a.street_line2.clone(),
        post_code: a.post_code.clone(),
    }
}

pub async fn on_shipping(bot: Bot, q: ShippingQuery, ctx: Ctx) -> HandlerResult {
    let who = person(&q.from);
    match purchase::shipping_options(&ctx, &address(&q.shipping_address)) {
        Ok(options) => {
            let options = options.into_iter().map(|(id, title, fee)| {
                ShippingOption::new(
                    id,
                    title.clone(),
                    vec![LabeledPrice::new(title, u32::try_from(fee).unwrap_or(0))],
                )
            });
            bot.answer_shipping_query(q.id.clone(), true)
                .shipping_options(options)
                .await?;
        }
        Err(e) => {
            tracing::info!(user = %who.id, code = e.code(), "shipping address refused");
            bot.answer_shipping_query(q.id.clone(), false)
                .error_message(e.plain())
                .await?;
        }
    }
    Ok(())
}

/// Telegram refunded a Stars payment (`refunded_payment`): ours through refundStarPayment,
/// or one it made itself. The purchase is reversed and the refund closed, once.
pub async fn on_refunded_payment(msg: Message, ctx: Ctx, upd: Update) -> HandlerResult {
    let (Some(from), teloxide::types::MessageKind::RefundedPayment(r)) =
        (msg.from.as_ref(), &msg.kind)
    else {
        return Ok(());
    };
    let r = &r.refunded_payment;
    let who = person(from);
    let charge = r.telegram_payment_charge_id.0.clone();
    match crate::app::refund::reported(
        &ctx,
        update_id(&upd),
        who.id,
        &r.currency,
        i64::from(r.total_amount),
        &charge,
    )
    .await
    {
        Ok(Ok(outcome)) => {
            tracing::info!(user = %who.id, %charge, ?outcome, "Telegram reported a refund");
            Ok(())
        }
        Ok(Err(refusal)) => {
            crate::metrics::Metrics::inc(&ctx.metrics.bad_input_total);
            tracing::warn!(user = %who.id, %charge, reason = %refusal, "a refunded_payment changed nothing");
            Ok(())
        }
        // Stays in the inbox and is tried again: a refund is never lost.
        Err(e) => Err(Box::new(e)),
    }
}

pub async fn on_successful_payment(msg: Message, ctx: Ctx, upd: Update) -> HandlerResult {
    let (Some(from), Some(sp)) = (msg.from.as_ref(), msg.successful_payment()) else {
        return Ok(());
    };
    let who = person(from);
    let pay = Payment {
        currency: sp.currency.clone(),
        total: i64::from(sp.total_amount),
        payload: sp.invoice_payload.clone(),
        charge_id: sp.telegram_payment_charge_id.0.clone(),
        provider_charge_id: sp.provider_payment_charge_id.clone(),
        recipient: sp.order_info.name.clone(),
        address: sp.order_info.shipping_address.as_ref().map(address),
    };
    // The money was taken: keep trying to record it rather than lose it to a passing fault.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match purchase::record(&ctx, update_id(&upd), &who, &pay).await {
            Ok(Recorded::Duplicate) => {
                tracing::info!(charge = %pay.charge_id, "duplicate successful_payment ignored");
                break;
            }
            Ok(Recorded::New { .. }) => break,
            Err(AppError::Db(e)) if attempt < 5 => {
                tracing::warn!(charge = %pay.charge_id, attempt, error = %e, "recording a payment failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => {
                // The money was taken: never drop it. Failing here leaves the update pending
                // in the inbox, and it is tried again until it is recorded.
                tracing::error!(charge = %pay.charge_id, error = %e, "payment not recorded yet; it stays in the inbox and is retried");
                return Err(Box::new(e));
            }
        }
    }
    Ok(())
}
