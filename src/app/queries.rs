//! Read-mostly commands: `/status`, `/points`, `/mygroups`, and the organiser's `/cancel`.

use super::access::{organiser_name, product_of};
use super::{AppResult, Ctx, Person, queue_message};
use crate::domain::{GroupKey, GroupStatus};
use crate::replies::{UserError, bullet, duration, esc, when};
use crate::store::groups::{self, GroupRow};
use crate::store::{Conn, ledger, purchases, updates, users};
use std::fmt::Write;

async fn group_by_typed_key(conn: &mut Conn, raw: &str) -> AppResult<GroupRow> {
    let key = GroupKey::parse(raw).map_err(|_| UserError::MalformedKey(raw.trim().to_string()))?;
    Ok(groups::by_key(conn, key.as_str())
        .await?
        .ok_or(UserError::UnknownKey)?)
}

/// Buyers named in `/status`; 40 names of at most 40 characters stay far below Telegram's
/// 4,096-character limit.
const SHOWN_BUYERS: usize = 40;

/// `/status [KEY]`: one group in detail, or the person's latest group.
pub async fn status(ctx: &Ctx, person: &Person, raw_key: Option<&str>) -> AppResult<String> {
    let mut conn = ctx.store.read().await?;
    let group = match raw_key {
        Some(k) => super::access::guarded(ctx, person, group_by_typed_key(&mut conn, k)).await?,
        None => groups::for_user(&mut conn, person.id, 1)
            .await?
            .into_iter()
            .next()
            .ok_or(UserError::NoOpenGroup)?,
    };
    let product = product_of(&mut conn, &group).await?;
    let organiser = organiser_name(&mut conn, &group).await?;
    let bought = purchases::counted(&mut conn, group.id).await?;
    let now = ctx.now();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<b>{}</b> — group <code>{}</code>",
        esc(&product.name),
        esc(&group.key)
    );
    let _ = writeln!(s, "Organiser: {}", esc(&organiser));
    let _ = writeln!(s, "Seats: {} of {} bought", bought.len(), group.head_count);
    let reached = ctx.config.tiers.rate_for(bought.len() as u32);
    let _ = writeln!(
        s,
        "Discount reached so far: {reached} (when full: {})",
        ctx.config.tiers.rate_for(group.head_count)
    );
    match group.status {
        GroupStatus::Open if group.is_expired(now) => {
            let _ = writeln!(
                s,
                "Expired on {}; settling shortly.",
                when(group.expires_at)
            );
        }
        GroupStatus::Open => {
            let _ = writeln!(
                s,
                "Open until {} ({} left).",
                when(group.expires_at),
                duration(group.expires_at - now)
            );
        }
        GroupStatus::Settled => {
            if let Some(st) = groups::settlement(&mut conn, group.id).await? {
                let rate =
                    crate::domain::Rate::from_basis_points(u32::try_from(st.rate_bp).unwrap_or(0))
                        .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "Settled on {}: {rate}, {} points credited.",
                    when(st.created_at),
                    st.total_points
                );
            }
        }
        GroupStatus::Cancelled => {
            let _ = writeln!(s, "Cancelled by the organiser.");
        }
    }
    let is_insider =
        group.organiser_id == person.id || bought.iter().any(|p| p.buyer_id == person.id);
    if is_insider && !bought.is_empty() {
        let _ = writeln!(s, "\nBuyers:");
        // Telegram takes at most 4,096 characters: name the first ones, count the rest.
        for p in bought.iter().take(SHOWN_BUYERS) {
            let name = users::get(&mut conn, p.buyer_id)
                .await?
                .map(|u| u.first_name)
                .unwrap_or_default();
            let name: String = name.chars().take(40).collect();
            bullet(&mut s, &esc(&name));
        }
        if bought.len() > SHOWN_BUYERS {
            let _ = writeln!(s, "… and {} more", bought.len() - SHOWN_BUYERS);
        }
    }
    Ok(s.trim_end().to_string())
}

