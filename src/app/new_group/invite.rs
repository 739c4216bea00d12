//! Inviting the members `/newgroup` named: a Telegram prompt to those who already talk to the
//! bot, an email with a deep link to email invitees, and a prompt that waits for the others'
//! first contact (claim 11).

use crate::app::views::{buy_keyboard, group_card};
use crate::app::{AppResult, Ctx, Person, queue_email, queue_message};
use crate::domain::group_key::StartPayload;
use crate::domain::{EmailAddress, Expiry, GroupId, InviteCode, MemberRef, Product, UserId};
use crate::mail::render::Invitation;
use crate::replies::group::{NO_EXPIRY_ENDS, Prompt};
use crate::replies::when;
use crate::secrets::Purpose;
use crate::store::groups::GroupRow;
use crate::store::{Conn, mailing, members, purchases, users};

/// Who was reached at once, who waits for their first contact, and who was not mailed.
#[derive(Debug, Default)]
pub(crate) struct Told {
    pub reached: Vec<String>,
    pub waiting: Vec<String>,
    pub not_mailed: NotMailed,
}

/// Email members `/newgroup` left out, and why; their seats stay open to anyone with the link.
#[derive(Debug, Default)]
pub(crate) struct NotMailed {
    /// On the suppression list: they asked never to get invitations.
    pub refused: Vec<String>,
    /// Over the organiser's `email_invites_per_group` or `email_invites_per_day`.
    pub over_limit: Vec<String>,
}

/// The group the members are invited to, and by whom.
struct Inviting<'a> {
    ctx: &'a Ctx,
    group: &'a GroupRow,
    product: &'a Product,
    organiser: &'a Person,
    now: i64,
}

enum Invited {
    Prompted,
    Emailed,
    Waiting,
}

/// Invites every named member: a prompt to those who already talk to the bot, an email to
/// email invitees (within the organiser's budget, never to a suppressed address), and a
/// prompt waiting for the others' first contact.
pub(crate) async fn invite_all(
    tx: &mut Conn,
    ctx: &Ctx,
    group: &GroupRow,
    product: &Product,
    organiser: &Person,
    members: &[MemberRef],
    now: i64,
) -> AppResult<Told> {
    let to = Inviting {
        ctx,
        group,
        product,
        organiser,
        now,
    };
    let mut told = Told::default();
    let mut budget = email_budget(tx, ctx, organiser.id, group.id, now).await?;
    for m in members {
        if let MemberRef::Email(email) = m {
            let hash = ctx.secrets.hash(Purpose::Unsubscribe, email.as_str());
            if mailing::is_suppressed(tx, &hash).await? {
                told.not_mailed.refused.push(m.to_string());
                continue;
            }
            if budget == 0 {
                told.not_mailed.over_limit.push(m.to_string());
                continue;
            }
            budget -= 1;
        }
        match invite(tx, &to, m).await? {
            Invited::Prompted => told.reached.push(m.to_string()),
            Invited::Emailed => told.reached.push(format!("{m} (by email)")),
            Invited::Waiting => told.waiting.push(m.to_string()),
        }
    }
    Ok(told)
}

/// How many more invitation emails `organiser` may have sent for this group now.
async fn email_budget(
    conn: &mut Conn,
    ctx: &Ctx,
    organiser: UserId,
    group_id: GroupId,
    now: i64,
) -> AppResult<u32> {
    let (group, day) = mailing::invites_sent(conn, organiser, group_id, now - 86_400).await?;
    let c = &ctx.config;
    Ok(c.email_invites_per_group
        .saturating_sub(group)
        .min(c.email_invites_per_day.saturating_sub(day)))
}

async fn invite(conn: &mut Conn, to: &Inviting<'_>, member: &MemberRef) -> AppResult<Invited> {
    match member {
        MemberRef::Email(email) => by_email(conn, to, member, email).await,
        MemberRef::UserId(_) | MemberRef::Username(_) => on_telegram(conn, to, member).await,
    }
}

