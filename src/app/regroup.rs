//! `/regroup KEY [PRODUCT] [N] [EXPIRY]` and the settled summary's "Buy together again"
//! button (claim 13, ¶0044): the organiser of a settled or expired group opens a new one with
//! the same product, head count and people — a new key and expiry, every member prompted
//! again exactly as `/newgroup` prompts them. Words after the key override, in `/newgroup`'s
//! words.

use super::new_group::{
    Application, Created, REGROUP_USAGE, find_product, head_count_of, lifetime_of, open_in,
    parse_overrides,
};
use super::{AppResult, Ctx, Person};
use crate::domain::{GroupStatus, MemberRef};
use crate::replies::UserError;
use crate::store::groups::{self, GroupRow};
use crate::store::{Conn, members, products, purchases};
use std::collections::HashSet;

/// Opens the new group; `chat_id` is where the command was typed (None for the button: the
/// chat the first group was opened in). None when this update was handled before.
#[tracing::instrument(skip_all, fields(organiser = %person.id, update_id))]
pub async fn regroup(
    ctx: &Ctx,
    update_id: i64,
    person: &Person,
    chat_id: Option<i64>,
    args: &str,
) -> AppResult<Option<Created>> {
    let mut words = args.split_whitespace();
    let raw_key = words.next().ok_or(UserError::Usage(REGROUP_USAGE))?;
    let overrides = parse_overrides(&words.collect::<Vec<_>>())?;
    let lifetime = lifetime_of(ctx, overrides.expiry.as_deref())?;
    let head_count = overrides
        .head_count
        .as_deref()
        .map(|raw| head_count_of(ctx, raw))
        .transpose()?;
    let mut conn = ctx.store.read().await?;
    let catalog = products::list(&mut conn).await?;
    drop(conn);
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let old = repeatable_group(&mut tx, ctx, person, raw_key, now).await?;
    let product = find_product(
        &catalog,
        overrides.product.as_deref().unwrap_or(old.sku.as_str()),
    )?;
    // An override names N (or `any`); without one the group keeps its size and kind.
    let (head_count, open_count) = head_count.unwrap_or((old.head_count, old.open_count));
    let people = the_same_people(&mut tx, &old).await?;
    if people.len() > head_count.get() as usize {
        return Err(UserError::TooManyMembers {
            members: people.len(),
            seats: head_count.get(),
        }
        .into());
    }
    let application = Application {
        product,
        head_count,
        open_count,
        policy: old.policy,
        members: people,
        lifetime,
    };
    let chat_id = chat_id.unwrap_or(old.chat_id);
    let created = open_in(&mut tx, ctx, update_id, person, chat_id, &application).await?;
    if let Some(c) = &created {
        groups::mark_regroup(&mut tx, c.group_id, old.id).await?;
        tx.commit().await?;
        ctx.answered();
        tracing::info!(group_id = %c.group_id, of = %old.id, "group bought together again");
    }
    Ok(created)
}

/// The group `raw_key` names, locked: the person's own, settled or expired, and not already
/// repeated by a group still open.
async fn repeatable_group(
    tx: &mut Conn,
    ctx: &Ctx,
    person: &Person,
    raw_key: &str,
    now: i64,
) -> AppResult<GroupRow> {
    // Locked, so two presses of the button open one group between them.
    let group = super::organiser::organised_group(tx, ctx, person, raw_key).await?;
    let key = group.key.clone();
    match group.status {
        GroupStatus::Open if !group.is_expired(now) => {
            return Err(UserError::StillOpen { key }.into());
        }
        GroupStatus::Cancelled => return Err(UserError::Cancelled { key }.into()),
        GroupStatus::Open | GroupStatus::Settled => {}
    }
    if let Some(again) = groups::open_regroup_of(tx, group.id, now).await? {
        return Err(UserError::AlreadyRegrouped {
            key,
            again: again.key,
        }
        .into());
    }
    Ok(group)
}

/// Everyone the group was for: the members the organiser named (as they were named, so an
/// email invitee is emailed again), then each buyer who came with the key or link, by their
/// Telegram id; never the organiser.
async fn the_same_people(tx: &mut Conn, group: &GroupRow) -> AppResult<Vec<MemberRef>> {
    let named = members::of(tx, group.id).await?;
    let mut known_users: HashSet<i64> = named
        .iter()
        .filter_map(|m| m.user_id)
        .map(|u| u.get())
        .collect();
    known_users.insert(group.organiser_id.get());
    let mut people: Vec<MemberRef> = named
        .into_iter()
        .filter(|m| m.user_id != Some(group.organiser_id))
        .map(|m| m.member)
        .collect();
    let mut seen: HashSet<(&'static str, String)> =
        people.iter().map(|m| (m.kind(), m.value())).collect();
    for p in purchases::counted(tx, group.id).await? {
        let m = MemberRef::UserId(p.buyer_id);
        if known_users.insert(p.buyer_id.get()) && seen.insert((m.kind(), m.value())) {
            people.push(m);
        }
    }
    Ok(people)
}
