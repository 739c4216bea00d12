//! Buying a seat (claims 1, 2, 5, 12, 13): the buy buttons, the invoice, the pre-checkout
//! check, the shipping query, and recording a successful payment exactly once.

use super::access::{ensure_open, open_group, product_of};
use super::seats::{check_can_buy, refusal, seats_for};
use super::settle::settle_group;
use super::{AppError, AppResult, Ctx, Person, queue_email};
use crate::domain::payment::{
    self, Charge, GroupState, Hold, NotSellable, RefundReason, SEAT_HOLD_SECS, Seats, Verdict,
};
use crate::domain::{GroupStatus, Product, RegionCode, Sku};
use crate::keyboard::{Keyboard, Press, callback};
use crate::mail::render::ShippingRequest;
use crate::metrics::Metrics;
use crate::replies::messages::{BuyQuestion, Receipt};
use crate::replies::{UserError, esc};
use crate::store::groups::{self, GroupRow};
use crate::store::outbox::{Channel, NewMessage, Priority};
use crate::store::purchases::{self, Flag, NewPurchase};
use crate::store::{Conn, holds, ledger, products, updates, users};
use std::fmt::Write;

/// An invoice to send, in the adapter's hands; queued in the outbox as JSON (a field added
/// later needs `#[serde(default)]` so rows queued before it still read).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InvoiceSpec {
    pub title: String,
    pub description: String,
    pub payload: String,
    pub currency: String,
    pub prices: Vec<(String, i64)>,
    /// Paid through the payment provider (its token, the buyer's name); else Telegram Stars.
    #[serde(default)]
    pub provider: bool,
    pub need_shipping: bool,
    /// Set, so that a forwarded copy of the invoice shows a deep link into the group instead
    /// of a Pay button: only the person it was made for can pay it.
    #[serde(default)]
    pub start_parameter: String,
}

/// What a button press leads to.
#[derive(Debug, Clone)]
pub enum Step {
    Message(String, Keyboard),
    Invoice(InvoiceSpec),
}

/// The invoice payload: `v1:<group>:<buyer>:<price>:<redeem>:<sku>` (≤ 128 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub group_id: i64,
    pub buyer_id: i64,
    pub price: i64,
    pub redeem: i64,
    pub sku: String,
    /// Makes each invoice's payload unique, so the seat and points held for one invoice are
    /// never taken as held for another.
    pub nonce: String,
}

impl Payload {
    /// `v2:<group>:<buyer>:<price>:<redeem>:<nonce>:<sku>`.
    pub fn encode(&self) -> String {
        format!(
            "v2:{}:{}:{}:{}:{}:{}",
            self.group_id, self.buyer_id, self.price, self.redeem, self.nonce, self.sku
        )
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut p = s.splitn(7, ':');
        (p.next()? == "v2").then_some(())?;
        Some(Self {
            group_id: p.next()?.parse().ok()?,
            buyer_id: p.next()?.parse().ok()?,
            price: p.next()?.parse().ok()?,
            redeem: p.next()?.parse().ok()?,
            nonce: p.next().filter(|n| n.len() <= 16)?.to_string(),
            sku: p.next()?.to_string(),
        })
    }
}

/// Whether the product can be sold here at all (physical goods need the payment provider).
fn sellable(ctx: &Ctx, product: &Product) -> Result<Charge, UserError> {
    payment::charge_for(product, 0, ctx.config.has_provider()).map_err(|e| match e {
        NotSellable::NeedsProvider => UserError::NotForSale {
            product: product.name.clone(),
        },
    })
}

