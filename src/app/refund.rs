//! Money back (issue [money]): every payment that cannot count, or no longer counts, is
//! refunded — Telegram Stars automatically with `refundStarPayment` (the refund worker), a
//! provider payment by the operator (the Bot API cannot refund those), listed by
//! `groupbuy refunds` and closed with `groupbuy refunds done CHARGE_ID`. The buyer is told
//! which, in plain words.
//!
//! In the ledger (all in the payment's currency): deciding a refund moves the sale into
//! `refunds_due` and gives back the points the purchase used; paying it out moves
//! `refunds_due` against `cash`. A purchase reversed after its group settled also loses its
//! own credit, as far as the buyer's balance allows (rule 7 of [`crate::domain::settlement`]).

use super::{AppError, AppResult, Ctx, queue_email, queue_message};
use crate::domain::payment::{RefundMethod, RefundReason, STARS};
use crate::domain::settlement::clawback;
use crate::domain::{Currency, GroupStatus, Money, Points, Sku, UserId};
use crate::mail::render::RefundDue;
use crate::replies;
use crate::store::groups::{self, GroupRow};
use crate::store::purchases::{self, PurchaseRow};
use crate::store::refunds::{self, NewRefund, RefundRow};
use crate::store::{Conn, ledger, products, updates, users};

/// A refund just opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub method: RefundMethod,
    /// Points of a settled credit taken back.
    pub clawed_back: i64,
    /// What the buyer is told about their money.
    pub back_text: String,
}

/// The amount of a payment for people: "34,800 JPY", "120 Stars".
pub fn amount_text(currency: &Currency, amount: Money) -> String {
    if currency.code() == STARS {
        format!("{} Stars", Points::of(amount))
    } else {
        currency.format(amount.minor())
    }
}

/// The product a purchase bought, by name (taken out of the catalog or not).
async fn product_name(conn: &mut Conn, sku: &Sku) -> AppResult<String> {
    Ok(products::get_any(conn, sku.as_str())
        .await?
        .map(|p| p.name)
        .unwrap_or_else(|| sku.to_string()))
}

/// Opens the refund of a recorded purchase inside the caller's transaction: the money is
/// owed back, the points it used return, its seat is released, and a settled credit is taken
/// back. None when this charge already has a refund.
pub async fn open(
    conn: &mut Conn,
    ctx: &Ctx,
    p: &PurchaseRow,
    group: &GroupRow,
    reason: RefundReason,
    now: i64,
) -> AppResult<Option<Opened>> {
    let method = RefundMethod::for_currency(p.currency.code());
    let refund = NewRefund {
        charge_id: &p.charge_id,
        purchase_id: p.id,
        user_id: p.buyer_id,
        amount: p.amount_paid,
        currency: p.currency,
        method,
        reason,
        now,
    };
    if !refunds::insert(conn, &refund).await? {
        return Ok(None);
    }
    post_refund(conn, p, group, reason, now).await?;
    let was_counted = purchases::uncount(conn, p.id).await?;
    let clawed_back = if was_counted && group.status == GroupStatus::Settled {
        claw_back(conn, ctx, p, group, now).await?
    } else {
        0
    };
    let amount = amount_text(&p.currency, p.amount_paid);
    tell_fulfilment(conn, ctx, p, group, reason, &amount, now).await?;
    crate::metrics::Metrics::inc(&ctx.metrics.refunds_total);
    tracing::info!(
        charge = %p.charge_id, purchase_id = %p.id, group_id = %group.id, reason = reason.as_str(),
        method = method.as_str(), amount = p.amount_paid.minor(), currency = %p.currency, clawed_back,
        "refund opened"
    );
    Ok(Some(Opened {
        method,
        clawed_back,
        back_text: replies::money_back(method, &amount, &p.charge_id, p.points_redeemed.value()),
    }))
}

