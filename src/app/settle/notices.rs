//! What a settlement tells people: each buyer's discount notice (bot message and email) and
//! the organiser's summary, queued in one statement.

use super::Closing;
use crate::app::{AppError, AppResult, Ctx, email_message, telegram_message};
use crate::domain::settlement;
use crate::domain::{Points, Sku, UserId};
use crate::keyboard::{Keyboard, Press, callback};
use crate::mail::render::DiscountNotice;
use crate::replies::messages::{BUY_TOGETHER_AGAIN, Ending, SettledSummary};
use crate::store::groups::GroupRow;
use crate::store::outbox::{self, NewMessage};
use crate::store::purchases::PurchaseRow;
use crate::store::{Conn, users};
use std::collections::HashMap;

/// Each buyer's notice (bot message, and email when we have their address) with their new
/// balance, and the organiser's summary, queued in one statement.
pub(super) async fn queue_notices(
    conn: &mut Conn,
    ctx: &Ctx,
    due: &[Closing],
    buyer_ids: &[UserId],
    mut balances: HashMap<UserId, Points>,
    now: i64,
) -> AppResult<()> {
    let buyers = users::get_many(conn, buyer_ids).await?;
    // The catalog's names, looked up once per SKU (None: no longer sold).
    let mut catalog: HashMap<Sku, Option<String>> = HashMap::new();
    let mut notices = Vec::new();
    for c in due {
        let product = product_name(conn, &mut catalog, &c.group.sku)
            .await?
            .ok_or_else(|| {
                AppError::Other(format!("product {} is not in the catalog", c.group.sku))
            })?;
        for (credit, purchase) in c.outcome.credits.iter().zip(&c.bought) {
            let name = product_name(conn, &mut catalog, &purchase.sku)
                .await?
                .unwrap_or_else(|| product.clone());
            let balance = balances.entry(credit.buyer_id).or_insert(Points::ZERO);
            *balance = Points::new(balance.value() + credit.points.value());
            let notice = notice_of(ctx, c, credit, purchase, name, *balance);
            let email = buyers
                .get(&credit.buyer_id)
                .and_then(|u| u.email.as_deref());
            notices.extend(buyer_messages(c, credit, purchase, &notice, email)?);
        }
        notices.push(summary_message(ctx, c, product));
    }
    outbox::enqueue_many(conn, &notices, now).await?;
    Ok(())
}

/// A buyer's notice by bot message, and by email when we have their address.
fn buyer_messages(
    c: &Closing,
    credit: &settlement::Credit,
    purchase: &PurchaseRow,
    notice: &DiscountNotice,
    email: Option<&str>,
) -> AppResult<Vec<NewMessage>> {
    let group = &c.group;
    let mut out = vec![telegram_message(
        format!("notice:{}:{}:tg", group.id, purchase.id),
        credit.buyer_id.get(),
        crate::replies::messages::discount_notice(notice),
    )];
    if let Some(to) = email {
        out.push(email_message(
            format!("notice:{}:{}:email", group.id, purchase.id),
            to,
            notice.render()?,
        ));
    }
    Ok(out)
}

/// The organiser's summary, with the button that opens the same group again.
fn summary_message(ctx: &Ctx, c: &Closing, product: String) -> NewMessage {
    let (group, outcome) = (&c.group, &c.outcome);
    let summary = SettledSummary {
        key: group.key.clone(),
        product,
        buyers: outcome.buyers,
        head_count: group.head_count,
        filled: outcome.filled,
        rate: outcome.rate,
        total: outcome.total,
        total_money: ctx.money(outcome.total.value()),
        discount: group.discount,
        open_count: group.open_count,
    };
    let key = format!("summary:{}", group.id);
    let mut note = telegram_message(key, group.chat_id, summary.html());
    note.channel = outbox::Channel::Telegram {
        chat_id: group.chat_id,
        keyboard: Some(again_keyboard(group).to_json()),
        fallback_email: None,
        invoice: None,
        document: None,
    };
    note
}

/// The summary's one button: the organiser opens the same group again (`/regroup`).
fn again_keyboard(group: &GroupRow) -> Keyboard {
    let press = Press::Regroup {
        key: group.key.to_string(),
    };
    Keyboard::default().row(vec![callback(BUY_TOGETHER_AGAIN, press.encode())])
}

/// One buyer's discount notice, with their balance after this credit.
fn notice_of(
    ctx: &Ctx,
    c: &Closing,
    credit: &settlement::Credit,
    purchase: &PurchaseRow,
    product: String,
    balance: Points,
) -> DiscountNotice {
    let (group, outcome) = (&c.group, &c.outcome);
    let points = credit.points.value();
    DiscountNotice {
        key: group.key.to_string(),
        product,
        buyers: outcome.buyers,
        head_count: group.head_count.get(),
        open_count: group.open_count,
        rate: outcome.rate.to_string(),
        points,
        points_text: credit.points.to_string(),
        extra: credit.region_rate.minor(),
        extra_text: ctx.money(credit.region_rate.minor()),
        bonus: credit.region_bonus.minor(),
        bonus_text: ctx.money(credit.region_bonus.minor()),
        unit: ctx.config.currency.code().to_string(),
        reason: crate::replies::messages::no_discount_reason(&Ending {
            filled: outcome.filled,
            partial: group.policy == crate::domain::Policy::Partial,
            buyers: outcome.buyers,
            head_count: group.head_count.get(),
            discount: group.discount,
            closed_early: c.closed_early,
            open_count: group.open_count,
        }),
        balance_text: balance.to_string(),
        // Receipt tokens are stored hashed; the link's token is derived from the charge again.
        receipt_url: ctx.receipt_url(&group.key, &ctx.secrets.receipt_token(&purchase.charge_id)),
    }
}

/// The catalog name of `sku`, remembered in `catalog` for the rest of the batch.
async fn product_name(
    conn: &mut Conn,
    catalog: &mut HashMap<Sku, Option<String>>,
    sku: &Sku,
) -> AppResult<Option<String>> {
    if let Some(known) = catalog.get(sku) {
        return Ok(known.clone());
    }
    // Taken out of the catalog or not: its groups still settle and still name it.
    let name = crate::store::products::get_any(conn, sku.as_str())
        .await?
        .map(|p| p.name);
    catalog.insert(sku.clone(), name.clone());
    Ok(name)
}
