//! Settlement (claims 6–8): compute each buyer's credit, post it to the ledger, invalidate
//! the key, and queue the notices — all in one transaction, at most once per group.
//!
//! Exactly once: the group's status moves from `open` only once (a conditional UPDATE under
//! the group's lock), the `settlements` primary key refuses a second row, ledger rows are
//! keyed by (txn, account), and outbox rows by their dedupe key. A process killed mid-way
//! leaves the transaction uncommitted, and the sweep settles the group again from scratch.

use super::{AppError, AppResult, Ctx};
use crate::domain::circle::CircleKey;
use crate::domain::settlement::{self, PurchaseLine};
use crate::domain::{GroupId, GroupStatus, Money, PurchaseId, Sku, UserId};
use crate::store::groups::{self, GroupRow};
use crate::store::purchases::PurchaseRow;
use crate::store::settlements::{self, SettlementRow};
use crate::store::{Conn, circles, ledger, purchases};

mod notices;

use notices::queue_notices;

/// Settles one due group in its own transaction. False if it was not due or already settled.
#[tracing::instrument(skip(ctx))]
pub async fn settle_group(ctx: &Ctx, group_id: GroupId) -> AppResult<bool> {
    let mut tx = ctx.store.write().await?;
    let done = settle_in(&mut tx, ctx, group_id).await?;
    tx.commit().await?;
    if done {
        ctx.committed();
        crate::metrics::Metrics::inc(&ctx.metrics.settlements_total);
    }
    Ok(done)
}

/// How long a group whose settlement failed waits before the sweep tries it again.
const SET_ASIDE_SECS: i64 = 900;

/// Due groups settled per transaction by the sweep: one commit (and one write of the pages
/// they share) and a handful of statements for the batch instead of per group, while the
/// write lock is held for a few tens of milliseconds at most.
const SWEEP_BATCH: i64 = 100;

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
        let (done, set_aside) = settle_batch(ctx, &due).await?;
        // Groups set aside have left `due`: go on with the ones behind them.
        if done == 0 && set_aside == 0 {
            return Ok(settled);
        }
        settled += done;
    }
}

/// Settles a batch of groups in one transaction: all together first (a few statements for
/// the lot); if that fails, each in its own savepoint, so a group that fails is rolled back
/// alone (and retried by the next sweep). A crash leaves the whole batch uncommitted, to be
/// settled again from scratch.
async fn settle_batch(ctx: &Ctx, ids: &[GroupId]) -> AppResult<(usize, usize)> {
    let mut tx = ctx.store.write().await?;
    let mut together = sqlx::Connection::begin(&mut *tx).await?;
    let mut set_aside = 0;
    let done = match settle_many(&mut together, ctx, ids).await {
        Ok(done) => {
            together.commit().await?;
            done
        }
        Err(e) => {
            together.rollback().await?;
            tracing::warn!(error = %e, groups = ids.len(), "settling a batch failed; settling its groups one by one");
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
                        // Set aside, so it never holds up the groups behind it; tried again
                        // later, and listed for the operator by `groupbuy outbox`.
                        let retry_at = ctx.now() + SET_ASIDE_SECS;
                        groups::set_aside(&mut tx, id, &e.to_string(), retry_at).await?;
                        set_aside += 1;
                        crate::metrics::Metrics::inc(&ctx.metrics.settle_set_aside_total);
                        tracing::error!(group_id = %id, error = %e, retry_at, "settlement failed; the group is set aside and retried later")
                    }
                }
            }
            done
        }
    };
    tx.commit().await?;
    if done > 0 {
        ctx.committed();
        for _ in 0..done {
            crate::metrics::Metrics::inc(&ctx.metrics.settlements_total);
        }
    }
    Ok((done, set_aside))
}

/// Settles inside the caller's transaction (the N-th purchase settles in its own).
pub async fn settle_in(conn: &mut Conn, ctx: &Ctx, group_id: GroupId) -> AppResult<bool> {
    Ok(settle_due(conn, ctx, &[group_id], When::Due).await? > 0)
}

/// Settles an open group now, filled or not, expired or not (`/close`, ¶0145), inside the
/// caller's transaction. False when it is not open, or a seat of it is held for a payment
/// under way (that payment must still count).
pub async fn settle_now(conn: &mut Conn, ctx: &Ctx, group_id: GroupId) -> AppResult<bool> {
    Ok(settle_due(conn, ctx, &[group_id], When::Now).await? > 0)
}

