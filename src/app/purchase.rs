//! Buying a seat (claims 1, 2, 5, 12, 13): the buy buttons, the invoice, the pre-checkout
//! check, the shipping query, and recording a successful payment exactly once.

use super::access::{ensure_open, open_group, product_of};
use super::settle::settle_group;
use super::{AppError, AppResult, Ctx, Person, queue_email, queue_message};
use crate::domain::{Product, RegionCode, Sku};
use crate::keyboard::{Keyboard, Press, callback};
use crate::mail::render::ShippingRequest;
use crate::metrics::Metrics;
use crate::replies::{UserError, esc};
use crate::store::groups::{self, GroupRow};
use crate::store::purchases::{self, Flag, NewPurchase};
use crate::store::{Conn, ledger, products, updates, users};
use std::fmt::Write;

/// Whether this person may take a seat now: not bought yet, a seat free, and either invited
/// or an open (not pre-registered) seat left.
pub async fn check_can_buy(conn: &mut Conn, group: &GroupRow, person: &Person) -> AppResult<()> {
    if purchases::has_seat(conn, group.id, person.id).await? {
        return Err(UserError::AlreadyBought {
            key: group.key.clone(),
        }
        .into());
    }
    let counted = purchases::count_counted(conn, group.id).await?;
    if counted >= group.head_count {
        return Err(UserError::GroupFull {
            key: group.key.clone(),
            seats: group.head_count,
        }
        .into());
    }
    if groups::member_for_user(conn, group.id, person.id, person.username.as_deref())
        .await?
        .is_some()
    {
        return Ok(());
    }
    let reserved = purchases::count_reserved(conn, group.id).await?;
    if counted + reserved >= group.head_count {
        return Err(UserError::NotInvited {
            key: group.key.clone(),
        }
        .into());
    }
    Ok(())
}

/// An invoice to send, in the adapter's hands; queued in the outbox as JSON (a field added
/// later needs `#[serde(default)]` so rows queued before it still read).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InvoiceSpec {
    pub title: String,
    pub description: String,
    pub payload: String,
    pub currency: String,
    pub prices: Vec<(String, i64)>,
    pub need_shipping: bool,
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
    /// Makes each invoice's payload unique, so points held for one invoice are not taken
    /// as held for another (empty for invoices that redeem nothing).
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

/// How long points stay held for an invoice that passed its pre-checkout.
const HOLD_SECS: i64 = 3_600;

/// At least a tenth of the price is paid in money; points cover the rest at most.
pub fn max_redeemable(price: i64, balance: i64) -> i64 {
    // Providers refuse a zero (or tiny) charge: at least a tenth, and at least one unit.
    let keep = (price / 10).max(1);
    balance.clamp(0, (price - keep).max(0))
}