/// The sale is undone, in the payment's currency: the money is owed back and the points it
/// used return to the buyer.
async fn post_refund(
    conn: &mut Conn,
    p: &PurchaseRow,
    group: &GroupRow,
    reason: RefundReason,
    now: i64,
) -> AppResult<()> {
    let txn = format!("refund:{}", p.charge_id);
    let memo = format!(
        "Refund of {} in group {} ({})",
        p.sku,
        group.key,
        reason.as_str()
    );
    let refs = ledger::Refs {
        txn: &txn,
        currency: p.currency.code(),
        group_id: Some(group.id),
        purchase_id: Some(p.id),
        memo: &memo,
        now,
    };
    let entries = [
        ledger::Entry::refunds_due(-p.amount_paid.minor()),
        ledger::Entry::points(p.buyer_id, -p.points_redeemed.value()),
        ledger::Entry::sales(p.amount_paid.minor() + p.points_redeemed.value()),
    ];
    ledger::post(conn, &refs, &entries).await?;
    Ok(())
}

/// Takes back what a settled purchase earned, up to the buyer's balance (settlement rule 7).
/// Returns the points taken back.
async fn claw_back(
    conn: &mut Conn,
    ctx: &Ctx,
    p: &PurchaseRow,
    group: &GroupRow,
    now: i64,
) -> AppResult<i64> {
    let credit = ledger::settled_points(conn, group.id, p.id, p.buyer_id).await?;
    let balance = ledger::balance(conn, p.buyer_id).await?;
    let taken = clawback(Points::new(credit), balance).value();
    if credit > taken {
        tracing::warn!(
            charge = %p.charge_id, credit, taken,
            "points of a reversed purchase were already spent; the rest is written off"
        );
    }
    let txn = format!("reverse:{}", p.charge_id);
    let memo = format!("Group discount taken back: refund in group {}", group.key);
    let refs = ledger::Refs {
        txn: &txn,
        currency: ctx.config.currency.code(),
        group_id: Some(group.id),
        purchase_id: Some(p.id),
        memo: &memo,
        now,
    };
    let entries = [
        ledger::Entry::points(p.buyer_id, taken),
        ledger::Entry::discounts(-taken),
    ];
    ledger::post(conn, &refs, &entries).await?;
    Ok(taken)
}

/// Fulfilment hears of a refund it must pay out (provider payments) or goods it must stop.
async fn tell_fulfilment(
    conn: &mut Conn,
    ctx: &Ctx,
    p: &PurchaseRow,
    group: &GroupRow,
    reason: RefundReason,
    amount: &str,
    now: i64,
) -> AppResult<()> {
    let to_pay_out = RefundMethod::for_currency(p.currency.code()) == RefundMethod::Provider;
    let shipped = purchases::has_shipping_request(conn, p.id).await?;
    if !to_pay_out && !shipped {
        return Ok(());
    }
    let buyer = users::get(conn, p.buyer_id)
        .await?
        .map(|u| match u.username {
            Some(name) => format!("{} (@{name}, id {})", u.first_name, u.id),
            None => format!("{} (id {})", u.first_name, u.id),
        })
        .unwrap_or_else(|| format!("id {}", p.buyer_id));
    let mail = RefundDue {
        order: format!("GB-{}", p.id),
        charge_id: p.charge_id.clone(),
        amount: amount.to_string(),
        buyer,
        product: product_name(conn, &p.sku).await?,
        key: group.key.to_string(),
        reason: replies::refund_reason(reason).to_string(),
        to_pay_out,
        cancel_shipping: shipped,
    }
    .render()?;
    let to = ctx.config.fulfilment_email.clone();
    queue_email(conn, now, format!("refund-due:{}", p.charge_id), &to, mail).await?;
    Ok(())
}