/// Which open groups a settlement takes: those due (filled, or expired), or any (`/close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Due,
    Now,
}

/// A group being settled: its row, its counted purchases and what they get.
pub(super) struct Closing {
    pub group: GroupRow,
    pub bought: Vec<PurchaseRow>,
    pub outcome: settlement::Outcome,
    /// Closed by its organiser before it filled or expired.
    pub closed_early: bool,
}

/// Settles those of `ids` that are due, inside the caller's transaction, with a handful of
/// statements for the lot whatever their number or size (each statement costs a round trip):
/// the groups and their purchases are read in one each, the closes, settlements, credits and
/// notices written in one each. Returns how many it settled.
pub async fn settle_many(conn: &mut Conn, ctx: &Ctx, ids: &[GroupId]) -> AppResult<usize> {
    settle_due(conn, ctx, ids, When::Due).await
}

/// [`settle_many`], or with [`When::Now`] the open ones among `ids` whether due or not.
async fn settle_due(conn: &mut Conn, ctx: &Ctx, ids: &[GroupId], when: When) -> AppResult<usize> {
    let now = ctx.now();
    let mut due = closing(conn, ctx, ids, now, when).await?;
    let wanted: Vec<GroupId> = due.iter().map(|c| c.group.id).collect();
    let closed = groups::close_many(conn, &wanted, GroupStatus::Settled, now).await?;
    due.retain(|c| closed.contains(&c.group.id));
    if due.is_empty() {
        return Ok(0);
    }
    record_settlements(conn, &due, now).await?;
    record_circles(conn, &due, now).await?;
    // Balances before these credits: each notice then shows the balance after its own credit,
    // as when the groups are settled one by one.
    let mut buyer_ids: Vec<UserId> = due
        .iter()
        .flat_map(|c| c.outcome.credits.iter().map(|credit| credit.buyer_id))
        .collect();
    buyer_ids.sort_unstable();
    buyer_ids.dedup();
    let before = ledger::balances(conn, &buyer_ids).await?;
    post_credits(conn, &due, ctx.config.currency.code(), now).await?;
    queue_notices(conn, ctx, &due, &buyer_ids, before, now).await?;
    // Everything is written but not committed: a crash here must leave no trace.
    crate::failpoint::hit("settle_before_commit");
    for c in &due {
        tracing::info!(
            group_id = %c.group.id, buyers = c.outcome.buyers, filled = c.outcome.filled,
            rate = %c.outcome.rate, total_points = c.outcome.total.value(), "group settled"
        );
    }
    Ok(due.len())
}

/// Those of `ids` that are open and due now — filled, or expired (or any, with
/// [`When::Now`]) with no seat held for a payment under way (it may still count) — locked,
/// with their counted purchases and what each buyer gets.
async fn closing(
    conn: &mut Conn,
    ctx: &Ctx,
    ids: &[GroupId],
    now: i64,
    when: When,
) -> AppResult<Vec<Closing>> {
    let groups = groups::lock_many(conn, ctx.store.backend(), ids).await?;
    let open: Vec<GroupId> = groups
        .iter()
        .filter(|g| g.status == GroupStatus::Open)
        .map(|g| g.id)
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let mut bought = purchases::counted_many(conn, &open).await?;
    let held = groups::with_unlapsed_holds(conn, &open, now).await?;
    let mut due = Vec::new();
    for group in groups.into_iter().filter(|g| g.status == GroupStatus::Open) {
        let mine = bought.remove(&group.id).unwrap_or_default();
        let filled = mine.len() as u32 >= group.head_count.get();
        let early = !filled && !group.is_expired(now);
        if !filled && (held.contains(&group.id) || (early && when == When::Due)) {
            continue;
        }
        let outcome = outcome_of(ctx, &group, &mine)?;
        due.push(Closing {
            group,
            bought: mine,
            outcome,
            closed_early: early,
        });
    }
    Ok(due)
}