/// Handles a buy-flow button.
#[tracing::instrument(skip(ctx), fields(user = person.id))]
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
    check_can_buy(&mut conn, &group, person).await?;
    match press {
        Press::Buy { .. } => {
            let product = product_of(&mut conn, &group).await?;
            Ok(Step::Message(
                format!(
                    "Buy <b>{}</b> in group <code>{}</code>?",
                    esc(&product.name),
                    esc(&group.key)
                ),
                super::views::buy_keyboard(ctx, &group, &product),
            ))
        }
        Press::Other { .. } => {
            let mut kb = Keyboard::default();
            for p in products::list(&mut conn).await? {
                kb = kb.row(vec![callback(
                    format!("{} — {}", p.name, ctx.money(p.price.minor())),
                    Press::Product {
                        key: group.key.clone(),
                        sku: p.sku.to_string(),
                    }
                    .encode(),
                )]);
            }
            Ok(Step::Message(
                "Any product of the catalog counts as your seat in this group. Which one would you like?".into(),
                kb,
            ))
        }
        Press::Product { sku, .. } => {
            let product = catalog_product(&mut conn, sku).await?;
            let balance = ledger::balance(&mut conn, person.id).await?.value();
            let usable = max_redeemable(product.price.minor(), balance);
            if usable == 0 {
                return Ok(Step::Invoice(invoice(ctx, &group, person, &product, 0)));
            }
            let pay = |redeem: i64| {
                Press::Pay {
                    key: group.key.clone(),
                    sku: product.sku.to_string(),
                    redeem,
                }
                .encode()
            };
            let kb = Keyboard::default()
                .row(vec![callback(
                    format!(
                        "Use {usable} points — pay {}",
                        ctx.money(product.price.minor() - usable)
                    ),
                    pay(usable),
                )])
                .row(vec![callback(
                    format!("Keep my points — pay {}", ctx.money(product.price.minor())),
                    pay(0),
                )]);
            Ok(Step::Message(
                format!(
                    "You have <b>{balance}</b> points. Use them on {}?",
                    esc(&product.name)
                ),
                kb,
            ))
        }
        Press::Pay { sku, redeem, .. } => {
            let product = catalog_product(&mut conn, sku).await?;
            let balance = ledger::balance(&mut conn, person.id).await?.value();
            if *redeem > max_redeemable(product.price.minor(), balance) {
                return Err(UserError::NotEnoughPoints { balance }.into());
            }
            Ok(Step::Invoice(invoice(
                ctx, &group, person, &product, *redeem,
            )))
        }
    }
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
) -> InvoiceSpec {
    let price = product.price.minor();
    let nonce = if redeem > 0 {
        crate::domain::group_key::random_token(8).unwrap_or_default()
    } else {
        String::new()
    };
    let payload = Payload {
        group_id: group.id,
        buyer_id: person.id,
        price,
        redeem,
        sku: product.sku.to_string(),
        nonce,
    };
    let stars = ctx.config.uses_stars();
    // One price line: Stars accept only one, and Telegram's amounts cannot be negative, so
    // redeemed points are taken off the line and named in its label.
    let label = if redeem > 0 {
        format!("{} ({redeem} points applied)", product.name)
    } else {
        product.name.clone()
    };
    let prices = vec![(label, price - redeem)];
    InvoiceSpec {
        title: product.name.clone(),
        description: truncate(
            &format!(
                "Group {} — normal price now, the group discount comes back as points when it closes.",
                group.key
            ),
            255,
        ),
        payload: payload.encode(),
        currency: ctx.config.invoice_currency().to_string(),
        prices,
        need_shipping: !stars,
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// The pre-checkout check (answered within 10 s by the adapter): group open, key valid,
/// buyer allowed, seat free, price and total unchanged, points still there.
#[tracing::instrument(skip(ctx), fields(user = person.id))]
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
    let mut conn = ctx.store.read().await?;
    let group = groups::by_id(&mut conn, p.group_id)
        .await?
        .ok_or(UserError::UnknownKey)?;
    ensure_open(&group, now)?;
    check_can_buy(&mut conn, &group, person).await?;
    let product = catalog_product(&mut conn, &p.sku).await?;
    let fee = if ctx.config.uses_stars() {
        0
    } else {
        ctx.config.shipping_fee.minor()
    };
    let expected = p.price - p.redeem;
    if product.price.minor() != p.price
        || currency != ctx.config.invoice_currency()
        || (total != expected && total != expected + fee)
    {
        return Err(UserError::PriceChanged.into());
    }
    if p.redeem == 0 {
        return Ok(());
    }
    // Points are held for this invoice in a write transaction, so two invoices approved at
    // the same time cannot spend the same points.
    drop(conn);
    let mut tx = ctx.store.write().await?;
    let available = ledger::balance(&mut tx, person.id).await?.value()
        - ledger::held_for_others(&mut tx, person.id, payload, now).await?;
    if p.redeem > available {
        return Err(UserError::NotEnoughPoints {
            balance: available.max(0),
        }
        .into());
    }
    ledger::hold(&mut tx, payload, person.id, p.redeem, now + HOLD_SECS).await?;
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
        flag: Option<Flag>,
        settled: bool,
    },
    /// This charge (or update) was already recorded: nothing changed.
    Duplicate,
}