/// `/points`: balance and the latest changes.
pub async fn points(ctx: &Ctx, person: &Person) -> AppResult<String> {
    let mut conn = ctx.store.read().await?;
    let balance = ledger::balance(&mut conn, person.id).await?;
    let history = ledger::history(&mut conn, person.id, 10).await?;
    let mut s = format!(
        "<b>Your points: {balance}</b> (1 point = 1 {}).\n",
        ctx.config.currency.code()
    );
    if history.is_empty() {
        s.push_str("No points yet: they come back to you when a group you bought in closes.");
    } else {
        s.push_str("\nLatest:\n");
        for h in history {
            bullet(
                &mut s,
                &format!(
                    "{}{} — {} ({})",
                    if h.change > 0 { "+" } else { "" },
                    h.change,
                    esc(&h.memo),
                    when(h.at)
                ),
            );
        }
    }
    Ok(s.trim_end().to_string())
}

/// `/mygroups`: groups the person organised, was invited to, or bought in.
pub async fn my_groups(ctx: &Ctx, person: &Person) -> AppResult<String> {
    let mut conn = ctx.store.read().await?;
    let list = groups::for_user(&mut conn, person.id, 20).await?;
    if list.is_empty() {
        return Ok("You have no group purchases yet. Start one with /newgroup.".into());
    }
    let now = ctx.now();
    let mut s = String::from("<b>Your group purchases</b>\n");
    for g in list {
        let bought = purchases::count_counted(&mut conn, g.id).await?;
        let state = match g.status {
            GroupStatus::Open if g.is_expired(now) => "expired".to_string(),
            GroupStatus::Open => format!("open, {} left", duration(g.expires_at - now)),
            other => other.as_str().to_string(),
        };
        let role = if g.organiser_id == person.id {
            "organiser"
        } else {
            "member"
        };
        bullet(
            &mut s,
            &format!(
                "<code>{}</code> {} — {bought}/{} bought, {state} ({role})",
                esc(&g.key),
                esc(&g.sku),
                g.head_count
            ),
        );
    }
    Ok(s.trim_end().to_string())
}

/// `/cancel KEY`: the organiser withdraws a group nobody has bought in yet.
pub async fn cancel(
    ctx: &Ctx,
    update_id: i64,
    person: &Person,
    raw_key: &str,
) -> AppResult<String> {
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let found = super::access::guarded(ctx, person, group_by_typed_key(&mut tx, raw_key)).await?;
    // Lock the group first (PostgreSQL), so a payment cannot slip in between the count of
    // purchases below and the cancellation.
    let group = groups::lock(&mut tx, ctx.store.backend(), found.id)
        .await?
        .ok_or(UserError::UnknownKey)?;
    if group.organiser_id != person.id {
        return Err(UserError::NotOrganiser.into());
    }
    super::access::ensure_open(&group, now)?;
    // A seat held by a payment under way counts as a purchase: cancelling under it would
    // only turn that payment into a refund.
    let held = crate::store::holds::others(&mut tx, group.id, person.id, "", now).await?;
    if purchases::count_counted(&mut tx, group.id).await? > 0 || held.held > 0 || held.mine_elsewhere
    {
        return Err(UserError::HasPurchases {
            key: group.key.clone(),
        }
        .into());
    }
    if !updates::claim(&mut tx, update_id, now).await?
        || !groups::close(&mut tx, group.id, GroupStatus::Cancelled, now).await?
    {
        return Ok(format!(
            "Group <code>{}</code> is cancelled.",
            esc(&group.key)
        ));
    }
    for m in groups::members_of(&mut tx, group.id).await? {
        if let (Some(uid), Some(_)) = (m.user_id, m.prompted_at) {
            let text = format!(
                "The group purchase <code>{}</code> you were invited to was cancelled by its organiser.",
                esc(&group.key)
            );
            queue_message(
                &mut tx,
                now,
                format!("cancelled:{}:{}", group.id, m.id),
                uid,
                text,
                None,
                None,
            )
            .await?;
        }
    }
    tx.commit().await?;
    ctx.committed();
    tracing::info!(group_id = group.id, "group cancelled by its organiser");
    Ok(format!(
        "Group <code>{}</code> is cancelled. Invited members who were told about it get a note.",
        esc(&group.key)
    ))
}

/// Keys of the open groups this person may buy a seat in now, newest first.
pub async fn buyable_groups(ctx: &Ctx, person: &Person) -> AppResult<Vec<String>> {
    let mut conn = ctx.store.read().await?;
    let now = ctx.now();
    let mut keys = Vec::new();
    for g in groups::for_user(&mut conn, person.id, 20).await? {
        if super::access::ensure_open(&g, now).is_ok()
            && super::seats::check_can_buy(&mut conn, &g, person, now)
                .await
                .is_ok()
        {
            keys.push(g.key);
        }
    }
    Ok(keys)
}
