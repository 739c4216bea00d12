//! `/newgroup PRODUCT N [MEMBER…] [EXPIRY] [all|partial]`: the application (claims 1, 4, 11,
//! 14) and the issue of key, expiry, page URL and deep link (claims 3, 10, 12), with the
//! variants the organiser may choose (¶0060/¶0086 policy, ¶0144 open head count, ¶0145 no
//! expiry).

mod invite;
mod words;

pub use invite::{PromptTo, queue_prompt};
pub use words::{ANY, NEVER, Request, parse_duration, parse_expiry, parse_members, parse_words};

use super::{AppResult, Ctx, Person};
use crate::domain::{Expiry, GroupId, GroupKey, HeadCount, MemberRef, Policy, Product, UserId};
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
    let (head_count, open_count) = head_count_of(ctx, &req.head_count)?;
    let members = parse_members(&req.members, head_count)?;
    let lifetime = lifetime_of(ctx, req.expiry.as_deref())?;
    let policy = policy_of(ctx, args, req.policy)?;
    let application = Application {
        product,
        head_count,
        open_count,
        policy,
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

/// N as the organiser typed it, within `max_head_count`; for `any` (¶0144, an open head
/// count) the operator's maximum as the most it can take, and true.
pub(crate) fn head_count_of(ctx: &Ctx, raw: &str) -> Result<(HeadCount, bool), UserError> {
    let max = ctx.config.max_head_count;
    let open_count = raw.eq_ignore_ascii_case(ANY);
    let head_count = if open_count {
        HeadCount::new(i64::from(max), max)
    } else {
        HeadCount::parse(raw, max)
    }
    .map_err(|_| UserError::from_head_count(raw, max))?;
    Ok((head_count, open_count))
}

/// How long the key lives, in seconds: the typed expiry, or the configured default; None for
/// `never` (¶0145).
pub(crate) fn lifetime_of(ctx: &Ctx, raw: Option<&str>) -> Result<Option<i64>, UserError> {
    match raw {
        Some(raw) if raw.eq_ignore_ascii_case(NEVER) => Ok(None),
        Some(raw) => parse_expiry(raw)
            .map(Some)
            .ok_or_else(|| UserError::BadExpiry(raw.to_string())),
        None => Ok(Some(ctx.config.key_lifetime_secs)),
    }
}

/// A group purchase applied for, its words checked: what, for how many, under which policy,
/// with whom, how long.
#[derive(Debug, Clone)]
pub(crate) struct Application {
    pub product: Product,
    pub head_count: HeadCount,
    /// An open head count (¶0144).
    pub open_count: bool,
    pub policy: Policy,
    pub members: Vec<MemberRef>,
    /// Seconds from now to the key's expiry; None: no expiry (¶0145).
    pub lifetime: Option<i64>,
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
        open_count: application.open_count,
        policy: application.policy,
        now,
        expiry: application
            .lifetime
            .map_or(Expiry::Never, |secs| Expiry::At(now + secs)),
    };
    let (group_id, key) = insert_with_fresh_key(tx, &opening).await?;
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
    open_count: bool,
    policy: Policy,
    now: i64,
    expiry: Expiry,
}

/// The organiser's policy word if the operator lets organisers choose, else the default.
fn policy_of(ctx: &Ctx, args: &str, chosen: Option<Policy>) -> Result<Policy, UserError> {
    match chosen {
        None => Ok(ctx.config.policy),
        Some(p) if ctx.config.policy_choice => Ok(p),
        Some(p) => {
            let word = args
                .split_whitespace()
                .rfind(|w| Policy::from_word(w) == Some(p))
                .unwrap_or(p.as_str());
            tracing::info!(word, "policy word refused: the operator fixes the policy");
            Err(UserError::PolicyFixed {
                word: word.to_string(),
                policy: ctx.config.policy,
            })
        }
    }
}

/// Inserts the group under a freshly drawn key.
async fn insert_with_fresh_key(conn: &mut Conn, o: &Opening<'_>) -> AppResult<(GroupId, GroupKey)> {
    // 90 random bits make a collision practically impossible; a retry costs nothing.
    for _ in 0..3 {
        let key = GroupKey::generate()?;
        let g = NewGroup {
            key: &key,
            sku: &o.product.sku,
            head_count: o.head_count,
            organiser_id: o.organiser,
            chat_id: o.chat_id,
            policy: o.policy,
            now: o.now,
            expiry: o.expiry,
            discount: o.product.discount,
            open_count: o.open_count,
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
        until: g.expiry(),
        policy: g.policy,
        discount: g.discount,
        open_count: g.open_count,
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
