//! Someone contacts the bot: remember them, deliver any purchase prompt waiting for them
//! (claim 11: "upon access"), and resolve group keys and invitation deep links.

use super::new_group::{PromptTo, queue_prompt};
use super::seats::check_can_buy;
use super::views::{buy_keyboard, group_card};
use super::{AppError, AppResult, Ctx, Person};
use crate::domain::group_key::StartPayload;
use crate::domain::{GroupKey, GroupStatus, MemberRef, Product};
use crate::keyboard::Keyboard;
use crate::replies::UserError;
use crate::replies::group::Welcome;
use crate::secrets::Purpose;
use crate::store::groups::{self, GroupRow};
use crate::store::{Conn, members, products, purchases, users};

/// Records the contact and queues the prompts of every open group that named this person
/// and could not reach them before. Returns how many prompts were queued.
#[tracing::instrument(skip_all, fields(user = %person.id))]
pub async fn touch(ctx: &Ctx, person: &Person, private: bool) -> AppResult<usize> {
    let now = ctx.now();
    let mut tx = ctx.store.write().await?;
    let before = users::seen(
        &mut tx,
        person.id,
        person.username.as_deref(),
        &person.first_name,
        private,
        now,
    )
    .await?;
    let mut queued = 0;
    if private {
        let email = before.and_then(|u| u.email);
        for m in
            members::unprompted_for(&mut tx, person.id, person.username.as_deref(), now).await?
        {
            let Some(group) = groups::by_id(&mut tx, m.group_id).await? else {
                continue;
            };
            let product = product_of(&mut tx, &group).await?;
            let organiser = organiser_name(&mut tx, &group).await?;
            members::bind(&mut tx, m.id, person.id).await?;
            let to = PromptTo {
                member_id: m.id,
                user_id: person.id,
                email: email.clone(),
            };
            queue_prompt(&mut tx, ctx, &group, &product, &organiser, to, now).await?;
            queued += 1;
        }
    }
    tx.commit().await?;
    if queued > 0 {
        tracing::info!(queued, "queued waiting purchase prompts");
        ctx.committed();
    }
    Ok(queued)
}

/// Parses a typed key and finds its group, open and unexpired.
pub async fn open_group(conn: &mut Conn, raw: &str, now: i64) -> Result<GroupRow, AppError> {
    let key = GroupKey::parse(raw).map_err(|_| UserError::MalformedKey(raw.trim().to_string()))?;
    let group = groups::by_key(conn, &key)
        .await?
        .ok_or(UserError::UnknownKey)?;
    ensure_open(&group, now)?;
    Ok(group)
}

pub fn ensure_open(group: &GroupRow, now: i64) -> Result<(), UserError> {
    match group.status {
        GroupStatus::Settled => Err(UserError::Settled {
            key: group.key.clone(),
        }),
        GroupStatus::Cancelled => Err(UserError::Cancelled {
            key: group.key.clone(),
        }),
        GroupStatus::Open if group.is_expired(now) => Err(UserError::Expired {
            key: group.key.clone(),
            at: group.expires_at,
        }),
        GroupStatus::Open => Ok(()),
    }
}

pub async fn product_of(conn: &mut Conn, group: &GroupRow) -> AppResult<Product> {
    products::get(conn, &group.sku)
        .await?
        .ok_or_else(|| AppError::Other(format!("product {} left the catalog", group.sku)))
}

pub async fn organiser_name(conn: &mut Conn, group: &GroupRow) -> AppResult<String> {
    Ok(users::get(conn, group.organiser_id)
        .await?
        .map(|u| u.first_name)
        .unwrap_or_else(|| "The organiser".into()))
}

