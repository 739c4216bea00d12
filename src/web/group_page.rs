//! `GET /g/{key}`: the group's own page (claim 10) — what is bought and for how much, the
//! discount tiers with the one reached now highlighted, the seats taken (buyers by first
//! name only), the time left, and the way into the bot: a deep-link button and, for people
//! reading on a computer, its QR code. A closed group answers 410; an unknown key 404.

use super::client::{ClientAddr, guarded};
use super::error::{Closed, WebError};
use super::view::{self, iso};
use crate::app::Ctx;
use crate::app::access::{organiser_name, product_of};
use crate::domain::{Expiry, GroupKey, HeadCount, Points, Policy, Product, TierTable};
use crate::replies::NextTier;
use crate::replies::messages::NO_DISCOUNT;
use crate::replies::{duration, when};
use crate::store::groups::GroupRow;
use crate::store::{Conn, products, purchases};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;

pub fn router() -> Router<Ctx> {
    Router::new().route("/g/{key}", get(page))
}

async fn page(
    State(ctx): State<Ctx>,
    ClientAddr(client): ClientAddr,
    Path(key): Path<String>,
) -> Result<Html<String>, WebError> {
    let page = guarded(&ctx, client, &key, load(&ctx, &key)).await?;
    Ok(Html(page.render()?))
}

/// One row of the tier table.
struct TierRow {
    members: u32,
    rate: String,
    /// Points back on the group's product at this tier.
    points: String,
    /// The tier the group has reached now.
    reached: bool,
}

struct OtherProduct {
    name: String,
    price: String,
}

#[derive(Template)]
#[template(path = "pages/group.html")]
struct GroupPage {
    key: GroupKey,
    product: String,
    price: String,
    others: Vec<OtherProduct>,
    organiser: String,
    head_count: HeadCount,
    filled: u32,
    seats_left: u32,
    buyers: Vec<String>,
    tiers: Vec<TierRow>,
    rate_full: String,
    policy_note: String,
    /// False for a product sold without a group discount (¶0146).
    discount: bool,
    no_discount: &'static str,
    /// Without expiry (¶0145): the time line says so instead.
    no_expiry: bool,
    /// An open head count (¶0144): buyers so far and the next tier, no seats.
    open_count: bool,
    next_tier: String,
    expires: String,
    expires_iso: String,
    time_left: String,
    deep_link: String,
    bot: String,
    page_url: String,
    qr: Option<String>,
    description: String,
}

async fn load(ctx: &Ctx, raw_key: &str) -> Result<GroupPage, WebError> {
    let mut conn = ctx.store.read().await?;
    let group = view::group_by_key(&mut conn, raw_key).await?;
    let buyers = purchases::buyer_first_names(&mut conn, group.id).await?;
    let filled = u32::try_from(buyers.len()).unwrap_or(u32::MAX);
    let product = product_of(&mut conn, &group).await?;
    let phase = view::phase(ctx, &mut conn, &group, filled).await?;
    if !phase.open {
        return Err(WebError::Gone(Closed {
            product: product.name,
            headline: phase.headline,
            detail: phase.detail,
        }));
    }
    let organiser = organiser_name(&mut conn, &group).await?;
    let others = other_products(ctx, &mut conn, &product).await?;
    Ok(build(ctx, &group, &product, organiser, buyers, others))
}

async fn other_products(
    ctx: &Ctx,
    conn: &mut Conn,
    product: &Product,
) -> Result<Vec<OtherProduct>, WebError> {
    Ok(products::list(conn)
        .await?
        .into_iter()
        .filter(|p| p.sku != product.sku)
        .map(|p| OtherProduct {
            price: ctx.money(p.price.minor()),
            name: p.name,
        })
        .collect())
}

/// What happens to an unfilled group, in words.
fn policy_note(g: &GroupRow) -> String {
    let ends = match g.expiry() {
        Expiry::At(_) => "when the group expires",
        Expiry::Never => "when its organiser closes the group",
    };
    match (g.discount, g.policy) {
        (false, _) => String::new(),
        (true, _) if g.open_count => {
            format!("Open head count: {ends}, everyone gets the tier of the number who bought.")
        }
        (true, Policy::AllOrNothing) => format!(
            "If fewer than {} people have bought {ends}, there is no discount; everyone keeps their order at the normal price.",
            g.head_count
        ),
        (true, Policy::Partial) => format!(
            "If the group has not filled {}, everyone gets the tier reached by then.",
            ends.replace("the group", "it")
        ),
    }
}

/// The tiers a group of this size can reach, the one reached by `filled` buyers marked.
fn tier_rows(tiers: &TierTable, g: &GroupRow, product: &Product, filled: u32) -> Vec<TierRow> {
    let reached = tiers
        .tiers()
        .iter()
        .rfind(|t| t.members <= filled)
        .map(|t| t.members);
    tiers
        .tiers()
        .iter()
        .filter(|t| t.members <= g.head_count.get())
        .map(|t| TierRow {
            members: t.members,
            rate: t.rate.to_string(),
            points: Points::of(product.price.share(t.rate.basis_points())).to_string(),
            reached: Some(t.members) == reached,
        })
        .collect()
}

/// The page's one-paragraph summary: price, what comes back, seats taken, until when.
fn description(
    g: &GroupRow,
    price: &str,
    filled: u32,
    rate_full: &str,
    next_tier: &str,
    expires: &str,
) -> String {
    let promise = if g.discount && g.open_count {
        format!("The more buy, the more comes back: {next_tier}")
    } else if g.discount {
        format!(
            "When {} people have bought, everyone gets {rate_full} back as points.",
            g.head_count
        )
    } else {
        NO_DISCOUNT.to_string()
    };
    let until = match g.expiry() {
        Expiry::At(_) => format!("open until {expires}"),
        Expiry::Never => "no expiry".into(),
    };
    let taken = if g.open_count {
        format!("{filled} bought so far")
    } else {
        format!("{filled} of {} seats taken", g.head_count)
    };
    format!("{price} each, shipped right away. {promise} {taken}; {until}.")
}

fn build(
    ctx: &Ctx,
    g: &GroupRow,
    product: &Product,
    organiser: String,
    buyers: Vec<String>,
    others: Vec<OtherProduct>,
) -> GroupPage {
    let tiers = &ctx.config.tiers;
    let filled = u32::try_from(buyers.len()).unwrap_or(u32::MAX);
    let rows = tier_rows(tiers, g, product, filled);
    let rate_full = tiers.rate_for(g.head_count.get()).to_string();
    let price = ctx.money(product.price.minor());
    let now = ctx.now();
    let expires = when(g.expires_at);
    let deep_link = ctx.deep_link(g.key.as_str());
    let next_tier = NextTier::line(NextTier::of(tiers, filled));
    GroupPage {
        description: description(g, &price, filled, &rate_full, &next_tier, &expires),
        open_count: g.open_count,
        next_tier,
        policy_note: policy_note(g),
        discount: g.discount,
        no_discount: NO_DISCOUNT,
        no_expiry: g.expiry() == Expiry::Never,
        qr: super::qr::svg(&deep_link, "QR code of the link to buy in Telegram"),
        key: g.key.clone(),
        product: product.name.clone(),
        price,
        others,
        organiser,
        head_count: g.head_count,
        filled,
        seats_left: g.head_count.get().saturating_sub(filled),
        buyers,
        tiers: rows,
        rate_full,
        expires,
        expires_iso: iso(g.expires_at),
        time_left: duration(g.expires_at - now),
        deep_link,
        bot: ctx.bot_username.to_string(),
        page_url: ctx.page_url(&g.key),
    }
}
