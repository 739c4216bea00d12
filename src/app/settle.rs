//! Settlement (claims 6–8): compute each buyer's credit, post it to the ledger, invalidate
//! the key, and queue the notices — all in one transaction, at most once per group.
//!
//! Exactly once: the group's status moves from `open` only once (a conditional UPDATE under
//! the group's lock), the `settlements` primary key refuses a second row, ledger rows are
//! keyed by (txn, account), and outbox rows by their dedupe key. A process killed mid-way
//! leaves the transaction uncommitted, and the sweep settles the group again from scratch.

use super::access::product_of;
use super::{AppError, AppResult, Ctx, queue_email, queue_message};
use crate::domain::settlement::{self, PurchaseLine};
use crate::domain::{GroupStatus, HeadCount, Money, RegionCode};
use crate::mail::render::DiscountNotice;
use crate::replies::esc;
use crate::store::groups::{self, GroupRow, SettlementRow};
use crate::store::{Conn, ledger, purchases, users};
use std::fmt::Write;

/// Settles one due group in its own transaction. False if it was not due or already settled.
#[tracing::instrument(skip(ctx))]
pub async fn settle_group(ctx: &Ctx, group_id: i64) -> AppResult<bool> {
    let mut tx = ctx.store.write().await?;
    let done = settle_in(&mut tx, ctx, group_id).await?;
    tx.commit().await?;
    if done {
        ctx.committed();
        crate::metrics::Metrics::inc(&ctx.metrics.settlements_total);
    }
    Ok(done)
}

/// Due groups settled per transaction by the sweep: one commit (and one write of the pages
/// they share) for the batch instead of one per group, while the write lock is held for a
/// few tens of milliseconds at most.
const SWEEP_BATCH: i64 = 50;

/// Settles every group that is due now (expired or filled). Returns how many were settled.
pub async fn sweep(ctx: &Ctx) -> AppResult<usize> {
    let mut settled = 0;
    loop {
        let due = {
            let mut conn = ctx.store.read().await?;
            groups::due(&mut conn, ctx.now(), SWEEP_BATCH).await?
        };
        if due.is_empty() {
            return Ok(settled);
        }
        let done = settle_batch(ctx, &due).await?;
        if done == 0 {
            return Ok(settled);
        }
        settled += done;
    }
}

/// Settles a batch of groups in one transaction, each in its own savepoint: a group that
/// fails is rolled back alone (and retried by the next sweep); a crash leaves the whole
/// batch uncommitted, to be settled again from scratch.
async fn settle_batch(ctx: &Ctx, ids: &[i64]) -> AppResult<usize> {
    let mut tx = ctx.store.write().await?;
    let mut done = 0;
    for &id in ids {
        let mut one = sqlx::Connection::begin(&mut *tx).await?;
        match settle_in(&mut one, ctx, id).await {
            Ok(settled) => {
                one.commit().await?;
                done += usize::from(settled);
            }
            Err(e) => {
                one.rollback().await?;
                tracing::error!(group_id = id, error = %e, "settlement failed; will retry on the next sweep")
            }
        }
    }
    tx.commit().await?;
    if done > 0 {
        ctx.committed();
        for _ in 0..done {
            crate::metrics::Metrics::inc(&ctx.metrics.settlements_total);
        }
    }
    Ok(done)
}

