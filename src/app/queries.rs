//! Read-mostly commands: `/status`, `/points`, `/mygroups`, and the organiser's `/cancel`.

use super::access::{organiser_name, product_of};
use super::{AppResult, Ctx, Person, queue_message};
use crate::domain::{Expiry, GroupKey, GroupStatus as Status, UserId};
use crate::replies::messages::{
    Cancelled, GroupStatus, MyCircle, MyGroup, MyGroupState, MyGroups, PointsChange, PointsReport,
    StatusState,
};
use crate::replies::{NextTier, UserError};
use crate::store::groups::{self, GroupRow};
use crate::store::purchases::PurchaseRow;
use crate::store::settlements;
use crate::store::{Conn, circles, ledger, members, purchases, updates, users};

pub(super) async fn group_by_typed_key(conn: &mut Conn, raw: &str) -> AppResult<GroupRow> {
    let key = GroupKey::parse(raw).map_err(|_| UserError::MalformedKey(raw.trim().to_string()))?;
    Ok(groups::by_key(conn, &key)
        .await?
        .ok_or(UserError::UnknownKey)?)
}

/// `/status [KEY]`: one group in detail, or the person's latest group.
pub async fn status(ctx: &Ctx, person: &Person, raw_key: Option<&str>) -> AppResult<GroupStatus> {
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
    let state = state_of(&mut conn, &group, now).await?;
    let is_insider =
        group.organiser_id == person.id || bought.iter().any(|p| p.buyer_id == person.id);
    let buyers = if is_insider {
        Some(first_names(&mut conn, &bought).await?)
    } else {
        None
    };
    Ok(GroupStatus {
        product: product.name,
        key: group.key.clone(),
        organiser,
        bought: bought.len(),
        head_count: group.head_count,
        reached: ctx.config.tiers.rate_for(bought.len() as u32),
        when_full: ctx.config.tiers.rate_for(group.head_count.get()),
        discount: group.discount,
        open_count: group
            .open_count
            .then(|| NextTier::of(&ctx.config.tiers, bought.len() as u32)),
        state,
        buyers,
    })
}

/// Where a group stands, for `/status`.
async fn state_of(conn: &mut Conn, group: &GroupRow, now: i64) -> AppResult<StatusState> {
    Ok(match group.status {
        Status::Open if group.is_expired(now) => StatusState::Expired {
            at: group.expires_at,
        },
        Status::Open if group.expiry() == Expiry::Never => StatusState::OpenNoExpiry,
        Status::Open => StatusState::Open {
            until: group.expires_at,
            left_secs: group.expires_at - now,
        },
        Status::Settled => match settlements::of(conn, group.id).await? {
            Some(st) => StatusState::Settled {
                at: st.created_at,
                rate: st.rate,
                points: st.total_points,
            },
            None => StatusState::SettledUnknown,
        },
        Status::Cancelled => StatusState::Cancelled,
    })
}

/// The buyers' first names, in the order they bought.
async fn first_names(conn: &mut Conn, bought: &[PurchaseRow]) -> AppResult<Vec<String>> {
    let ids: Vec<UserId> = bought.iter().map(|p| p.buyer_id).collect();
    let known = users::get_many(conn, &ids).await?;
    Ok(ids
        .iter()
        .map(|id| {
            known
                .get(id)
                .map(|u| u.first_name.clone())
                .unwrap_or_default()
        })
        .collect())
}

/// `/points`: balance and the latest changes.
pub async fn points(ctx: &Ctx, person: &Person) -> AppResult<PointsReport> {
    let mut conn = ctx.store.read().await?;
    let balance = ledger::balance(&mut conn, person.id).await?;
    let latest = ledger::history(&mut conn, person.id, 10)
        .await?
        .into_iter()
        .map(|h| PointsChange {
            change: h.change,
            memo: h.memo,
            at: h.at,
        })
        .collect();
    Ok(PointsReport {
        balance,
        unit: ctx.config.currency.code().to_string(),
        latest,
    })
}

/// Groups `/mygroups` lists on one page.
const MY_GROUPS_PAGE: usize = 10;