/// Handles a buy-flow button.
#[tracing::instrument(skip_all, fields(user = person.id))]
pub async fn press(ctx: &Ctx, person: &Person, press: &Press) -> AppResult<Step> {
    let now = ctx.now();
    let mut conn = ctx.store.read().await?;
    let key = match press {
        Press::Buy { key }
        | Press::Other { key }
        | Press::Product { key, .. }
        | Press::Pay { key, .. } => key,
    };
    let group = open_group(&mut conn, key, now).await?;
    check_can_buy(&mut conn, &group, person, now).await?;
    match press {
        Press::Buy { .. } => {
            let product = product_of(&mut conn, &group).await?;
            let question = BuyQuestion::Confirm {
                product: product.name.clone(),
                key: group.key.clone(),
            };
            let kb = super::views::buy_keyboard(ctx, &group, &product);
            Ok(Step::Message(question.html(), kb))
        }
        Press::Other { .. } => other_products(ctx, &mut conn, &group).await,
        Press::Product { sku, .. } => {
            let product = catalog_product(&mut conn, sku).await?;
            sellable(ctx, &product)?;
            let balance = ledger::balance(&mut conn, person.id).await?.value();
            match payment::max_redeemable(&product, balance) {
                0 => Ok(Step::Invoice(invoice(ctx, &group, person, &product, 0)?)),
                usable => Ok(use_points(ctx, &group, &product, balance, usable)),
            }
        }
        Press::Pay { sku, redeem, .. } => {
            let product = catalog_product(&mut conn, sku).await?;
            let balance = ledger::balance(&mut conn, person.id).await?.value();
            if *redeem > payment::max_redeemable(&product, balance) {
                return Err(UserError::NotEnoughPoints { balance }.into());
            }
            let spec = invoice(ctx, &group, person, &product, *redeem)?;
            Ok(Step::Invoice(spec))
        }
    }
}

/// "Another product": any product of the catalog counts as a seat (claim 2).
async fn other_products(ctx: &Ctx, conn: &mut Conn, group: &GroupRow) -> AppResult<Step> {
    let mut kb = Keyboard::default();
    for p in products::list(conn).await? {
        let press = Press::Product {
            key: group.key.clone(),
            sku: p.sku.to_string(),
        };
        let label = format!("{} — {}", p.name, ctx.money(p.price.minor()));
        kb = kb.row(vec![callback(label, press.encode())]);
    }
    Ok(Step::Message(BuyQuestion::WhichProduct.html(), kb))
}

/// The choice between spending `usable` points on `product` and keeping them.
fn use_points(ctx: &Ctx, group: &GroupRow, product: &Product, balance: i64, usable: i64) -> Step {
    let pay = |redeem: i64| {
        Press::Pay {
            key: group.key.clone(),
            sku: product.sku.to_string(),
            redeem,
        }
        .encode()
    };
    let price = product.price.minor();
    let kb = Keyboard::default()
        .row(vec![callback(
            format!("Use {usable} points — pay {}", ctx.money(price - usable)),
            pay(usable),
        )])
        .row(vec![callback(
            format!("Keep my points — pay {}", ctx.money(price)),
            pay(0),
        )]);
    let question = BuyQuestion::UsePoints {
        balance,
        product: product.name.clone(),
    };
    Step::Message(question.html(), kb)
}

async fn catalog_product(conn: &mut Conn, sku: &str) -> AppResult<Product> {
    let sku = Sku::parse(sku).map_err(|_| UserError::StaleButton)?;
    Ok(products::get(conn, &sku)
        .await?
        .ok_or(UserError::StaleButton)?)
}