/// Emails an invitation with a deep link that carries the member's invite code.
async fn by_email(
    conn: &mut Conn,
    to: &Inviting<'_>,
    member: &MemberRef,
    email: &EmailAddress,
) -> AppResult<Invited> {
    let (ctx, group, now) = (to.ctx, to.group, to.now);
    let code = InviteCode::generate()?;
    // Stored as its keyed hash: the database alone recognises no invitee.
    let code_hash = ctx.secrets.hash(Purpose::Invite, code.as_str());
    let member_id = members::insert(conn, group.id, member, Some(&code_hash), None).await?;
    let payload = StartPayload::Invitation(group.key.clone(), code);
    mailing::count_invite(conn, to.organiser.id, group.id, now).await?;
    let head = group.head_count.get();
    let mail = Invitation {
        organiser: crate::replies::quoted_name(&to.organiser.first_name),
        product: to.product.name.clone(),
        price: ctx.money(to.product.price.minor()),
        head_count: head,
        best_rate: ctx.config.tiers.rate_for(head).to_string(),
        discount: group.discount,
        open_count: group.open_count,
        expires: match group.expiry() {
            Expiry::At(at) => when(at),
            Expiry::Never => NO_EXPIRY_ENDS.into(),
        },
        deep_link: ctx.deep_link(&payload.encode()),
        page_url: ctx.page_url(&group.key),
        key: group.key.to_string(),
        unsubscribe_url: ctx.unsubscribe_url(email.as_str()),
    }
    .render()?;
    queue_email(
        conn,
        now,
        format!("invite:{member_id}"),
        email.as_str(),
        mail,
    )
    .await?;
    members::mark_prompted(conn, member_id, now).await?;
    Ok(Invited::Emailed)
}

/// Prompts a member who already talks to the bot; the others wait for their first contact.
async fn on_telegram(conn: &mut Conn, to: &Inviting<'_>, member: &MemberRef) -> AppResult<Invited> {
    let known = match member {
        MemberRef::UserId(id) => users::get(conn, *id).await?,
        MemberRef::Username(u) => users::by_username(conn, u).await?,
        MemberRef::Email(_) => None,
    };
    let reachable = known.filter(|u| u.started && !u.unreachable);
    let user_id = reachable.as_ref().map(|u| u.id);
    let member_id = members::insert(conn, to.group.id, member, None, user_id).await?;
    let Some(user) = reachable else {
        return Ok(Invited::Waiting);
    };
    let prompt = PromptTo {
        member_id,
        user_id: user.id,
        email: user.email,
    };
    let organiser = &to.organiser.first_name;
    queue_prompt(
        conn, to.ctx, to.group, to.product, organiser, prompt, to.now,
    )
    .await?;
    Ok(Invited::Prompted)
}

/// The member a purchase prompt goes to.
#[derive(Debug, Clone)]
pub struct PromptTo {
    pub member_id: i64,
    pub user_id: UserId,
    /// Where the prompt goes if Telegram cannot deliver it.
    pub email: Option<String>,
}

/// Queues the purchase prompt of claim 11 for one member and marks them prompted.
pub async fn queue_prompt(
    conn: &mut Conn,
    ctx: &Ctx,
    group: &GroupRow,
    product: &Product,
    organiser_name: &str,
    to: PromptTo,
    now: i64,
) -> AppResult<()> {
    let bought = purchases::count_counted(conn, group.id).await?;
    let html = Prompt {
        organiser: organiser_name.to_string(),
        card: group_card(ctx, group, product, organiser_name, bought),
    }
    .html();
    let kb = buy_keyboard(ctx, group, product);
    queue_message(
        conn,
        now,
        format!("prompt:{}", to.member_id),
        to.user_id.get(),
        html,
        Some(kb),
        to.email,
    )
    .await?;
    members::mark_prompted(conn, to.member_id, now).await?;
    Ok(())
}