/// Closes a due refund inside the caller's transaction: the money went back (Telegram
/// confirmed a Stars refund, or the operator paid a provider refund). The buyer is told.
/// False when it was not due.
pub async fn paid_out(conn: &mut Conn, r: &RefundRow, now: i64) -> AppResult<bool> {
    if !refunds::mark_done(conn, &r.charge_id, now).await? {
        return Ok(false);
    }
    let txn = format!("payout:{}", r.charge_id);
    let memo = format!("Refund paid out: charge {}", r.charge_id);
    ledger::post(
        conn,
        &ledger::Refs {
            txn: &txn,
            currency: r.currency.code(),
            group_id: None,
            purchase_id: Some(r.purchase_id),
            memo: &memo,
            now,
        },
        &[
            ledger::Entry::refunds_due(r.amount.minor()),
            ledger::Entry::cash(-r.amount.minor()),
        ],
    )
    .await?;
    let sku = purchases::by_charge(conn, &r.charge_id)
        .await?
        .map(|p| p.sku)
        .ok_or_else(|| AppError::Other(format!("refund {} has no purchase", r.charge_id)))?;
    let text = replies::refund_paid(
        &amount_text(&r.currency, r.amount),
        &product_name(conn, &sku).await?,
    );
    queue_message(
        conn,
        now,
        format!("refund-paid:{}", r.charge_id),
        r.user_id.get(),
        text,
        None,
        None,
    )
    .await?;
    tracing::info!(charge = %r.charge_id, amount = r.amount.minor(), currency = %r.currency, "refund paid out");
    Ok(true)
}

/// Why an operator's or Telegram's refund changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no payment has the charge id {0:?}")]
    UnknownCharge(String),
    #[error("charge {charge} was already refunded{}", .at.map(|t| format!(" on {}", replies::when(t))).unwrap_or_default())]
    AlreadyRefunded { charge: String, at: Option<i64> },
    #[error(
        "the refund of charge {0} is already due; pay it out, then `groupbuy refunds done {0}`"
    )]
    AlreadyDue(String),
    #[error(
        "charge {0} still counts toward its group and is owed nothing: to refund it, run `groupbuy refund {0}`"
    )]
    NotRefunded(String),
    #[error(
        "Stars refunds are made by `groupbuy serve` through refundStarPayment; charge {0} is queued for it"
    )]
    StarsAreAutomatic(String),
    #[error("charge {charge} was {paid}, but the refund reported {reported}")]
    Mismatch {
        charge: String,
        paid: String,
        reported: String,
    },
}

/// What an operator's reversal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversed {
    pub charge_id: String,
    pub method: RefundMethod,
    pub amount: String,
    pub clawed_back: i64,
}

async fn purchase_and_group(
    conn: &mut Conn,
    charge_id: &str,
) -> AppResult<Result<(PurchaseRow, GroupRow), Refusal>> {
    let Some(p) = purchases::by_charge(conn, charge_id).await? else {
        return Ok(Err(Refusal::UnknownCharge(charge_id.to_string())));
    };
    let group = groups::by_id(conn, p.group_id)
        .await?
        .ok_or_else(|| AppError::Other(format!("purchase {} has no group", p.id)))?;
    Ok(Ok((p, group)))
}

fn already(r: &RefundRow) -> Refusal {
    if r.done {
        Refusal::AlreadyRefunded {
            charge: r.charge_id.clone(),
            at: r.done_at,
        }
    } else {
        Refusal::AlreadyDue(r.charge_id.clone())
    }
}

/// Tells the buyer their purchase was reversed, and what happens to the money (`back`).
async fn tell_reversed(
    conn: &mut Conn,
    p: &PurchaseRow,
    group: &GroupRow,
    back: &str,
    clawed_back: i64,
    now: i64,
) -> AppResult<()> {
    let product = product_name(conn, &p.sku).await?;
    let text = replies::purchase_reversed(&product, group.key.as_str(), back, clawed_back);
    let key = format!("reversed:{}", p.charge_id);
    queue_message(conn, now, key, p.buyer_id.get(), text, None, None).await?;
    Ok(())
}

