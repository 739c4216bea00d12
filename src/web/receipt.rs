//! `GET /g/{key}/receipt/{token}`: the "last page" of one purchase (claim 9), linked from
//! the buyer's receipt message. The token (100 random bits) is the only credential, so the
//! page shows nothing about the buyer: what was bought, what was paid, where the group
//! stands, and the points expected or credited. A wrong key or token is a plain 404.

use super::client::{ClientAddr, guarded};
use super::error::WebError;
use super::view::{self, Phase};
use crate::app::Ctx;
use crate::domain::payment::RefundMethod;
use crate::domain::{Expiry, GroupId, GroupKey, GroupStatus, HeadCount, Points, Policy, Sku};
use crate::replies::NextTier;
use crate::replies::messages::NO_DISCOUNT;
use crate::replies::when;
use crate::secrets::Purpose;
use crate::store::groups::GroupRow;
use crate::store::purchases::PurchaseRow;
use crate::store::{Conn, ledger, products, purchases, refunds};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;

pub fn router() -> Router<Ctx> {
    Router::new().route("/g/{key}/receipt/{token}", get(page))
}

async fn page(
    State(ctx): State<Ctx>,
    ClientAddr(client): ClientAddr,
    Path((key, token)): Path<(String, String)>,
) -> Result<Html<String>, WebError> {
    let page = guarded(&ctx, client, &key, load(&ctx, &key, &token)).await?;
    Ok(Html(page.render()?))
}

#[derive(Template)]
#[template(path = "pages/receipt.html")]
struct ReceiptPage {
    order: String,
    product: String,
    price: String,
    points_used: Option<String>,
    paid: String,
    bought_at: String,
    key: GroupKey,
    head_count: HeadCount,
    filled: u32,
    open_count: bool,
    phase: Phase,
    points_label: &'static str,
    points: String,
    points_note: String,
    page_url: String,
    bot_url: String,
}

async fn load(ctx: &Ctx, raw_key: &str, token: &str) -> Result<ReceiptPage, WebError> {
    let mut conn = ctx.store.read().await?;
    let group = view::group_by_key(&mut conn, raw_key).await?;
    let purchase = find(ctx, &mut conn, group.id, token).await?;
    let filled = purchases::count_counted(&mut conn, group.id).await?;
    let phase = view::phase(ctx, &mut conn, &group, filled).await?;
    let (points_label, points, points_note) =
        points(ctx, &mut conn, &group, &purchase, filled).await?;
    Ok(ReceiptPage {
        order: format!("GB-{}", purchase.id),
        product: product_name(&mut conn, purchase.sku.as_str()).await?,
        price: ctx.amount(purchase.price).to_string(),
        points_used: (purchase.points_redeemed > Points::ZERO)
            .then(|| purchase.points_redeemed.to_string()),
        paid: match purchase.currency.code() {
            "XTR" => format!("{} Stars", Points::of(purchase.amount_paid)),
            _ => purchase.currency.format(purchase.amount_paid.minor()),
        },
        bought_at: when(purchase.created_at),
        key: group.key.clone(),
        head_count: group.head_count,
        filled,
        open_count: group.open_count,
        phase,
        points_label,
        points,
        points_note,
        page_url: ctx.page_url(&group.key),
        bot_url: format!("https://t.me/{}", ctx.bot_username),
    })
}

/// The purchase of `group_id` whose receipt token `token` is. Tokens are stored as keyed
/// hashes: looked up by the hash, then checked in constant time; a token from before they
/// were hashed, or one made again for a notice, is the charge's derived token.
async fn find(
    ctx: &Ctx,
    conn: &mut Conn,
    group_id: GroupId,
    token: &str,
) -> Result<PurchaseRow, WebError> {
    if token.is_empty() || token.len() > 64 {
        return Err(WebError::NotFound);
    }
    let hash = ctx.secrets.hash(Purpose::Receipt, token);
    if let Some(p) = purchases::by_receipt(conn, &hash).await?
        && p.group_id == group_id
        && ctx
            .secrets
            .verify(Purpose::Receipt, token, &p.receipt_token)
    {
        return Ok(p);
    }
    purchases::of_group(conn, group_id)
        .await?
        .into_iter()
        .find(|p| ctx.secrets.is_receipt_token(&p.charge_id, token))
        .ok_or(WebError::NotFound)
}

