//! The organiser's tools on an open group: `/extend KEY 24h` (a later expiry), `/invite KEY
//! MEMBER…` (more members for seats nobody is invited to) and `/remove KEY MEMBER` (before
//! that member bought). Each is one write transaction that claims its update, changes the
//! group and queues the notes it causes; bad input changes nothing.

use super::access::product_of;
use super::new_group::{Told, invite_all, parse_expiry, parse_members};
use super::{AppResult, Ctx, Person, queue_email, queue_message};
use crate::domain::group::{ExtendError, extended_expiry};
use crate::domain::{MemberRef, UserId};
use crate::replies::UserError;
use crate::replies::group::MembersInvited;
use crate::replies::messages::{Exported, Extended, Removed};
use crate::store::export;
use crate::store::groups::{self, GroupRow};
use crate::store::outbox::{Channel, DocumentSpec, NewMessage, Priority};
use crate::store::{Conn, holds, members, purchases, updates};

/// The group `raw_key` names, locked for the rest of the transaction (PostgreSQL; SQLite's
/// write transaction already serialises), so a payment or a second press cannot slip in
/// between the caller's checks and its change: it must be the person's own. Unknown and
/// malformed keys count against the person's key guard.
pub(super) async fn organised_group(
    tx: &mut Conn,
    ctx: &Ctx,
    person: &Person,
    raw_key: &str,
) -> AppResult<GroupRow> {
    let found =
        super::access::guarded(ctx, person, super::queries::group_by_typed_key(tx, raw_key))
            .await?;
    let group = groups::lock(tx, ctx.store.backend(), found.id)
        .await?
        .ok_or(UserError::UnknownKey)?;
    if group.organiser_id != person.id {
        return Err(UserError::NotOrganiser.into());
    }
    Ok(group)
}

/// [`organised_group`], still open.
pub(super) async fn organised_open_group(
    tx: &mut Conn,
    ctx: &Ctx,
    person: &Person,
    raw_key: &str,
    now: i64,
) -> AppResult<GroupRow> {
    let group = organised_group(tx, ctx, person, raw_key).await?;
    super::access::ensure_open(&group, now)?;
    Ok(group)
}

/// Exactly `n` words, or the command's usage.
fn words<'a, const N: usize>(
    args: &'a str,
    usage: &'static str,
) -> Result<[&'a str; N], UserError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    words.try_into().map_err(|_| UserError::Usage(usage))
}

const EXTEND_USAGE: &str = "/extend KEY 24h";
const INVITE_USAGE: &str = "/invite KEY MEMBER…";
const REMOVE_USAGE: &str = "/remove KEY MEMBER";
const EXPORT_USAGE: &str = "/export KEY";

/// Purchases read per query for `/export`.
const EXPORT_PAGE: i64 = 1_000;