/// `/mygroups`: on its first page the person's buying circles, then the groups they
/// organised, were invited to or bought in, newest first, ten a page (`page` from 0).
pub async fn my_groups(ctx: &Ctx, person: &Person, page: u32) -> AppResult<MyGroups> {
    let mut conn = ctx.store.read().await?;
    let now = ctx.now();
    let mut groups_out = Vec::new();
    let offset = i64::from(page) * MY_GROUPS_PAGE as i64;
    let mut rows =
        groups::for_user_from(&mut conn, person.id, offset, MY_GROUPS_PAGE as i64 + 1).await?;
    let more = rows.len() > MY_GROUPS_PAGE;
    rows.truncate(MY_GROUPS_PAGE);
    for g in rows {
        let bought = purchases::count_counted(&mut conn, g.id).await?;
        let state = match g.status {
            Status::Open if g.is_expired(now) => MyGroupState::Expired,
            Status::Open if g.expiry() == Expiry::Never => MyGroupState::OpenNoExpiry,
            Status::Open => MyGroupState::Open {
                left_secs: g.expires_at - now,
            },
            Status::Settled => MyGroupState::Settled {
                outcome: settlements::of(&mut conn, g.id)
                    .await?
                    .map(|st| (st.rate, st.total_points)),
            },
            Status::Cancelled => MyGroupState::Cancelled,
        };
        groups_out.push(MyGroup {
            organiser: g.organiser_id == person.id,
            key: g.key,
            product: g.sku.to_string(),
            bought,
            head_count: g.head_count,
            open_count: g.open_count,
            state,
        });
    }
    let circles = if page == 0 {
        my_circles(ctx, &mut conn, person).await?
    } else {
        Vec::new()
    };
    Ok(MyGroups {
        circles,
        groups: groups_out,
        page,
        more,
    })
}

/// Circles `/mygroups` shows.
const MY_CIRCLES: i64 = 5;

/// The person's buying circles, most recently active first.
async fn my_circles(ctx: &Ctx, conn: &mut Conn, person: &Person) -> AppResult<Vec<MyCircle>> {
    let mut out = Vec::new();
    for c in circles::of_user(conn, person.id, MY_CIRCLES).await? {
        let top_product = match &c.top_product {
            Some(sku) => Some(
                crate::store::products::get_any(conn, sku.as_str())
                    .await?
                    .map_or_else(|| sku.to_string(), |p| p.name),
            ),
            None => None,
        };
        out.push(MyCircle {
            size: c.size,
            times_bought: c.times_bought,
            total_spent: ctx.amount(c.total_spent),
            last_bought_at: c.last_bought_at,
            top_product,
        });
    }
    Ok(out)
}

/// `/cancel KEY`: the organiser withdraws a group nobody has bought in yet.
pub async fn cancel(
    ctx: &Ctx,
    update_id: i64,
    person: &Person,
    raw_key: &str,
) -> AppResult<Cancelled> {
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    // Locked, so a payment cannot slip in between the count of purchases below and the
    // cancellation.
    let group = super::organiser::organised_open_group(&mut tx, ctx, person, raw_key, now).await?;
    // A seat held by a payment under way counts as a purchase: cancelling under it would
    // only turn that payment into a refund.
    let held = crate::store::holds::others(&mut tx, group.id, person.id, "", now).await?;
    if purchases::count_counted(&mut tx, group.id).await? > 0
        || held.held > 0
        || held.mine_elsewhere
    {
        return Err(UserError::HasPurchases {
            key: group.key.clone(),
        }
        .into());
    }
    if !updates::claim(&mut tx, update_id, now).await?
        || !groups::close(&mut tx, group.id, Status::Cancelled, now).await?
    {
        return Ok(Cancelled::ToOrganiser {
            key: group.key.clone(),
            again: true,
        });
    }
    tell_members(&mut tx, &group, now).await?;
    tx.commit().await?;
    ctx.committed();
    tracing::info!(group_id = %group.id, "group cancelled by its organiser");
    Ok(Cancelled::ToOrganiser {
        key: group.key.clone(),
        again: false,
    })
}

/// Members who had been told about a cancelled group hear that it is cancelled.
async fn tell_members(tx: &mut Conn, group: &GroupRow, now: i64) -> AppResult<()> {
    let text = Cancelled::ToMember {
        key: group.key.clone(),
    }
    .html();
    for m in members::of(tx, group.id).await? {
        if let (Some(uid), Some(_)) = (m.user_id, m.prompted_at) {
            let key = format!("cancelled:{}:{}", group.id, m.id);
            queue_message(tx, now, key, uid.get(), text.clone(), None, None).await?;
        }
    }
    Ok(())
}

/// Keys of the open groups this person may buy a seat in now, newest first.
pub async fn buyable_groups(ctx: &Ctx, person: &Person) -> AppResult<Vec<GroupKey>> {
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