async fn product_name(conn: &mut Conn, sku: &str) -> Result<String, WebError> {
    let product = match Sku::parse(sku) {
        Ok(sku) => products::get_any(conn, sku.as_str()).await?,
        Err(_) => None,
    };
    Ok(product.map_or_else(|| sku.to_string(), |p| p.name))
}

/// A payment that does not count is owed back: why, and where the money is.
async fn refund_line(
    conn: &mut Conn,
    p: &PurchaseRow,
) -> Result<(&'static str, String, String), WebError> {
    let refund = refunds::get(conn, &p.charge_id).await?;
    let why = refund
        .as_ref()
        .map(|r| crate::replies::refund_reason(r.reason))
        .unwrap_or("it could not count toward the group");
    let state = match &refund {
        Some(r) if r.done => format!(
            "The payment was refunded on {}.",
            r.done_at.map(when).unwrap_or_default()
        ),
        Some(r) if r.method == RefundMethod::Stars => {
            "Its Telegram Stars are being refunded.".to_string()
        }
        _ => format!(
            "The shop is refunding it to the card you paid with (reference {}).",
            p.charge_id
        ),
    };
    Ok((
        "Group points",
        "none".into(),
        format!("This payment does not count toward the group because {why}. {state}"),
    ))
}

/// An open group: what this purchase gets when the group fills, and what if it does not.
fn expected_line(
    ctx: &Ctx,
    g: &GroupRow,
    p: &PurchaseRow,
    filled: u32,
) -> (&'static str, String, String) {
    if !g.discount {
        return (
            "Points expected",
            Points::ZERO.to_string(),
            NO_DISCOUNT.into(),
        );
    }
    if g.open_count {
        // ¶0144: the tier of the buyers when it closes; the tier reached now, and the next.
        let rate = ctx.config.tiers.rate_for(filled);
        let expected = Points::of(p.price.share(rate.basis_points()));
        let next = NextTier::line(NextTier::of(&ctx.config.tiers, filled));
        return (
            "Points expected",
            expected.to_string(),
            format!(
                "Open head count: the tier of the number who bought when the group closes comes back; {filled} buyers reach {rate} now. {next}"
            ),
        );
    }
    let rate = ctx.config.tiers.rate_for(g.head_count.get());
    let expected = Points::of(p.price.share(rate.basis_points()));
    let by = match g.expiry() {
        Expiry::At(at) => format!("by {}", when(at)),
        Expiry::Never => "when its organiser closes it".into(),
    };
    let unless = match g.policy {
        Policy::AllOrNothing => format!("If it has not filled {by}, there is no discount."),
        Policy::Partial => format!("If it has not filled {by}, you get the tier reached by then."),
    };
    (
        "Points expected",
        expected.to_string(),
        format!(
            "{rate} of the price comes back when all {} seats are taken. {unless}",
            g.head_count
        ),
    )
}

/// The points line: (label, amount, one sentence on why).
async fn points(
    ctx: &Ctx,
    conn: &mut Conn,
    g: &GroupRow,
    p: &PurchaseRow,
    filled: u32,
) -> Result<(&'static str, String, String), WebError> {
    if !p.counted {
        return refund_line(conn, p).await;
    }
    let now = ctx.now();
    Ok(match g.status {
        GroupStatus::Settled => {
            let credited = ledger::settled_points(conn, g.id, p.id, p.buyer_id).await?;
            let note = if credited > 0 {
                "Credited to your points when the group closed. Send /points to the bot to see your balance; points pay for part of your next purchase."
            } else if !g.discount {
                NO_DISCOUNT
            } else {
                "The group closed with too few buyers for a discount."
            };
            (
                "Points credited",
                Points::new(credited).to_string(),
                note.into(),
            )
        }
        GroupStatus::Open if !g.is_expired(now) => expected_line(ctx, g, p, filled),
        GroupStatus::Open => (
            "Points",
            "pending".into(),
            "The group has expired and is being settled; your points appear here shortly.".into(),
        ),
        GroupStatus::Cancelled => (
            "Points",
            "none".into(),
            "The group was cancelled, so there is no group discount.".into(),
        ),
    })
}