/// Records a payment exactly once (keyed by Telegram's charge id), ships the goods, sends
/// the receipt, and settles the group if this was the N-th purchase — one transaction.
#[tracing::instrument(skip(ctx, pay), fields(user = person.id, charge = %pay.charge_id))]
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
    if !updates::claim(&mut tx, update_id, now).await? {
        return Ok(Recorded::Duplicate);
    }
    users::seen(
        &mut tx,
        person.id,
        person.username.as_deref(),
        &person.first_name,
        true,
        now,
    )
    .await?;
    let group = groups::lock(&mut tx, ctx.store.backend(), p.group_id)
        .await?
        .ok_or_else(|| AppError::Other(format!("payment for unknown group {}", p.group_id)))?;
    let flag = if ensure_open(&group, now).is_err() {
        Some(Flag::Late)
    } else if purchases::has_seat(&mut tx, group.id, person.id).await? {
        Some(Flag::Repeat)
    } else {
        match check_can_buy(&mut tx, &group, person).await {
            Ok(()) => None,
            Err(AppError::User(_)) => Some(Flag::Full),
            Err(other) => return Err(other),
        }
    };
    let region = pay.address.as_ref().and_then(Address::region);
    // 20 symbols: 100 bits, unguessable.
    let token = crate::domain::group_key::random_token(20)?;
    let paid = pay.total;
    let new = NewPurchase {
        group_id: group.id,
        buyer_id: person.id,
        sku: &p.sku,
        price: p.price,
        points_redeemed: p.redeem,
        amount_paid: paid,
        currency: &pay.currency,
        charge_id: &pay.charge_id,
        provider_charge_id: &pay.provider_charge_id,
        flag,
        region: region.as_ref().map(RegionCode::as_str),
        receipt_token: &token,
        now,
    };
    let Some(purchase_id) = purchases::insert(&mut tx, &new).await? else {
        tracing::info!("payment already recorded");
        return Ok(Recorded::Duplicate);
    };
    if paid != p.price - p.redeem {
        tracing::warn!(
            paid,
            price = p.price,
            redeem = p.redeem,
            "paid amount differs from the invoice (delivery fee?)"
        );
    }
    // The money: cash in, points out, revenue at the normal price; delivery fees to revenue.
    let txn = format!("purchase:{}", pay.charge_id);
    let memo = format!("Purchase of {} in group {}", p.sku, group.key);
    let extra = paid - (p.price - p.redeem);
    ledger::post(
        &mut tx,
        &ledger::Refs {
            txn: &txn,
            group_id: Some(group.id),
            purchase_id: Some(purchase_id),
            memo: &memo,
            now,
        },
        &[
            ledger::Entry::cash(paid),
            ledger::Entry::points(person.id, p.redeem),
            ledger::Entry::sales(-(p.price + extra)),
        ],
    )
    .await?;
    if p.redeem > 0 {
        ledger::release_hold(&mut tx, &pay.payload).await?;
    }
    if let Some(m) =
        groups::member_for_user(&mut tx, group.id, person.id, person.username.as_deref()).await?
    {
        if m.user_id.is_none() {
            groups::bind_member(&mut tx, m.id, person.id).await?;
        }
    }

    let product_name = products::get(
        &mut tx,
        &Sku::parse(&p.sku).map_err(|e| AppError::Other(e.to_string()))?,
    )
    .await?
    .map(|x| x.name)
    .unwrap_or_else(|| p.sku.clone());
    ship(
        &mut tx,
        ctx,
        &group,
        purchase_id,
        &product_name,
        &p.sku,
        paid,
        person,
        pay,
        region.as_ref(),
        now,
    )
    .await?;

    let mut settled = false;
    let bought = purchases::count_counted(&mut tx, group.id).await?;
    let receipt = receipt_message(ctx, &group, &product_name, &p, paid, flag, bought, &token);
    let email = users::get(&mut tx, person.id).await?.and_then(|u| u.email);
    queue_message(
        &mut tx,
        now,
        format!("receipt:{purchase_id}"),
        person.id,
        receipt,
        None,
        email,
    )
    .await?;
    tx.commit().await?;
    ctx.committed();
    // The N-th purchase settles the group, in a transaction of its own: the payment stays
    // recorded whatever happens to the settlement, and a group left filled but open (a
    // crash, an error) is settled by the sweep, which treats filled groups as due.
    if flag.is_none() && bought >= group.head_count {
        match settle_group(ctx, group.id).await {
            Ok(done) => settled = done,
            Err(e) => {
                tracing::error!(group_id = group.id, error = %e, "settling a filled group failed; the sweep will retry");
                ctx.sweep_wake.notify_one();
            }
        }
    }
    Metrics::inc(&ctx.metrics.purchases_total);
    tracing::info!(
        purchase_id,
        group_id = group.id,
        ?flag,
        settled,
        "payment recorded"
    );
    Ok(Recorded::New {
        purchase_id,
        flag,
        settled,
    })
}

