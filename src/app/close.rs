//! `/close KEY`: the organiser settles an open group now, with the buyers it has, under its
//! policy (¶0145: a group without expiry ends this way or by filling).

use super::{AppResult, Ctx, Person};
use crate::domain::GroupStatus;
use crate::replies::UserError;
use crate::replies::messages::ClosedNow;
use crate::store::{groups, purchases, updates};

/// Settles the organiser's open group now. `None` for a redelivered command (its first
/// delivery answered). Refused, with nothing changed, for someone else's group, an unknown
/// key, a group no longer open, and while a seat of it is being paid for.
#[tracing::instrument(skip_all, fields(user = %person.id, update_id))]
pub async fn close(
    ctx: &Ctx,
    update_id: i64,
    person: &Person,
    raw_key: &str,
) -> AppResult<Option<ClosedNow>> {
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let found = super::access::guarded(
        ctx,
        person,
        super::queries::group_by_typed_key(&mut tx, raw_key),
    )
    .await?;
    let group = groups::lock(&mut tx, ctx.store.backend(), found.id)
        .await?
        .ok_or(UserError::UnknownKey)?;
    if group.organiser_id != person.id {
        return Err(UserError::NotOrganiser.into());
    }
    match group.status {
        GroupStatus::Open => {}
        GroupStatus::Settled => {
            return Err(UserError::Settled {
                key: group.key.clone(),
            }
            .into());
        }
        GroupStatus::Cancelled => {
            return Err(UserError::Cancelled {
                key: group.key.clone(),
            }
            .into());
        }
    }
    if !updates::claim(&mut tx, update_id, now).await? {
        tracing::info!("duplicate /close ignored");
        return Ok(None);
    }
    let buyers = purchases::count_counted(&mut tx, group.id).await?;
    if !super::settle::settle_now(&mut tx, ctx, group.id).await? {
        return Err(UserError::CloseWhilePaying {
            key: group.key.clone(),
        }
        .into());
    }
    tx.commit().await?;
    ctx.committed();
    crate::metrics::Metrics::inc(&ctx.metrics.settlements_total);
    tracing::info!(group_id = %group.id, buyers, "group closed by its organiser");
    Ok(Some(ClosedNow {
        key: group.key.clone(),
        buyers,
    }))
}
