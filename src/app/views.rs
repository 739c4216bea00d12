//! What a group looks like in a chat, built from its stored row: the typed card (rendered in
//! [`crate::replies::group`]) and its buy buttons.

use super::Ctx;
use crate::domain::{Expiry, Product};
use crate::keyboard::{Keyboard, Press, callback, url};
use crate::replies::NextTier;
use crate::replies::group::{GroupCard, tier_line};
use crate::store::groups::GroupRow;

/// The card shown with a purchase prompt, on `/start KEY`, `/join` and `/buy`.
pub fn group_card(
    ctx: &Ctx,
    g: &GroupRow,
    product: &Product,
    organiser: &str,
    bought: u32,
) -> GroupCard {
    let now = ctx.now();
    GroupCard {
        product: product.name.clone(),
        organiser: organiser.to_string(),
        key: g.key.clone(),
        price: ctx.amount(product.price),
        bought,
        head_count: g.head_count,
        when_full: ctx.config.tiers.rate_for(g.head_count.get()),
        tiers: tier_line(&ctx.config.tiers),
        open: (g.expires_at > now).then_some((g.expires_at, g.expires_at - now)),
        no_expiry: g.expiry() == Expiry::Never,
        discount: g.discount,
        open_count: g.open_count.then(|| {
            let tiers = &ctx.config.tiers;
            (tiers.rate_for(bought), NextTier::of(tiers, bought))
        }),
        page_url: ctx.page_url(&g.key),
    }
}

/// Buy buttons: the group's product, another catalog product (claim 2), the group page.
pub fn buy_keyboard(ctx: &Ctx, g: &GroupRow, product: &Product) -> Keyboard {
    let mut kb = Keyboard::default().row(vec![
        callback(
            format!("Buy — {}", ctx.amount(product.price)),
            Press::Product {
                key: g.key.to_string(),
                sku: product.sku.to_string(),
            }
            .encode(),
        ),
        callback(
            "Another product",
            Press::Other {
                key: g.key.to_string(),
            }
            .encode(),
        ),
    ]);
    // Telegram accepts only public https links on buttons.
    if ctx.config.public_url.starts_with("https://") {
        kb = kb.row(vec![url("Group page", ctx.page_url(&g.key))]);
    }
    kb
}

/// The buttons under a page of `/mygroups`: newer and older pages, where there are some.
pub fn my_groups_keyboard(g: &crate::replies::messages::MyGroups) -> Option<Keyboard> {
    use crate::replies::messages::{NEWER_GROUPS, OLDER_GROUPS};
    let mut row = Vec::new();
    if g.page > 0 {
        let newer = Press::MyGroups { page: g.page - 1 };
        row.push(callback(NEWER_GROUPS, newer.encode()));
    }
    if g.more {
        let older = Press::MyGroups {
            page: g.page.saturating_add(1),
        };
        row.push(callback(OLDER_GROUPS, older.encode()));
    }
    (!row.is_empty()).then(|| Keyboard::default().row(row))
}
