//! Recording a successful payment exactly once (keyed by Telegram's charge id): a payment
//! that counts takes its seat and ships; one that cannot count is recorded and refunded.

use super::Payload;
use super::checkout::Address;
use super::ship::ship;
use crate::app::seats::seats_for;
use crate::app::settle::settle_group;
use crate::app::{AppError, AppResult, Ctx, Person};
use crate::domain::payment::{self, GroupState, Hold, RefundReason, Seats, Verdict};
use crate::domain::{Currency, GroupStatus, Money, Points, PurchaseId, Sku};
use crate::metrics::Metrics;
use crate::replies::messages::{Bought, Receipt, receipt_line};
use crate::store::groups::{self, GroupRow};
use crate::store::outbox::{Channel, NewMessage, Priority};
use crate::store::purchases::{self, Flag, NewPurchase};
use crate::store::{Conn, holds, ledger, members, products, updates, users};

/// A `successful_payment` as the adapter parsed it.
#[derive(Debug, Clone)]
pub struct Payment {
    pub currency: String,
    pub total: i64,
    pub payload: String,
    pub charge_id: String,
    pub provider_charge_id: String,
    pub recipient: Option<String>,
    pub address: Option<Address>,
}

/// What recording a payment came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new purchase; `settled` when it was the N-th and the group settled with it.
    New {
        purchase_id: PurchaseId,
        /// Why it does not count (it is refunded), or None: it took a seat.
        flag: Option<Flag>,
        /// The payment does not count and is refunded, for this reason.
        refunded: Option<RefundReason>,
        settled: bool,
    },
    /// This charge (or update) was already recorded: nothing changed.
    Duplicate,
}

/// The flag stored on a purchase that does not count.
fn flag_of(reason: RefundReason) -> Option<Flag> {
    match reason {
        RefundReason::Late | RefundReason::Closed => Some(Flag::Late),
        RefundReason::Full => Some(Flag::Full),
        RefundReason::Repeat => Some(Flag::Repeat),
        RefundReason::Points | RefundReason::Reversed => None,
    }
}

/// Records a payment exactly once (keyed by Telegram's charge id) — one transaction: a
/// payment that counts takes its seat, ships the goods and may settle the group; one that
/// cannot count is recorded and refunded. Either way the buyer gets a receipt saying which.
#[tracing::instrument(skip_all, fields(user = %person.id, update_id, charge = %pay.charge_id))]
pub async fn record(
    ctx: &Ctx,
    update_id: i64,
    person: &Person,
    pay: &Payment,
) -> AppResult<Recorded> {
    let now = ctx.now();
    let p = Payload::decode(&pay.payload).ok_or_else(|| {
        AppError::Other(format!("payment with an unknown payload {:?}", pay.payload))
    })?;
    let paid = Paid::of(pay)?;
    let mut tx = ctx.store.write().await?;
    if seen_before(&mut tx, update_id, pay, now).await? {
        tracing::info!("payment already recorded");
        return Ok(Recorded::Duplicate);
    }
    let name = person.first_name.as_str();
    let username = person.username.as_deref();
    users::seen(&mut tx, person.id, username, name, true, now).await?;
    let group = groups::lock(&mut tx, ctx.store.backend(), p.group_id)
        .await?
        .ok_or_else(|| AppError::Other(format!("payment for unknown group {}", p.group_id)))?;
    let (verdict, seats) = judge(&mut tx, &group, person, pay, &p, now).await?;
    let a = Arrival {
        ctx,
        group: &group,
        person,
        pay,
        paid,
        p: &p,
        now,
    };
    let refunded = verdict.refund_reason();
    let flag = refunded.and_then(flag_of);
    let Some((purchase_id, token)) = book(&mut tx, &a, refunded.is_none(), flag).await? else {
        tracing::info!("payment already recorded");
        return Ok(Recorded::Duplicate);
    };
    let receipt = match refunded {
        None => take_seat(&mut tx, &a, purchase_id, &token).await?,
        Some(reason) => give_back(&mut tx, &a, reason, &token).await?,
    };
    queue_receipt(&mut tx, &a, purchase_id, receipt).await?;
    tx.commit().await?;
    ctx.answered();
    let filled = refunded.is_none() && seats.counted + 1 >= group.head_count.get();
    let settled = after_commit(ctx, &group, filled, now).await;
    Metrics::inc(&ctx.metrics.purchases_total);
    tracing::info!(
        %purchase_id, group_id = %group.id, refunded = refunded.map(RefundReason::as_str),
        settled, "payment recorded"
    );
    Ok(Recorded::New {
        purchase_id,
        flag,
        refunded,
        settled,
    })
}

/// This update, or this charge, was handled before.
async fn seen_before(tx: &mut Conn, update_id: i64, pay: &Payment, now: i64) -> AppResult<bool> {
    Ok(!updates::claim(tx, update_id, now).await?
        || purchases::by_charge(tx, &pay.charge_id).await?.is_some())
}