/// `/export KEY`: the organiser gets their group's purchases as a CSV file in the chat
/// (`sendDocument`, through the outbox like every answer). Any state of the group.
#[tracing::instrument(skip_all, fields(organiser = %person.id, update_id))]
pub async fn export(
    ctx: &Ctx,
    update_id: i64,
    person: &Person,
    chat_id: i64,
    args: &str,
) -> AppResult<()> {
    let [raw_key] = words(args, EXPORT_USAGE)?;
    let mut conn = ctx.store.read().await?;
    let group = super::access::guarded(
        ctx,
        person,
        super::queries::group_by_typed_key(&mut conn, raw_key),
    )
    .await?;
    if group.organiser_id != person.id {
        return Err(UserError::NotOrganiser.into());
    }
    let filter = export::Filter {
        key: Some(group.key.clone()),
        opened_since: i64::MIN,
    };
    let (mut rows, mut after) = (Vec::new(), 0);
    loop {
        let page = export::page(&mut conn, &filter, after, EXPORT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.purchase_id;
        rows.extend(page);
    }
    drop(conn);
    let spec = DocumentSpec {
        file_name: format!("group-{}.csv", group.key),
        caption: Exported {
            key: group.key.clone(),
            purchases: rows.len(),
        }
        .html(),
    };
    let spec = serde_json::to_string(&spec)
        .map_err(|e| super::AppError::Other(format!("storing a document: {e}")))?;
    let file = NewMessage {
        dedupe_key: super::reply::key(chat_id, update_id),
        channel: Channel::Telegram {
            chat_id,
            keyboard: None,
            fallback_email: None,
            invoice: None,
            document: Some(spec),
        },
        text: crate::export::csv(&rows),
        priority: Priority::Interactive,
    };
    super::reply::send(ctx, &file).await?;
    tracing::info!(group_id = %group.id, purchases = rows.len(), "group exported to its organiser");
    Ok(())
}

/// `/extend KEY 24h`: the group stays open that much longer (at most a year after it opened);
/// members who were told about it get a note.
#[tracing::instrument(skip_all, fields(organiser = %person.id, update_id))]
pub async fn extend(ctx: &Ctx, update_id: i64, person: &Person, args: &str) -> AppResult<Extended> {
    let [raw_key, raw_by] = words(args, EXTEND_USAGE)?;
    let by = parse_expiry(raw_by).ok_or_else(|| UserError::BadExpiry(raw_by.to_string()))?;
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let group = organised_open_group(&mut tx, ctx, person, raw_key, now).await?;
    let key = group.key.clone();
    let until = extended_expiry(group.created_at, group.expiry(), by).map_err(|e| match e {
        ExtendError::PastMaximum { latest } => UserError::ExtendPastMaximum { key, latest },
        ExtendError::NoExpiry => UserError::ExtendNoExpiry { key },
    })?;
    if !updates::claim(&mut tx, update_id, now).await?
        || !groups::set_expiry(&mut tx, group.id, until).await?
    {
        tracing::info!("duplicate /extend ignored");
        return Ok(Extended::ToOrganiser {
            key: group.key.clone(),
            until: group.expires_at,
            told: 0,
        });
    }
    let product = product_of(&mut tx, &group).await?.name;
    let note = Extended::ToMember {
        key: group.key.clone(),
        product,
        until,
    }
    .html();
    let mut told = 0;
    for (member_id, user_id) in told_on_telegram(&mut tx, &group).await? {
        let key = format!("extended:{}:{member_id}:{until}", group.id);
        queue_message(&mut tx, now, key, user_id.get(), note.clone(), None, None).await?;
        told += 1;
    }
    tx.commit().await?;
    ctx.committed();
    tracing::info!(group_id = %group.id, until, told, "group extended by its organiser");
    Ok(Extended::ToOrganiser {
        key: group.key.clone(),
        until,
        told,
    })
}

/// Members of the group who were told about it in Telegram: (member row, their chat).
async fn told_on_telegram(tx: &mut Conn, group: &GroupRow) -> AppResult<Vec<(i64, UserId)>> {
    Ok(members::of(tx, group.id)
        .await?
        .into_iter()
        .filter_map(|m| match (m.user_id, m.prompted_at) {
            (Some(uid), Some(_)) => Some((m.id, uid)),
            _ => None,
        })
        .collect())
}

/// Seats of the group neither bought nor kept for an invited member.
async fn unreserved_seats(tx: &mut Conn, group: &GroupRow) -> AppResult<u32> {
    let counted = purchases::count_counted(tx, group.id).await?;
    let reserved = purchases::count_reserved(tx, group.id).await?;
    Ok(group
        .head_count
        .get()
        .saturating_sub(counted.saturating_add(reserved)))
}

/// `/invite KEY MEMBER…`: more members for seats nobody is invited to; each is prompted (or
/// emailed, or waited for) exactly as `/newgroup` does.
#[tracing::instrument(skip_all, fields(organiser = %person.id, update_id))]
pub async fn invite(
    ctx: &Ctx,
    update_id: i64,
    person: &Person,
    args: &str,
) -> AppResult<MembersInvited> {
    let mut words = args.split_whitespace();
    let raw_key = words.next().ok_or(UserError::Usage(INVITE_USAGE))?;
    let raw_members: Vec<String> = words.map(str::to_string).collect();
    if raw_members.is_empty() {
        return Err(UserError::Usage(INVITE_USAGE).into());
    }
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let group = organised_open_group(&mut tx, ctx, person, raw_key, now).await?;
    let new = parse_members(&raw_members, group.head_count)?;
    let known = members::of(&mut tx, group.id).await?;
    if let Some(m) = new.iter().find(|m| {
        known
            .iter()
            .any(|k| k.member.kind() == m.kind() && k.member.value() == m.value())
    }) {
        return Err(UserError::AlreadyInvited {
            key: group.key.clone(),
            member: m.to_string(),
        }
        .into());
    }
    let free = unreserved_seats(&mut tx, &group).await?;
    if new.len() > free as usize {
        return Err(UserError::NoSeatsToInvite {
            key: group.key.clone(),
            free,
            asked: new.len(),
        }
        .into());
    }
    let product = product_of(&mut tx, &group).await?;
    if !updates::claim(&mut tx, update_id, now).await? {
        tracing::info!("duplicate /invite ignored");
        return Ok(invited(ctx, &group, Told::default(), free));
    }
    let told = invite_all(&mut tx, ctx, &group, &product, person, &new, now).await?;
    let open = unreserved_seats(&mut tx, &group).await?;
    tx.commit().await?;
    ctx.committed();
    tracing::info!(group_id = %group.id, members = new.len(), "organiser invited more members");
    Ok(invited(ctx, &group, told, open))
}

fn invited(ctx: &Ctx, group: &GroupRow, told: Told, open_seats: u32) -> MembersInvited {
    let c = &ctx.config;
    MembersInvited {
        key: group.key.clone(),
        reached: told.reached,
        waiting: told.waiting,
        refused: told.not_mailed.refused,
        over_limit: told.not_mailed.over_limit,
        limits: (c.email_invites_per_group, c.email_invites_per_day),
        open_seats,
        invite_link: ctx.deep_link(group.key.as_str()),
    }
}

/// `/remove KEY MEMBER`: the member is no longer invited (before they bought); if they were
/// told about the group they get a note, and their seat is open again.
#[tracing::instrument(skip_all, fields(organiser = %person.id, update_id))]
pub async fn remove(ctx: &Ctx, update_id: i64, person: &Person, args: &str) -> AppResult<Removed> {
    let [raw_key, raw_member] = words(args, REMOVE_USAGE)?;
    let member = MemberRef::parse(raw_member).map_err(UserError::BadMember)?;
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let group = organised_open_group(&mut tx, ctx, person, raw_key, now).await?;
    let key = group.key.clone();
    let row = members::find(&mut tx, group.id, &member)
        .await?
        .ok_or_else(|| UserError::NotAMember {
            key: key.clone(),
            member: member.to_string(),
        })?;
    if let Some(uid) = row.user_id {
        let named = member.to_string();
        if purchases::has_seat(&mut tx, group.id, uid).await? {
            return Err(UserError::MemberBought { key, member: named }.into());
        }
        if holds::is_paying(&mut tx, group.id, uid, now).await? {
            return Err(UserError::MemberPaying { key, member: named }.into());
        }
    }
    if !updates::claim(&mut tx, update_id, now).await? || !members::delete(&mut tx, row.id).await? {
        tracing::info!("duplicate /remove ignored");
        return Ok(Removed::ToOrganiser {
            key: group.key.clone(),
            member: member.to_string(),
            told: false,
        });
    }
    let told = row.prompted_at.is_some();
    if told {
        let note = Removed::ToMember {
            key: group.key.clone(),
            product: product_of(&mut tx, &group).await?.name,
        };
        let dedupe = format!("removed:{}", row.id);
        match (row.user_id, &row.member) {
            (Some(uid), _) => {
                queue_message(&mut tx, now, dedupe, uid.get(), note.html(), None, None).await?;
            }
            (None, MemberRef::Email(email)) => {
                queue_email(&mut tx, now, dedupe, email.as_str(), note.email()).await?;
            }
            (None, _) => {}
        }
    }
    tx.commit().await?;
    ctx.committed();
    tracing::info!(group_id = %group.id, member_id = row.id, told, "organiser removed a member");
    Ok(Removed::ToOrganiser {
        key: group.key.clone(),
        member: member.to_string(),
        told,
    })
}
