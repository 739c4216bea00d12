//! Telegram's checkout questions: the pre-checkout check (which holds the seat and the
//! points for [`SEAT_HOLD_SECS`]) and the shipping query.

use super::Payload;
use super::press::catalog_product;
use crate::app::access::ensure_open;
use crate::app::seats::{refusal, seats_for};
use crate::app::{AppResult, Ctx, Person};
use crate::domain::payment::{self, Charge, SEAT_HOLD_SECS};
use crate::domain::{Points, Product, RegionCode};
use crate::replies::UserError;
use crate::store::groups;
use crate::store::{Conn, holds, ledger, members};
use std::fmt::Write;

/// The pre-checkout check (answered within 10 s by the adapter): group open, key valid,
/// buyer allowed, a seat neither counted nor held, price and total unchanged, points still
/// there. Approving holds the seat (and the points) for this invoice for
/// [`SEAT_HOLD_SECS`], in the same transaction as the decision.
#[tracing::instrument(skip_all, fields(user = %person.id))]
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
    let product = catalog_product(&mut tx, p.sku.as_str()).await?;
    check_total(ctx, &product, &p, currency, total)?;
    if p.redeem > Points::ZERO {
        hold_points(&mut tx, person, &p, payload, now).await?;
    }
    // An invited member found by username is bound now, so their hold counts among the
    // invited members' seats.
    if let Some(m) =
        members::for_user(&mut tx, group.id, person.id, person.username.as_deref()).await?
        && m.user_id.is_none()
    {
        members::bind(&mut tx, m.id, person.id).await?;
    }
    let until = now + SEAT_HOLD_SECS;
    holds::hold(&mut tx, payload, group.id, person.id, now, until).await?;
    tx.commit().await?;
    Ok(())
}

/// The price is still the invoice's, and the total is what this product costs paid this way
/// (with the delivery fee where it ships).
fn check_total(
    ctx: &Ctx,
    product: &Product,
    p: &Payload,
    currency: &str,
    total: i64,
) -> Result<(), UserError> {
    let charge = super::press::charge(ctx, product, p.redeem)?;
    let fee = ctx.config.shipping_fee.minor();
    let total_ok = match charge {
        Charge::Stars { stars } => {
            currency == payment::STARS && total == i64::from(stars) && p.redeem == Points::ZERO
        }
        Charge::Provider { amount, ship } => {
            currency == ctx.config.currency.code()
                && (total == amount || (ship && total == amount + fee))
        }
    };
    if product.price != p.price || !total_ok {
        return Err(UserError::PriceChanged);
    }
    Ok(())
}

/// Holds the points the invoice spends. Every unlapsed hold counts, the payer's other
/// invoices included, so the same points never pay for two invoices.
async fn hold_points(
    tx: &mut Conn,
    person: &Person,
    p: &Payload,
    payload: &str,
    now: i64,
) -> AppResult<()> {
    let available = ledger::balance(tx, person.id).await?.value()
        - ledger::held_for_others(tx, person.id, payload, now).await?;
    let redeem = p.redeem.value();
    if redeem > available {
        return Err(UserError::NotEnoughPoints {
            balance: available.max(0),
        }
        .into());
    }
    ledger::hold(tx, payload, person.id, redeem, now + SEAT_HOLD_SECS).await?;
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
    /// The region the address is in, when it names one we know.
    pub fn region(&self) -> Option<RegionCode> {
        RegionCode::from_address(&self.country_code, &self.state, &self.post_code)
    }

    /// The address as lines for a label.
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