/// One settlement row per group; the primary key refuses a second.
async fn record_settlements(conn: &mut Conn, due: &[Closing], now: i64) -> AppResult<()> {
    let rows: Vec<SettlementRow> = due
        .iter()
        .map(|c| SettlementRow {
            group_id: c.group.id,
            buyers: c.outcome.buyers,
            filled: c.outcome.filled,
            rate: c.outcome.rate,
            total_points: c.outcome.total,
            created_at: now,
        })
        .collect();
    let inserted = settlements::insert(conn, &rows).await?;
    if inserted != rows.len() as u64 {
        return Err(AppError::Other(format!(
            "{} of {} groups being settled already had a settlement row",
            rows.len() as u64 - inserted,
            rows.len()
        )));
    }
    Ok(())
}

/// Each settled group's buyers bought together once more: their circle's count, total,
/// last purchase and products (claim 13), in the settlement's transaction.
async fn record_circles(conn: &mut Conn, due: &[Closing], now: i64) -> AppResult<()> {
    for c in due {
        let Some(circle) = CircleKey::of(c.bought.iter().map(|p| p.buyer_id)) else {
            continue;
        };
        let mut products: Vec<(Sku, u32)> = Vec::new();
        for p in &c.bought {
            match products.iter_mut().find(|(sku, _)| *sku == p.sku) {
                Some((_, n)) => *n += 1,
                None => products.push((p.sku.clone(), 1)),
            }
        }
        let spent: i64 = c.bought.iter().map(|p| p.price.minor()).sum();
        let spent = Money::from_minor(spent)
            .map_err(|e| AppError::Other(format!("group {} spent {spent}: {e}", c.group.id)))?;
        let bought = circles::Bought {
            group_id: c.group.id,
            circle: &circle,
            spent,
            products: &products,
            now,
        };
        circles::record(conn, &bought).await?;
    }
    Ok(())
}

fn outcome_of(
    ctx: &Ctx,
    group: &GroupRow,
    bought: &[PurchaseRow],
) -> AppResult<settlement::Outcome> {
    // Each purchase's discount is on the price recorded with it, never the live catalog's.
    let lines: Vec<PurchaseLine> = bought
        .iter()
        .map(|p| PurchaseLine {
            purchase_id: p.id,
            buyer_id: p.buyer_id,
            price: p.price,
            region: p.region.clone(),
            bought_at: p.created_at,
        })
        .collect();
    Ok(settlement::settle(
        group.terms(),
        &ctx.config.tiers,
        &lines,
        ctx.config.region_bonus.as_ref(),
        ctx.config.region_rate.as_ref(),
    ))
}

/// Every credit of every group in one ledger post: discounts debited, the buyer's points
/// account credited, one ledger transaction per purchase.
async fn post_credits(conn: &mut Conn, due: &[Closing], currency: &str, now: i64) -> AppResult<()> {
    struct Credit {
        txn: String,
        memo_of: usize,
        group_id: GroupId,
        purchase_id: PurchaseId,
        entries: [ledger::Entry; 2],
    }
    let memos: Vec<String> = due
        .iter()
        .map(|c| {
            format!(
                "Group discount {} for group {}",
                c.outcome.rate, c.group.key
            )
        })
        .collect();
    let credits: Vec<Credit> = due
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.outcome
                .credits
                .iter()
                .zip(&c.bought)
                .filter(|(credit, _)| credit.points.value() > 0)
                .map(move |(credit, purchase)| {
                    let points = credit.points.value();
                    Credit {
                        txn: format!("settle:{}:{}", c.group.id, purchase.id),
                        memo_of: i,
                        group_id: c.group.id,
                        purchase_id: purchase.id,
                        entries: [
                            ledger::Entry::discounts(points),
                            ledger::Entry::points(credit.buyer_id, -points),
                        ],
                    }
                })
        })
        .collect();
    let refs: Vec<ledger::Refs<'_>> = credits
        .iter()
        .map(|c| ledger::Refs {
            txn: &c.txn,
            currency,
            group_id: Some(c.group_id),
            purchase_id: Some(c.purchase_id),
            memo: &memos[c.memo_of],
            now,
        })
        .collect();
    let posts: Vec<(&ledger::Refs<'_>, &[ledger::Entry])> = refs
        .iter()
        .zip(&credits)
        .map(|(r, c)| (r, &c.entries[..]))
        .collect();
    ledger::post_many(conn, &posts).await?;
    Ok(())
}
