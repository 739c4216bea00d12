//! The buy buttons: confirm the group's product, pick another (claim 2), spend points or
//! not, and the invoice that follows.

use super::{InvoiceSpec, Payload, Step};
use crate::app::access::{open_group, product_of};
use crate::app::seats::check_can_buy;
use crate::app::{AppResult, Ctx, Person};
use crate::domain::payment::{self, Charge, NotSellable};
use crate::domain::{Points, Product, Sku};
use crate::keyboard::{Keyboard, Press, callback};
use crate::replies::UserError;
use crate::replies::messages::BuyQuestion;
use crate::store::groups::GroupRow;
use crate::store::{Conn, ledger, products};

/// How `product` is charged with `redeem` points off; physical goods need the payment
/// provider.
pub(super) fn charge(ctx: &Ctx, product: &Product, redeem: Points) -> Result<Charge, UserError> {
    payment::charge_for(product, redeem.value(), ctx.config.has_provider()).map_err(|e| match e {
        NotSellable::NeedsProvider => UserError::NotForSale {
            product: product.name.clone(),
        },
    })
}

/// Handles a buy-flow button.
#[tracing::instrument(skip_all, fields(user = %person.id))]
pub async fn press(ctx: &Ctx, person: &Person, press: &Press) -> AppResult<Step> {
    let now = ctx.now();
    let mut conn = ctx.store.read().await?;
    let key = match press {
        Press::Buy { key }
        | Press::Other { key }
        | Press::Product { key, .. }
        | Press::Pay { key, .. } => key,
        // The adapter sends this one to `app::regroup`; it never reaches the buy flow.
        Press::Regroup { .. } | Press::MyGroups { .. } => {
            return Err(UserError::StaleButton.into());
        }
    };
    let group = open_group(&mut conn, key, now).await?;
    check_can_buy(&mut conn, &group, person, now).await?;
    match press {
        Press::Buy { .. } => {
            let product = product_of(&mut conn, &group).await?;
            let question = BuyQuestion::Confirm {
                product: product.name.clone(),
                key: group.key.to_string(),
            };
            let kb = crate::app::views::buy_keyboard(ctx, &group, &product);
            Ok(Step::Message(question.html(), kb))
        }
        Press::Other { .. } => other_products(ctx, &mut conn, &group).await,
        Press::Product { sku, .. } => {
            let product = catalog_product(&mut conn, sku).await?;
            charge(ctx, &product, Points::ZERO)?;
            let balance = ledger::balance(&mut conn, person.id).await?.value();
            match payment::max_redeemable(&product, balance) {
                0 => Ok(Step::Invoice(invoice(
                    ctx,
                    &group,
                    person,
                    &product,
                    Points::ZERO,
                )?)),
                usable => Ok(use_points(ctx, &group, &product, balance, usable)),
            }
        }
        Press::Pay { sku, redeem, .. } => {
            let product = catalog_product(&mut conn, sku).await?;
            let balance = ledger::balance(&mut conn, person.id).await?.value();
            if *redeem > payment::max_redeemable(&product, balance) {
                return Err(UserError::NotEnoughPoints { balance }.into());
            }
            let spec = invoice(ctx, &group, person, &product, Points::new(*redeem))?;
            Ok(Step::Invoice(spec))
        }
        Press::Regroup { .. } | Press::MyGroups { .. } => Err(UserError::StaleButton.into()),
    }
}

/// "Another product": any product of the catalog counts as a seat (claim 2).
async fn other_products(ctx: &Ctx, conn: &mut Conn, group: &GroupRow) -> AppResult<Step> {
    let mut kb = Keyboard::default();
    for p in products::list(conn).await? {
        let press = Press::Product {
            key: group.key.to_string(),
            sku: p.sku.to_string(),
        };
        let label = format!("{} — {}", p.name, ctx.amount(p.price));
        kb = kb.row(vec![callback(label, press.encode())]);
    }
    Ok(Step::Message(BuyQuestion::WhichProduct.html(), kb))
}

/// The choice between spending `usable` points on `product` and keeping them.
fn use_points(ctx: &Ctx, group: &GroupRow, product: &Product, balance: i64, usable: i64) -> Step {
    let pay = |redeem: i64| {
        Press::Pay {
            key: group.key.to_string(),
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

/// The product a button names; a code no longer in the catalog is a stale button.
pub(super) async fn catalog_product(conn: &mut Conn, sku: &str) -> AppResult<Product> {
    let sku = Sku::parse(sku).map_err(|_| UserError::StaleButton)?;
    Ok(products::get(conn, &sku)
        .await?
        .ok_or(UserError::StaleButton)?)
}

/// The invoice for `product` with `redeem` points taken off.
fn invoice(
    ctx: &Ctx,
    group: &GroupRow,
    person: &Person,
    product: &Product,
    redeem: Points,
) -> AppResult<InvoiceSpec> {
    let charge = charge(ctx, product, redeem)?;
    let payload = Payload {
        group_id: group.id,
        buyer_id: person.id,
        price: product.price,
        redeem,
        sku: product.sku.clone(),
        nonce: crate::domain::group_key::random_token(8)?,
    };
    let description = truncate(
        &format!(
            "Group {} — normal price now, the group discount comes back as points when it closes.",
            group.key
        ),
        255,
    );
    let lines = price_lines(ctx, product, charge, redeem);
    Ok(InvoiceSpec {
        title: product.name.clone(),
        description,
        payload: payload.encode(),
        currency: lines.currency,
        prices: lines.prices,
        provider: lines.provider,
        need_shipping: lines.need_shipping,
        start_parameter: group.key.to_string(),
    })
}

/// An invoice's currency and price lines, and how it is paid.
struct PriceLines {
    currency: String,
    prices: Vec<(String, i64)>,
    provider: bool,
    need_shipping: bool,
}

fn price_lines(ctx: &Ctx, product: &Product, charge: Charge, redeem: Points) -> PriceLines {
    match charge {
        // One price line: Stars accept only one.
        Charge::Stars { stars } => PriceLines {
            currency: payment::STARS.to_string(),
            prices: vec![(product.name.clone(), i64::from(stars))],
            provider: false,
            need_shipping: false,
        },
        // Telegram's amounts cannot be negative, so redeemed points are taken off the line
        // and named in its label.
        Charge::Provider { amount, ship } => {
            let label = if redeem > Points::ZERO {
                format!("{} ({} points applied)", product.name, redeem.value())
            } else {
                product.name.clone()
            };
            PriceLines {
                currency: ctx.config.currency.code().to_string(),
                prices: vec![(label, amount)],
                provider: true,
                need_shipping: ship,
            }
        }
    }
}

/// The first `max_chars` characters of `s`.
fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}