/// `groupbuy refund CHARGE_ID`: reverses a purchase. Stars go back through the refund
/// worker; a provider payment becomes refund-due for the operator.
pub async fn reverse(ctx: &Ctx, charge_id: &str) -> AppResult<Result<Reversed, Refusal>> {
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let (p, group) = match purchase_and_group(&mut tx, charge_id).await? {
        Ok(found) => found,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if let Some(r) = refunds::get(&mut tx, charge_id).await? {
        return Ok(Err(already(&r)));
    }
    let group = groups::lock(&mut tx, ctx.store.backend(), group.id)
        .await?
        .unwrap_or(group);
    let Some(opened) = open(&mut tx, ctx, &p, &group, RefundReason::Reversed, now).await? else {
        return Ok(Err(Refusal::AlreadyDue(charge_id.to_string())));
    };
    tell_reversed(
        &mut tx,
        &p,
        &group,
        &opened.back_text,
        opened.clawed_back,
        now,
    )
    .await?;
    tx.commit().await?;
    ctx.committed();
    Ok(Ok(Reversed {
        charge_id: charge_id.to_string(),
        method: opened.method,
        amount: amount_text(&p.currency, p.amount_paid),
        clawed_back: opened.clawed_back,
    }))
}

/// `groupbuy refunds done CHARGE_ID`: the operator paid a provider refund out.
pub async fn mark_paid(ctx: &Ctx, charge_id: &str) -> AppResult<Result<RefundRow, Refusal>> {
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let Some(r) = refunds::get(&mut tx, charge_id).await? else {
        return Ok(Err(
            match purchases::by_charge(&mut tx, charge_id).await? {
                Some(_) => Refusal::NotRefunded(charge_id.to_string()),
                None => Refusal::UnknownCharge(charge_id.to_string()),
            },
        ));
    };
    if r.done {
        return Ok(Err(already(&r)));
    }
    if r.method == RefundMethod::Stars {
        return Ok(Err(Refusal::StarsAreAutomatic(charge_id.to_string())));
    }
    paid_out(&mut tx, &r, now).await?;
    tx.commit().await?;
    ctx.committed();
    Ok(Ok(r))
}

/// A `refunded_payment` message: Telegram refunded a Stars payment (ours, through
/// `refundStarPayment`, or one Telegram made itself). Either way the purchase is reversed
/// and the refund closed, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// A refund we asked for is confirmed.
    Confirmed,
    /// A refund we did not ask for: the purchase was reversed now.
    Reversed,
    /// This update or this refund was already handled.
    Duplicate,
}

/// A refund Telegram reported: confirms one we opened or reverses the purchase; refuses a mismatch.
pub async fn reported(
    ctx: &Ctx,
    update_id: i64,
    buyer_id: UserId,
    currency: &str,
    total: i64,
    charge_id: &str,
) -> AppResult<Result<Reported, Refusal>> {
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    if !updates::claim(&mut tx, update_id, now).await? {
        return Ok(Ok(Reported::Duplicate));
    }
    let (p, group) = match purchase_and_group(&mut tx, charge_id).await? {
        Ok(found) => found,
        Err(refusal) => {
            tx.commit().await?;
            return Ok(Err(refusal));
        }
    };
    if p.currency.code() != currency || p.amount_paid.minor() != total || p.buyer_id != buyer_id {
        tx.commit().await?;
        return Ok(Err(Refusal::Mismatch {
            charge: charge_id.to_string(),
            paid: format!(
                "{} by user {}",
                amount_text(&p.currency, p.amount_paid),
                p.buyer_id
            ),
            reported: format!("{total} {currency} to user {buyer_id}"),
        }));
    }
    let outcome = match refunds::get(&mut tx, charge_id).await? {
        Some(r) if r.done => Reported::Duplicate,
        Some(r) => {
            paid_out(&mut tx, &r, now).await?;
            Reported::Confirmed
        }
        None => {
            let group = groups::lock(&mut tx, ctx.store.backend(), group.id)
                .await?
                .unwrap_or(group);
            let opened = open(&mut tx, ctx, &p, &group, RefundReason::Reversed, now)
                .await?
                .ok_or_else(|| AppError::Other(format!("refund of {charge_id} appeared twice")))?;
            let r = refunds::get(&mut tx, charge_id)
                .await?
                .ok_or_else(|| AppError::Other(format!("refund of {charge_id} vanished")))?;
            tell_reversed(&mut tx, &p, &group, "", opened.clawed_back, now).await?;
            paid_out(&mut tx, &r, now).await?;
            Reported::Reversed
        }
    };
    tx.commit().await?;
    ctx.committed();
    Ok(Ok(outcome))
}