/// Settles inside the caller's transaction (the N-th purchase settles in its own).
pub async fn settle_in(conn: &mut Conn, ctx: &Ctx, group_id: i64) -> AppResult<bool> {
    let now = ctx.now();
    let Some(group) = groups::lock(conn, ctx.store.backend(), group_id).await? else {
        return Ok(false);
    };
    if group.status != GroupStatus::Open {
        return Ok(false);
    }
    let bought = purchases::counted(conn, group.id).await?;
    let filled = bought.len() as u32 >= group.head_count;
    if !filled && now < group.expires_at {
        return Ok(false);
    }
    let head = HeadCount::new(i64::from(group.head_count), u32::MAX)
        .map_err(|e| AppError::Other(format!("stored head count: {e}")))?;
    let lines: Vec<PurchaseLine> = bought
        .iter()
        .map(|p| PurchaseLine {
            purchase_id: p.id,
            buyer_id: p.buyer_id,
            price: Money::from_minor(p.price).unwrap_or(Money::ZERO),
            region: p.region.as_deref().map(RegionCode::from_stored),
            bought_at: p.created_at,
        })
        .collect();
    let outcome = settlement::settle(
        group.policy,
        &ctx.config.tiers,
        head,
        &lines,
        ctx.config.region_bonus.as_ref(),
    );

    if !groups::close(conn, group.id, GroupStatus::Settled, now).await? {
        return Ok(false);
    }
    let row = SettlementRow {
        group_id: group.id,
        buyers: i64::from(outcome.buyers),
        filled: outcome.filled,
        rate_bp: i64::from(outcome.rate.basis_points()),
        total_points: outcome.total.value(),
        created_at: now,
    };
    if !groups::insert_settlement(conn, &row).await? {
        return Err(AppError::Other(format!(
            "group {} has a settlement row but was open",
            group.id
        )));
    }
    let product = product_of(conn, &group).await?;
    for (credit, purchase) in outcome.credits.iter().zip(&bought) {
        let points = credit.points.value();
        if points > 0 {
            let txn = format!("settle:{}:{}", group.id, purchase.id);
            let memo = format!("Group discount {} for group {}", outcome.rate, group.key);
            ledger::post(
                conn,
                &ledger::Refs {
                    txn: &txn,
                    group_id: Some(group.id),
                    purchase_id: Some(purchase.id),
                    memo: &memo,
                    now,
                },
                &[
                    ledger::Entry::discounts(points),
                    ledger::Entry::points(credit.buyer_id, -points),
                ],
            )
            .await?;
        }
        let buyer = users::get(conn, credit.buyer_id).await?;
        let balance = ledger::balance(conn, credit.buyer_id).await?;
        let reason = match (outcome.filled, group.policy) {
            (true, _) => String::new(),
            (false, crate::domain::Policy::AllOrNothing) => format!(
                "The group did not fill before it expired ({} of {} bought), so under its all-or-nothing rule there is no discount.",
                outcome.buyers, group.head_count
            ),
            (false, crate::domain::Policy::Partial) => format!(
                "The group did not fill before it expired ({} of {} bought), and that many buyers reach no discount tier.",
                outcome.buyers, group.head_count
            ),
        };
        let notice = DiscountNotice {
            key: group.key.clone(),
            product: if purchase.sku == group.sku {
                product.name.clone()
            } else {
                product_name(conn, &purchase.sku, &product.name).await?
            },
            buyers: outcome.buyers,
            head_count: group.head_count,
            rate: outcome.rate.to_string(),
            points,
            points_text: crate::domain::Points::new(points).to_string(),
            bonus: credit.region_bonus.minor(),
            bonus_text: ctx.money(credit.region_bonus.minor()),
            unit: ctx.config.currency.code().to_string(),
            reason,
            balance_text: balance.to_string(),
            receipt_url: ctx.receipt_url(&group.key, &purchase.receipt_token),
        };
        let email = buyer.as_ref().and_then(|u| u.email.clone());
        let html = notice_message(&notice);
        queue_message(
            conn,
            now,
            format!("notice:{}:{}:tg", group.id, purchase.id),
            credit.buyer_id,
            html,
            None,
            None,
        )
        .await?;
        if let Some(to) = email {
            queue_email(
                conn,
                now,
                format!("notice:{}:{}:email", group.id, purchase.id),
                &to,
                notice.render()?,
            )
            .await?;
        }
    }
    let summary = summary_message(ctx, &group, &product.name, &outcome);
    queue_message(
        conn,
        now,
        format!("summary:{}", group.id),
        group.chat_id,
        summary,
        None,
        None,
    )
    .await?;
    // Everything is written but not committed: a crash here must leave no trace.
    crate::failpoint::hit("settle_before_commit");
    tracing::info!(
        group_id = group.id, buyers = outcome.buyers, filled = outcome.filled,
        rate = %outcome.rate, total_points = outcome.total.value(), "group settled"
    );
    Ok(true)
}

async fn product_name(conn: &mut Conn, sku: &str, fallback: &str) -> AppResult<String> {
    let parsed = crate::domain::Sku::parse(sku).map_err(|e| AppError::Other(e.to_string()))?;
    Ok(crate::store::products::get(conn, &parsed)
        .await?
        .map(|p| p.name)
        .unwrap_or_else(|| fallback.to_string()))
}

fn notice_message(n: &DiscountNotice) -> String {
    let mut s = String::new();
    if n.points > 0 {
        let _ = writeln!(s, "<b>{} points are yours.</b>", n.points_text);
        let _ = writeln!(
            s,
            "Group <code>{}</code> for {} closed with {} of {} buyers and reached a {} discount.",
            esc(&n.key),
            esc(&n.product),
            n.buyers,
            n.head_count,
            n.rate
        );
        if n.bonus > 0 {
            let _ = writeln!(s, "Shared-region bonus included: {}.", n.bonus_text);
        }
    } else {
        let _ = writeln!(s, "<b>Your group purchase has closed.</b>");
        let _ = writeln!(
            s,
            "Group <code>{}</code> for {} closed with {} of {} buyers. {}",
            esc(&n.key),
            esc(&n.product),
            n.buyers,
            n.head_count,
            esc(&n.reason)
        );
    }
    let _ = writeln!(
        s,
        "Your points balance: {} (1 point = 1 {}). Spend them on your next purchase.",
        n.balance_text, n.unit
    );
    let _ = write!(s, "Receipt: {}", esc(&n.receipt_url));
    s
}

fn summary_message(ctx: &Ctx, g: &GroupRow, product: &str, o: &settlement::Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "<b>Group <code>{}</code> is settled.</b>", esc(&g.key));
    let _ = writeln!(
        s,
        "{}: {} of {} bought{}.",
        esc(product),
        o.buyers,
        g.head_count,
        if o.filled { " — full" } else { "" }
    );
    let _ = writeln!(
        s,
        "Discount: {} — {} points credited to the buyers ({}).",
        o.rate,
        o.total,
        ctx.money(o.total.value())
    );
    let _ = write!(
        s,
        "The key is no longer valid. Start another round with /newgroup."
    );
    s
}