fn invoice(
    ctx: &Ctx,
    group: &GroupRow,
    person: &Person,
    product: &Product,
    redeem: i64,
) -> AppResult<InvoiceSpec> {
    let charge =
        payment::charge_for(product, redeem, ctx.config.has_provider()).map_err(|e| match e {
            NotSellable::NeedsProvider => UserError::NotForSale {
                product: product.name.clone(),
            },
        })?;
    let payload = Payload {
        group_id: group.id,
        buyer_id: person.id,
        price: product.price.minor(),
        redeem,
        sku: product.sku.to_string(),
        nonce: crate::domain::group_key::random_token(8)?,
    };
    let description = truncate(
        &format!(
            "Group {} — normal price now, the group discount comes back as points when it closes.",
            group.key
        ),
        255,
    );
    let (currency, prices, provider, need_shipping) = match charge {
        // One price line: Stars accept only one.
        Charge::Stars { stars } => (
            payment::STARS.to_string(),
            vec![(product.name.clone(), i64::from(stars))],
            false,
            false,
        ),
        // Telegram's amounts cannot be negative, so redeemed points are taken off the line
        // and named in its label.
        Charge::Provider { amount, ship } => {
            let label = if redeem > 0 {
                format!("{} ({redeem} points applied)", product.name)
            } else {
                product.name.clone()
            };
            (
                ctx.config.currency.code().to_string(),
                vec![(label, amount)],
                true,
                ship,
            )
        }
    };
    Ok(InvoiceSpec {
        title: product.name.clone(),
        description,
        payload: payload.encode(),
        currency,
        prices,
        provider,
        need_shipping,
        start_parameter: group.key.clone(),
    })
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The pre-checkout check (answered within 10 s by the adapter): group open, key valid,
/// buyer allowed, a seat neither counted nor held, price and total unchanged, points still
/// there. Approving holds the seat (and the points) for this invoice for
/// [`SEAT_HOLD_SECS`], in the same transaction as the decision.
#[tracing::instrument(skip_all, fields(user = person.id))]
pub async fn pre_checkout(
    ctx: &Ctx,
    person: &Person,
    currency: &str,
    total: i64,
    payload: &str,
) -> AppResult<()> {
    let p = Payload::decode(payload).ok_or(UserError::StaleButton)?;
    if p.buyer_id != person.id {
        return Err(UserError::WrongBuyer.into());
    }
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let group = groups::lock(&mut tx, ctx.store.backend(), p.group_id)
        .await?
        .ok_or(UserError::UnknownKey)?;
    ensure_open(&group, now)?;
    let (seats, payer) = seats_for(&mut tx, &group, person, payload, now).await?;
    payment::admit(&seats, &payer).map_err(|r| refusal(&group, r))?;
    let product = catalog_product(&mut tx, &p.sku).await?;
    let charge =
        payment::charge_for(&product, p.redeem, ctx.config.has_provider()).map_err(|_| {
            UserError::NotForSale {
                product: product.name.clone(),
            }
        })?;
    let fee = ctx.config.shipping_fee.minor();
    let total_ok = match charge {
        Charge::Stars { stars } => {
            currency == payment::STARS && total == i64::from(stars) && p.redeem == 0
        }
        Charge::Provider { amount, ship } => {
            currency == ctx.config.currency.code()
                && (total == amount || (ship && total == amount + fee))
        }
    };
    if product.price.minor() != p.price || !total_ok {
        return Err(UserError::PriceChanged.into());
    }
    if p.redeem > 0 {
        // Every unlapsed hold counts, the payer's other invoices included, so the same
        // points never pay for two invoices.
        let available = ledger::balance(&mut tx, person.id).await?.value()
            - ledger::held_for_others(&mut tx, person.id, payload, now).await?;
        if p.redeem > available {
            return Err(UserError::NotEnoughPoints {
                balance: available.max(0),
            }
            .into());
        }
        ledger::hold(&mut tx, payload, person.id, p.redeem, now + SEAT_HOLD_SECS).await?;
    }
    // An invited member found by username is bound now, so their hold counts among the
    // invited members' seats.
    if let Some(m) =
        groups::member_for_user(&mut tx, group.id, person.id, person.username.as_deref()).await?
        && m.user_id.is_none()
    {
        groups::bind_member(&mut tx, m.id, person.id).await?;
    }
    holds::hold(
        &mut tx,
        payload,
        group.id,
        person.id,
        now,
        now + SEAT_HOLD_SECS,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A shipping address as Telegram gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub country_code: String,
    pub state: String,
    pub city: String,
    pub street_line1: String,
    pub street_line2: String,
    pub post_code: String,
}

impl Address {
    pub fn region(&self) -> Option<RegionCode> {
        RegionCode::from_address(&self.country_code, &self.state, &self.post_code)
    }

    pub fn lines(&self) -> String {
        let mut s = String::new();
        for l in [&self.street_line1, &self.street_line2] {
            if !l.trim().is_empty() {
                let _ = writeln!(s, "{}", l.trim());
            }
        }
        let _ = writeln!(s, "{} {}", self.post_code.trim(), self.city.trim());
        if !self.state.trim().is_empty() {
            let _ = writeln!(s, "{}", self.state.trim());
        }
        let _ = write!(s, "{}", self.country_code.trim().to_uppercase());
        s
    }
}

/// The shipping options for an address: one standard delivery at the configured fee.
pub fn shipping_options(
    ctx: &Ctx,
    address: &Address,
) -> Result<Vec<(String, String, i64)>, UserError> {
    if address.region().is_none()
        || address.city.trim().is_empty()
        || address.street_line1.trim().is_empty()
    {
        return Err(UserError::BadAddress);
    }
    Ok(vec![(
        "standard".into(),
        "Standard delivery".into(),
        ctx.config.shipping_fee.minor(),
    )])
}

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new purchase; `settled` when it was the N-th and the group settled with it.
    New {
        purchase_id: i64,
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
#[tracing::instrument(skip_all, fields(user = person.id, update_id, charge = %pay.charge_id))]
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
    let mut tx = ctx.store.write().await?;
    if !updates::claim(&mut tx, update_id, now).await?
        || purchases::by_charge(&mut tx, &pay.charge_id)
            .await?
            .is_some()
    {
        tracing::info!("payment already recorded");
        return Ok(Recorded::Duplicate);
    }
    let name = person.first_name.as_str();
    users::seen(
        &mut tx,
        person.id,
        person.username.as_deref(),
        name,
        true,
        now,
    )
    .await?;
    let group = groups::lock(&mut tx, ctx.store.backend(), p.group_id)
        .await?
        .ok_or_else(|| AppError::Other(format!("payment for unknown group {}", p.group_id)))?;
    let (verdict, seats) = judge(&mut tx, &group, person, pay, &p, now).await?;
    let arrival = Arrival {
        ctx,
        group: &group,
        person,
        pay,
        p: &p,
        now,
    };
    let refunded = match verdict {
        Verdict::Count => None,
        Verdict::Refund(reason) => Some(reason),
    };
    let flag = refunded.and_then(flag_of);
    let Some((purchase_id, token)) = book(&mut tx, &arrival, refunded.is_none(), flag).await?
    else {
        tracing::info!("payment already recorded");
        return Ok(Recorded::Duplicate);
    };
    let receipt = match refunded {
        None => take_seat(&mut tx, &arrival, purchase_id, &token).await?,
        Some(reason) => give_back(&mut tx, &arrival, reason, &token).await?,
    };
    // The buyer is waiting for the receipt: an answer, served before bulk notices (by
    // email when the chat is unreachable).
    let email = users::get(&mut tx, person.id).await?.and_then(|u| u.email);
    let receipt = NewMessage {
        dedupe_key: format!("receipt:{purchase_id}"),
        channel: Channel::Telegram {
            chat_id: person.id,
            keyboard: None,
            fallback_email: email,
            invoice: None,
        },
        text: receipt,
        priority: Priority::Interactive,
    };
    super::reply::queue(&mut tx, now, &receipt).await?;
    tx.commit().await?;
    ctx.answered();
    let filled = refunded.is_none() && seats.counted + 1 >= group.head_count;
    let settled = after_commit(ctx, &group, filled, now).await;
    Metrics::inc(&ctx.metrics.purchases_total);
    tracing::info!(
        purchase_id,
        group_id = group.id,
        refunded = refunded.map(RefundReason::as_str),
        settled,
        "payment recorded"
    );
    Ok(Recorded::New {
        purchase_id,
        flag,
        refunded,
        settled,
    })
}

/// A payment being recorded, with what every step of recording it needs.
struct Arrival<'a> {
    ctx: &'a Ctx,
    group: &'a GroupRow,
    person: &'a Person,
    pay: &'a Payment,
    p: &'a Payload,
    now: i64,
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
    let points_short = p.redeem > 0
        && p.redeem
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
) -> AppResult<Option<(i64, String)>> {
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
        amount_paid: pay.total,
        currency: &pay.currency,
        charge_id: &pay.charge_id,
        provider_charge_id: &pay.provider_charge_id,
        counted,
        flag,
        region: region.as_ref().map(RegionCode::as_str),
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
        currency: &pay.currency,
        group_id: Some(a.group.id),
        purchase_id: Some(purchase_id),
        memo: &memo,
        now: a.now,
    };
    let entries = [
        ledger::Entry::cash(pay.total),
        ledger::Entry::points(a.person.id, p.redeem),
        ledger::Entry::sales(-(pay.total + p.redeem)),
    ];
    ledger::post(tx, &refs, &entries).await?;
    holds::release(tx, &pay.payload).await?;
    ledger::release_hold(tx, &pay.payload).await?;
    Ok(Some((purchase_id, token)))
}