#[allow(clippy::too_many_arguments)]
async fn ship(
    conn: &mut Conn,
    ctx: &Ctx,
    group: &GroupRow,
    purchase_id: i64,
    product: &str,
    sku: &str,
    paid: i64,
    person: &Person,
    pay: &Payment,
    region: Option<&RegionCode>,
    now: i64,
) -> AppResult<()> {
    let recipient = pay
        .recipient
        .clone()
        .unwrap_or_else(|| person.first_name.clone());
    let address = pay.address.as_ref().map(Address::lines).unwrap_or_else(|| {
        "(Telegram Stars payment: no address from Telegram; contact the buyer in the bot)".into()
    });
    let region_text = region
        .map(|r| r.to_string())
        .unwrap_or_else(|| "unknown".into());
    purchases::insert_shipping_request(
        conn,
        purchase_id,
        &recipient,
        &address,
        region.map(RegionCode::as_str),
        now,
    )
    .await?;
    let mail = ShippingRequest {
        order: format!("GB-{purchase_id}"),
        product: product.to_string(),
        sku: sku.to_string(),
        paid: ctx.money(paid),
        key: group.key.clone(),
        recipient,
        address,
        region: region_text,
    }
    .render()?;
    let to = ctx.config.fulfilment_email.clone();
    queue_email(conn, now, format!("ship:{purchase_id}"), &to, mail).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn receipt_message(
    ctx: &Ctx,
    group: &GroupRow,
    product: &str,
    p: &Payload,
    paid: i64,
    flag: Option<Flag>,
    bought: u32,
    token: &str,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "<b>Thank you — payment received.</b>");
    let _ = writeln!(s, "{}: {}", esc(product), ctx.money(p.price));
    if p.redeem > 0 {
        let _ = writeln!(s, "Points used: {}", p.redeem);
    }
    let _ = writeln!(
        s,
        "Paid: {}",
        if ctx.config.uses_stars() {
            format!("{paid} Stars")
        } else {
            ctx.money(paid)
        }
    );
    let _ = writeln!(s, "Your order has gone to the warehouse and ships now.");
    match flag {
        None => {
            let rate = ctx.config.tiers.rate_for(group.head_count);
            let _ = writeln!(
                s,
                "Group <code>{}</code>: {bought} of {} seats bought. When it fills, you get {rate} back as points.",
                esc(&group.key),
                group.head_count
            );
        }
        Some(f) => {
            let why = match f {
                Flag::Late => "the group had already closed",
                Flag::Full => "every seat had been taken",
                Flag::Repeat => "you already hold a seat in it",
            };
            let _ = writeln!(
                s,
                "This purchase does not count toward group <code>{}</code> because {why}; it is a normal purchase at the normal price.",
                esc(&group.key)
            );
        }
    }
    let _ = write!(s, "Receipt: {}", esc(&ctx.receipt_url(&group.key, token)));
    s
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

    #[test]
    fn redemption_keeps_a_tenth_in_money() {
        assert_eq!(max_redeemable(34_800, 1_740), 1_740);
        assert_eq!(max_redeemable(6_780, 100_000), 6_102);
        assert_eq!(max_redeemable(6_780, -5), 0);
        assert_eq!(max_redeemable(5, 100), 4);
        assert_eq!(max_redeemable(1, 100), 0);
    }
}
