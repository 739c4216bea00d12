//! Telegram Stars payments as Telegram keeps them: every `successful_payment` in `XTR` that
//! passes through the emulator is a charge that `refundStarPayment` can refund once. A refund
//! is answered `True` and followed by the `refunded_payment` service message in the buyer's
//! chat, as Telegram sends it; a second refund of the charge is refused with
//! `CHARGE_ALREADY_REFUNDED`, an unknown charge (or another user's) with `CHARGE_NOT_FOUND`.

use super::updates::refunded_payment;
use super::{FakeState, Shared};
use serde_json::{Value, json};

/// A Stars charge the emulator saw paid.
#[derive(Debug, Clone)]
pub(super) struct StarCharge {
    user: Value,
    total: i64,
    payload: String,
    refunded: bool,
}

/// Remembers the Stars charge an injected update carries, if any.
pub(super) fn remember(st: &mut FakeState, update: &Value) {
    let message = &update["message"];
    let paid = &message["successful_payment"];
    if paid["currency"] != json!("XTR") {
        return;
    }
    let Some(charge) = paid["telegram_payment_charge_id"].as_str() else {
        return;
    };
    st.star_charges
        .entry(charge.to_string())
        .or_insert_with(|| StarCharge {
            user: message["from"].clone(),
            total: paid["total_amount"].as_i64().unwrap_or(0),
            payload: paid["invoice_payload"].as_str().unwrap_or("").to_string(),
            refunded: false,
        });
}

/// `refundStarPayment`: `Ok(true)`, or the description of Telegram's 400.
pub(super) fn refund(shared: &Shared, params: &Value) -> Result<Value, String> {
    let user_id = params.get("user_id").and_then(super::as_i64);
    let charge = params
        .get("telegram_payment_charge_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut st = shared.lock();
    let Some(paid) = st
        .star_charges
        .get_mut(charge)
        .filter(|c| c.user["id"].as_i64() == user_id)
    else {
        return Err("Bad Request: CHARGE_NOT_FOUND".into());
    };
    if paid.refunded {
        return Err("Bad Request: CHARGE_ALREADY_REFUNDED".into());
    }
    paid.refunded = true;
    let update = refunded_payment(&paid.user, "XTR", paid.total, &paid.payload, charge);
    super::queue_update(&mut st, update);
    drop(st);
    shared.updates.notify_waiters();
    Ok(json!(true))
}

/// Whether the emulator refunded this Stars charge.
pub(super) fn is_refunded(st: &FakeState, charge: &str) -> bool {
    st.star_charges.get(charge).is_some_and(|c| c.refunded)
}