async fn product_name(conn: &mut Conn, sku: &str) -> AppResult<String> {
    Ok(products::get_any(conn, sku)
        .await?
        .map_or_else(|| sku.to_string(), |x| x.name))
}

/// The payment counts: the member is recognised, the goods ship. Returns the receipt.
async fn take_seat(
    tx: &mut Conn,
    a: &Arrival<'_>,
    purchase_id: i64,
    token: &str,
) -> AppResult<String> {
    let (group, person) = (a.group, a.person);
    holds::release_others_of(tx, group.id, person.id).await?;
    if let Some(m) =
        groups::member_for_user(tx, group.id, person.id, person.username.as_deref()).await?
        && m.user_id.is_none()
    {
        groups::bind_member(tx, m.id, person.id).await?;
    }
    let product = product_name(tx, &a.p.sku).await?;
    ship(tx, a, purchase_id, &product).await?;
    let bought = purchases::count_counted(tx, group.id).await?;
    Ok(receipt_message(a, &product, bought, token))
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
    let opened = super::refund::open(tx, a.ctx, &row, a.group, reason, a.now)
        .await?
        .ok_or_else(|| AppError::Other("a new charge already had a refund".into()))?;
    let amount = super::refund::amount_text(a.ctx, &a.pay.currency, a.pay.total);
    let product = product_name(tx, &a.p.sku).await?;
    let mut text = crate::replies::payment_refunded(
        &product,
        &amount,
        &a.group.key,
        reason,
        &opened.back_text,
    );
    let _ = write!(
        text,
        "\nReceipt: {}",
        esc(&a.ctx.receipt_url(&a.group.key, token))
    );
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
            tracing::error!(group_id = group.id, error = %e, "settling a filled group failed; the sweep will retry");
            ctx.sweep_wake.notify_one();
            false
        }
    }
}