/// What Telegram says was paid, as domain values.
#[derive(Debug, Clone, Copy)]
struct Paid {
    currency: Currency,
    total: Money,
}

impl Paid {
    fn of(pay: &Payment) -> AppResult<Self> {
        let bad = |what: &str| {
            AppError::Other(format!(
                "payment {} with an unreadable {what}: {} {}",
                pay.charge_id, pay.total, pay.currency
            ))
        };
        Ok(Self {
            currency: Currency::parse(&pay.currency).map_err(|_| bad("currency"))?,
            total: Money::from_minor(pay.total).map_err(|_| bad("amount"))?,
        })
    }
}

/// The buyer is waiting for the receipt: an answer, served before bulk notices (by email
/// when the chat is unreachable).
async fn queue_receipt(
    tx: &mut Conn,
    a: &Arrival<'_>,
    purchase_id: PurchaseId,
    text: String,
) -> AppResult<()> {
    let email = users::get(tx, a.person.id).await?.and_then(|u| u.email);
    let receipt = NewMessage {
        dedupe_key: format!("receipt:{purchase_id}"),
        channel: Channel::Telegram {
            chat_id: a.person.id.get(),
            keyboard: None,
            fallback_email: email,
            invoice: None,
            document: None,
        },
        text,
        priority: Priority::Interactive,
    };
    crate::app::reply::queue(tx, a.now, &receipt).await?;
    Ok(())
}

/// A payment being recorded, with what every step of recording it needs.
pub(super) struct Arrival<'a> {
    pub ctx: &'a Ctx,
    pub group: &'a GroupRow,
    pub person: &'a Person,
    pub pay: &'a Payment,
    paid: Paid,
    pub p: &'a Payload,
    pub now: i64,
}

impl Arrival<'_> {
    /// What was paid, for people: "34,800 JPY", "120 Stars".
    pub fn paid_text(&self) -> String {
        crate::app::refund::amount_text(&self.paid.currency, self.paid.total)
    }
}

/// Whether the payment counts: a seat held since an approved pre-checkout counts however
/// late this update is handled; otherwise the group must be open with a seat free.
async fn judge(
    tx: &mut Conn,
    group: &GroupRow,
    person: &Person,
    pay: &Payment,
    p: &Payload,
    now: i64,
) -> AppResult<(Verdict, Seats)> {
    let hold = if holds::is_unlapsed(tx, &pay.payload, now).await? {
        Hold::Unlapsed
    } else {
        Hold::None
    };
    let (seats, payer) = seats_for(tx, group, person, &pay.payload, now).await?;
    let points_short = p.redeem > Points::ZERO
        && p.redeem.value()
            > ledger::balance(tx, person.id).await?.value()
                - ledger::held_for_others(tx, person.id, &pay.payload, now).await?;
    let state = match group.status {
        GroupStatus::Open => GroupState::Open {
            expired: group.is_expired(now),
        },
        GroupStatus::Settled => GroupState::Settled,
        GroupStatus::Cancelled => GroupState::Cancelled,
    };
    Ok((
        payment::judge(state, hold, &seats, &payer, points_short),
        seats,
    ))
}

/// Records the purchase and its money, and releases its holds. None: the charge was already
/// recorded. Returns the purchase id and its receipt token.
async fn book(
    tx: &mut Conn,
    a: &Arrival<'_>,
    counted: bool,
    flag: Option<Flag>,
) -> AppResult<Option<(PurchaseId, String)>> {
    let (pay, p) = (a.pay, a.p);
    let region = pay.address.as_ref().and_then(Address::region);
    // Over 140 bits only the server can make; stored as its keyed hash, so the database
    // alone opens no receipt.
    let token = a.ctx.secrets.receipt_token(&pay.charge_id);
    let token_hash = a.ctx.secrets.hash(crate::secrets::Purpose::Receipt, &token);
    let new = NewPurchase {
        group_id: a.group.id,
        buyer_id: a.person.id,
        sku: &p.sku,
        price: p.price,
        points_redeemed: p.redeem,
        amount_paid: a.paid.total,
        currency: a.paid.currency,
        charge_id: &pay.charge_id,
        provider_charge_id: &pay.provider_charge_id,
        counted,
        flag,
        region: region.as_ref(),
        receipt_token: &token_hash,
        now: a.now,
    };
    let Some(purchase_id) = purchases::insert(tx, &new).await? else {
        return Ok(None);
    };
    // The money, in the payment's currency: cash in, points out, the sale at what was paid
    // plus the points (the normal price, and any delivery fee).
    let txn = format!("purchase:{}", pay.charge_id);
    let memo = format!("Purchase of {} in group {}", p.sku, a.group.key);
    let refs = ledger::Refs {
        txn: &txn,
        currency: a.paid.currency.code(),
        group_id: Some(a.group.id),
        purchase_id: Some(purchase_id),
        memo: &memo,
        now: a.now,
    };
    let entries = [
        ledger::Entry::cash(a.paid.total.minor()),
        ledger::Entry::points(a.person.id, p.redeem.value()),
        ledger::Entry::sales(-(a.paid.total.minor() + p.redeem.value())),
    ];
    ledger::post(tx, &refs, &entries).await?;
    holds::release(tx, &pay.payload).await?;
    ledger::release_hold(tx, &pay.payload).await?;
    Ok(Some((purchase_id, token)))
}

