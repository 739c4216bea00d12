//! `/newgroup PRODUCT N [MEMBER…] [EXPIRY]`: the application (claims 1, 4, 11, 14) and the
//! issue of key, expiry, page URL and deep link (claims 3, 10, 12).

mod invite;
mod words;

pub use invite::{PromptTo, queue_prompt};
pub use words::{Request, parse_duration, parse_expiry, parse_members, parse_words};

use super::{AppResult, Ctx, Person};
use crate::domain::{GroupId, GroupKey, HeadCount, MemberRef, Product, UserId};
use crate::replies::UserError;
use crate::replies::group::{GroupCreated, tier_line};
use crate::store::groups::{self, GroupRow, NewGroup};
use crate::store::{Conn, is_unique_violation, products, updates, users};
pub(crate) use invite::{Told, invite_all};
pub(crate) use words::{REGROUP_USAGE, find_product, parse_overrides};

/// What the organiser is told; also returned so callers can show it directly.
#[derive(Debug, Clone)]
pub struct Created {
    pub group_id: GroupId,
    pub key: GroupKey,
}

/// Creates the group and queues the organiser's confirmation, each reachable member's
/// prompt and each email member's invitation. `update_id` makes a redelivered command a no-op.
#[tracing::instrument(skip_all, fields(organiser = %organiser.id, chat_id, update_id))]
pub async fn create(
    ctx: &Ctx,
    update_id: i64,
    organiser: &Person,
    chat_id: i64,
    args: &str,
) -> AppResult<Option<Created>> {
    let req = parse_words(args)?;
    let mut conn = ctx.store.read().await?;
    let catalog = products::list(&mut conn).await?;
    drop(conn);
    let product = find_product(&catalog, &req.product)?;
    let head_count = head_count_of(ctx, &req.head_count)?;
    let members = parse_members(&req.members, head_count)?;
    let lifetime = lifetime_of(ctx, req.expiry.as_deref())?;
    let application = Application {
        product,
        head_count,
        members,
        lifetime,
    };
    let mut tx = ctx.store.write().await?;
    let created = open_in(&mut tx, ctx, update_id, organiser, chat_id, &application).await?;
    if created.is_some() {
        tx.commit().await?;
        ctx.answered();
    }
    Ok(created)
}

/// N as the organiser typed it, within `max_head_count`.
pub(crate) fn head_count_of(ctx: &Ctx, raw: &str) -> Result<HeadCount, UserError> {
    HeadCount::parse(raw, ctx.config.max_head_count)
        .map_err(|_| UserError::from_head_count(raw, ctx.config.max_head_count))
}

/// How long the key lives: the typed expiry, or the configured default.
pub(crate) fn lifetime_of(ctx: &Ctx, raw: Option<&str>) -> Result<i64, UserError> {
    match raw {
        Some(raw) => parse_expiry(raw).ok_or_else(|| UserError::BadExpiry(raw.to_string())),
        None => Ok(ctx.config.key_lifetime_secs),
    }
}

/// A group purchase applied for, its words checked: what, for how many, with whom, how long.
#[derive(Debug, Clone)]
pub(crate) struct Application {
    pub product: Product,
    pub head_count: HeadCount,
    pub members: Vec<MemberRef>,
    /// Seconds from now to the key's expiry.
    pub lifetime: i64,
}

/// Opens the group inside the caller's transaction and queues the organiser's confirmation
/// and the members' invitations; the caller commits. None: this update was handled before.
pub(crate) async fn open_in(
    tx: &mut Conn,
    ctx: &Ctx,
    update_id: i64,
    organiser: &Person,
    chat_id: i64,
    application: &Application,
) -> AppResult<Option<Created>> {
    let now = ctx.now();
    if !updates::claim(tx, update_id, now).await? {
        tracing::info!(update_id, "duplicate group application ignored");
        return Ok(None);
    }
    users::seen(
        tx,
        organiser.id,
        organiser.username.as_deref(),
        &organiser.first_name,
        chat_id == organiser.id.get(),
        now,
    )
    .await?;
    let (product, members) = (&application.product, &application.members);
    let opening = Opening {
        organiser: organiser.id,
        chat_id,
        product,
        head_count: application.head_count,
        now,
        expires_at: now + application.lifetime,
    };
    let (group_id, key) = insert_with_fresh_key(tx, ctx, &opening).await?;
    let group = groups::by_id(tx, group_id)
        .await?
        .ok_or_else(|| super::AppError::Other("group vanished".into()))?;

    let told = invite_all(tx, ctx, &group, product, organiser, members, now).await?;
    let html = confirmation(ctx, &group, product, told).html();
    // The organiser waits for this one: an answer, served before the invitations.
    let confirmation = super::reply::message(format!("created:{group_id}"), chat_id, html, None);
    super::reply::queue(tx, now, &confirmation).await?;
    tracing::info!(%group_id, sku = %product.sku, head_count = application.head_count.get(), members = members.len(), "group created");
    Ok(Some(Created { group_id, key }))
}

/// A group about to be opened: who, where, what, how many, until when.
struct Opening<'a> {
    organiser: UserId,
    chat_id: i64,
    product: &'a Product,
    head_count: HeadCount,
    now: i64,
    expires_at: i64,
}

/// Inserts the group under a freshly drawn key.
async fn insert_with_fresh_key(
    conn: &mut Conn,
    ctx: &Ctx,
    o: &Opening<'_>,
) -> AppResult<(GroupId, GroupKey)> {
    // 90 random bits make a collision practically impossible; a retry costs nothing.
    for _ in 0..3 {
        let key = GroupKey::generate()?;
        let g = NewGroup {
            key: &key,
            sku: &o.product.sku,
            head_count: o.head_count,
            organiser_id: o.organiser,
            chat_id: o.chat_id,
            policy: ctx.config.policy,
            now: o.now,
            expires_at: o.expires_at,
        };
        match groups::insert(conn, &g).await {
            Ok(id) => return Ok((id, key)),
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(super::AppError::Other(
        "could not draw a unique group key".into(),
    ))
}

/// The organiser's confirmation, from the group and what became of each member.
fn confirmation(ctx: &Ctx, g: &GroupRow, product: &Product, told: Told) -> GroupCreated {
    let c = &ctx.config;
    GroupCreated {
        product: product.name.clone(),
        head_count: g.head_count,
        price: ctx.amount(product.price),
        key: g.key.clone(),
        until: g.expires_at,
        page_url: ctx.page_url(&g.key),
        invite_link: ctx.deep_link(g.key.as_str()),
        tiers: tier_line(&c.tiers),
        reached: told.reached,
        waiting: told.waiting,
        refused: told.not_mailed.refused,
        over_limit: told.not_mailed.over_limit,
        limits: (c.email_invites_per_group, c.email_invites_per_day),
    }
}
