//! Message bodies built from stored rows (Telegram HTML, every stored string escaped).

use super::Ctx;
use crate::domain::{Product, TierTable};
use crate::keyboard::{Keyboard, Press, callback, url};
use crate::replies::{duration, esc, when};
use crate::store::groups::GroupRow;
use std::fmt::Write;

/// "2 → 3%, 3 → 5%, 4 → 10%" (tiers with a rate only).
pub fn tier_line(tiers: &TierTable) -> String {
    tiers
        .tiers()
        .iter()
        .filter(|t| t.rate.basis_points() > 0)
        .map(|t| format!("{} → {}", t.members, t.rate))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The card shown with a purchase prompt, on `/start KEY`, `/join` and `/buy`.
pub fn group_card(
    ctx: &Ctx,
    g: &GroupRow,
    product: &Product,
    organiser: &str,
    bought: u32,
) -> String {
    let now = ctx.now();
    let rate_full = ctx.config.tiers.rate_for(g.head_count);
    let mut s = String::new();
    let _ = writeln!(s, "<b>Group purchase: {}</b>", esc(&product.name));
    let _ = writeln!(
        s,
        "Organised by {} · key <code>{}</code>",
        esc(organiser),
        esc(&g.key)
    );
    let _ = writeln!(
        s,
        "Price: {} each — you pay the normal price now and your order ships right away.",
        ctx.money(product.price.minor())
    );
    let _ = writeln!(s, "Seats: {bought} of {} bought", g.head_count);
    let _ = writeln!(
        s,
        "When the group fills: {rate_full} back as points (tiers: {}).",
        tier_line(&ctx.config.tiers)
    );
    if g.expires_at > now {
        let _ = writeln!(
            s,
            "Open until {} ({} left).",
            when(g.expires_at),
            duration(g.expires_at - now)
        );
    }
    let _ = write!(s, "Group page: {}", esc(&ctx.page_url(&g.key)));
    s
}

/// Buy buttons: the group's product, another catalog product (claim 2), the group page.
pub fn buy_keyboard(ctx: &Ctx, g: &GroupRow, product: &Product) -> Keyboard {
    let mut kb = Keyboard::default().row(vec![
        callback(
            format!("Buy — {}", ctx.money(product.price.minor())),
            Press::Product {
                key: g.key.clone(),
                sku: product.sku.to_string(),
            }
            .encode(),
        ),
        callback(
            "Another product",
            Press::Other { key: g.key.clone() }.encode(),
        ),
    ]);
    // Telegram accepts only public https links on buttons.
    if ctx.config.public_url.starts_with("https://") {
        kb = kb.row(vec![url("Group page", ctx.page_url(&g.key))]);
    }
    kb
}