/// The shipping request: stored, and emailed to fulfilment (claim 5).
async fn ship(conn: &mut Conn, a: &Arrival<'_>, purchase_id: i64, product: &str) -> AppResult<()> {
    let (ctx, pay) = (a.ctx, a.pay);
    let region = pay.address.as_ref().and_then(Address::region);
    let recipient = pay
        .recipient
        .clone()
        .unwrap_or_else(|| a.person.first_name.clone());
    let address = pay.address.as_ref().map(Address::lines).unwrap_or_else(|| {
        "(digital product paid in Telegram Stars: no address; deliver it to the buyer in Telegram)".into()
    });
    let region_text = region
        .as_ref()
        .map_or_else(|| "unknown".into(), |r| r.to_string());
    purchases::insert_shipping_request(
        conn,
        purchase_id,
        &recipient,
        &address,
        region.as_ref().map(RegionCode::as_str),
        a.now,
    )
    .await?;
    let mail = ShippingRequest {
        order: format!("GB-{purchase_id}"),
        product: product.to_string(),
        sku: a.p.sku.clone(),
        paid: super::refund::amount_text(ctx, &pay.currency, pay.total),
        key: a.group.key.clone(),
        recipient,
        address,
        region: region_text,
    }
    .render()?;
    let to = ctx.config.fulfilment_email.clone();
    queue_email(conn, a.now, format!("ship:{purchase_id}"), &to, mail).await?;
    Ok(())
}

fn receipt_message(a: &Arrival<'_>, product: &str, bought: u32, token: &str) -> String {
    let (ctx, group, p) = (a.ctx, a.group, a.p);
    Receipt {
        product: product.to_string(),
        price: ctx.money(p.price),
        paid: super::refund::amount_text(ctx, &a.pay.currency, a.pay.total),
        points_used: p.redeem,
        key: group.key.clone(),
        bought,
        head_count: group.head_count,
        rate: ctx.config.tiers.rate_for(group.head_count),
        receipt_url: ctx.receipt_url(&group.key, token),
    }
    .html()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_limit() {
        let p = Payload {
            group_id: i64::MAX,
            buyer_id: i64::MAX,
            price: i64::MAX,
            redeem: i64::MAX,
            sku: "x".repeat(32),
            nonce: "ABCDEFGH".into(),
        };
        assert!(p.encode().len() <= 128, "{} bytes", p.encode().len());
        assert_eq!(Payload::decode(&p.encode()), Some(p));
        assert_eq!(
            Payload::decode("v2:1:2:3:4::camera").map(|p| p.sku),
            Some("camera".into())
        );
        assert_eq!(Payload::decode("v2:1:2:3:4:x"), None);
        assert_eq!(Payload::decode("v1:1:2:3:4:x"), None);
        assert_eq!(Payload::decode("v2:1:2:x:4::x"), None);
    }
}