/// Looks up a key someone typed under the key guard: a user who sent too many unknown or
/// malformed keys in the last minute is told to slow down, whatever this key is.
pub(crate) async fn guarded<T>(
    ctx: &Ctx,
    person: &Person,
    lookup: impl Future<Output = AppResult<T>>,
) -> AppResult<T> {
    let is_miss = |e: &AppError| {
        matches!(
            e,
            AppError::User(UserError::MalformedKey(_) | UserError::UnknownKey)
        )
    };
    let client = super::guard::Client::User(person.id.get());
    ctx.key_guard
        .check(client, ctx.now(), lookup, is_miss)
        .await?
}

/// The group card with its buy buttons, for someone who may buy in it.
pub async fn card(ctx: &Ctx, person: &Person, raw_key: &str) -> AppResult<(String, Keyboard)> {
    guarded(ctx, person, unguarded_card(ctx, person, raw_key)).await
}

async fn unguarded_card(
    ctx: &Ctx,
    person: &Person,
    raw_key: &str,
) -> AppResult<(String, Keyboard)> {
    let now = ctx.now();
    let mut conn = ctx.store.read().await?;
    let group = open_group(&mut conn, raw_key, now).await?;
    check_can_buy(&mut conn, &group, person, now).await?;
    render_card(ctx, &mut conn, &group).await
}

async fn render_card(
    ctx: &Ctx,
    conn: &mut Conn,
    group: &GroupRow,
) -> AppResult<(String, Keyboard)> {
    let product = product_of(conn, group).await?;
    let organiser = organiser_name(conn, group).await?;
    let bought = purchases::count_counted(conn, group.id).await?;
    Ok((
        group_card(ctx, group, &product, &organiser, bought).html(),
        buy_keyboard(ctx, group, &product),
    ))
}

/// `/start PAYLOAD` from a deep link: a group key, or a key plus an email invitee's code.
#[tracing::instrument(skip_all, fields(user = %person.id))]
pub async fn start(ctx: &Ctx, person: &Person, payload: &str) -> AppResult<(String, Keyboard)> {
    guarded(ctx, person, unguarded_start(ctx, person, payload)).await
}

async fn unguarded_start(
    ctx: &Ctx,
    person: &Person,
    payload: &str,
) -> AppResult<(String, Keyboard)> {
    let now = ctx.now();
    let parsed = StartPayload::parse(payload)
        .map_err(|_| UserError::MalformedKey(payload.trim().to_string()))?;
    let StartPayload::Invitation(key, code) = parsed else {
        let (card, kb) = unguarded_card(ctx, person, payload).await?;
        let welcome = Welcome {
            first_name: person.first_name.clone(),
            invited_as: None,
        };
        return Ok((welcome.html(&card), kb));
    };
    let mut tx = ctx.store.write().await?;
    let group = open_group(&mut tx, key.as_str(), now).await?;
    let code_hash = ctx.secrets.hash(Purpose::Invite, code.as_str());
    let member = members::by_invite(&mut tx, &code_hash)
        .await?
        .filter(|m| {
            m.group_id == group.id
                && m.invite_code.as_deref().is_some_and(|stored| {
                    ctx.secrets.verify(Purpose::Invite, code.as_str(), stored)
                })
        })
        .ok_or(UserError::UnknownKey)?;
    match member.user_id {
        Some(other) if other != person.id => return Err(UserError::InvitationTaken.into()),
        Some(_) => {}
        None => members::bind(&mut tx, member.id, person.id).await?,
    }
    if let MemberRef::Email(email) = &member.member {
        users::set_email(&mut tx, person.id, email.as_str()).await?;
    }
    let welcome = Welcome {
        first_name: person.first_name.clone(),
        invited_as: Some(member.member.clone()),
    };
    members::mark_prompted(&mut tx, member.id, now).await?;
    check_can_buy(&mut tx, &group, person, now).await?;
    let (card, kb) = render_card(ctx, &mut tx, &group).await?;
    tx.commit().await?;
    tracing::info!(
        group_id = %group.id,
        member_id = member.id,
        "email invitee arrived through their deep link"
    );
    Ok((welcome.html(&card), kb))
}