/// The product's name (its code when it is not in the catalog at all).
async fn product_name(conn: &mut Conn, sku: &Sku) -> AppResult<String> {
    Ok(products::get_any(conn, sku.as_str())
        .await?
        .map_or_else(|| sku.to_string(), |x| x.name))
}

/// The payment counts: the member is recognised, the goods ship. Returns the receipt.
async fn take_seat(
    tx: &mut Conn,
    a: &Arrival<'_>,
    purchase_id: PurchaseId,
    token: &str,
) -> AppResult<String> {
    let (group, person) = (a.group, a.person);
    holds::release_others_of(tx, group.id, person.id).await?;
    if let Some(m) = members::for_user(tx, group.id, person.id, person.username.as_deref()).await?
        && m.user_id.is_none()
    {
        members::bind(tx, m.id, person.id).await?;
    }
    let product = product_name(tx, &a.p.sku).await?;
    ship(tx, a, purchase_id, &product).await?;
    let bought = purchases::count_counted(tx, group.id).await?;
    tell_organiser(tx, a, purchase_id, bought).await?;
    Ok(receipt_message(a, &product, bought, token))
}

/// The organiser hears of each purchase but their own (in a large group, of those that reach
/// a new tier or fill it), in the chat they opened the group in: "Alice bought — 2 of 3, 3%
/// reached; one more → 5%".
async fn tell_organiser(
    tx: &mut Conn,
    a: &Arrival<'_>,
    purchase_id: PurchaseId,
    bought: u32,
) -> AppResult<()> {
    let group = a.group;
    if group.organiser_id == a.person.id {
        return Ok(());
    }
    let progress = a.ctx.config.tiers.progress(bought, group.head_count.get());
    if !progress.worth_telling() {
        return Ok(());
    }
    let notice = Bought {
        key: group.key.clone(),
        buyer: a.person.first_name.clone(),
        progress,
        open_count: group.open_count,
        discount: group.discount,
    };
    let m = crate::app::telegram_message(
        format!("bought:{purchase_id}"),
        group.chat_id,
        notice.html(),
    );
    crate::store::outbox::enqueue(tx, &m, a.now).await?;
    Ok(())
}

/// The payment cannot count: it is refunded. Returns the receipt saying so.
async fn give_back(
    tx: &mut Conn,
    a: &Arrival<'_>,
    reason: RefundReason,
    token: &str,
) -> AppResult<String> {
    let row = purchases::by_charge(tx, &a.pay.charge_id)
        .await?
        .ok_or_else(|| AppError::Other("a purchase just recorded is missing".into()))?;
    let opened = crate::app::refund::open(tx, a.ctx, &row, a.group, reason, a.now)
        .await?
        .ok_or_else(|| AppError::Other("a new charge already had a refund".into()))?;
    let amount = a.paid_text();
    let product = product_name(tx, &a.p.sku).await?;
    let mut text = crate::replies::payment_refunded(
        &product,
        &amount,
        a.group.key.as_str(),
        reason,
        &opened.back_text,
    );
    text.push('\n');
    text.push_str(&receipt_line(&a.ctx.receipt_url(&a.group.key, token)));
    Ok(text)
}

/// After the commit: the N-th purchase settles the group in a transaction of its own (the
/// payment stays recorded whatever happens to the settlement; a group left filled but open is
/// settled by the sweep, which treats filled groups as due). Returns whether it settled.
async fn after_commit(ctx: &Ctx, group: &GroupRow, filled: bool, now: i64) -> bool {
    if group.is_expired(now) {
        // The seat this payment held kept an expired group open: the sweep may settle it now.
        ctx.sweep_wake.notify_one();
    }
    if !filled {
        return false;
    }
    match settle_group(ctx, group.id).await {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(group_id = %group.id, error = %e, "settling a filled group failed; the sweep will retry");
            ctx.sweep_wake.notify_one();
            false
        }
    }
}

/// The receipt of a payment that took its seat.
fn receipt_message(a: &Arrival<'_>, product: &str, bought: u32, token: &str) -> String {
    let (ctx, group, p) = (a.ctx, a.group, a.p);
    Receipt {
        product: product.to_string(),
        price: ctx.amount(p.price),
        paid: a.paid_text(),
        points_used: p.redeem,
        key: group.key.clone(),
        bought,
        head_count: group.head_count,
        rate: ctx.config.tiers.rate_for(group.head_count.get()),
        discount: group.discount,
        open_count: group.open_count,
        receipt_url: ctx.receipt_url(&group.key, token),
    }
    .html()
}
