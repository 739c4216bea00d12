//! `/newgroup PRODUCT N [MEMBER…] [EXPIRY]`: the application (claims 1, 4, 11, 14) and the
//! issue of key, expiry, page URL and deep link (claims 3, 10, 12).

use super::views::{buy_keyboard, group_card, tier_line};
use super::{AppResult, Ctx, Person, queue_email, queue_message};
use crate::domain::catalog::{self, ProductMatch};
use crate::domain::group_key::StartPayload;
use crate::domain::{GroupKey, HeadCount, InviteCode, MemberRef, Product};
use crate::mail::render::Invitation;
use crate::replies::{UserError, bullet, esc, when};
use crate::secrets::Purpose;
use crate::store::groups::{self, GroupRow, NewGroup};
use crate::store::{Conn, is_unique_violation, mailing, products, updates, users};
use std::collections::HashSet;
use std::fmt::Write;

/// The parsed words of a `/newgroup` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub product: String,
    pub head_count: String,
    pub members: Vec<String>,
    pub expiry: Option<String>,
}

/// Splits the words: the product is every word before the first whole number (the head
/// count); after it come members, and optionally one expiry such as `48h`.
pub fn parse_words(args: &str) -> Result<Request, UserError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| {
            w.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                && w.bytes().any(|b| b.is_ascii_digit())
        })
        .ok_or(UserError::NewGroupUsage)?;
    if at == 0 {
        return Err(UserError::NewGroupUsage);
    }
    let mut members = Vec::new();
    let mut expiry = None;
    for w in &words[at + 1..] {
        if parse_expiry(w).is_some() || (expiry.is_none() && looks_like_expiry(w)) {
            if expiry.is_some() {
                return Err(UserError::BadExpiry((*w).to_string()));
            }
            expiry = Some((*w).to_string());
        } else {
            members.push((*w).to_string());
        }
    }
    Ok(Request {
        product: words[..at].join(" "),
        head_count: words[at].to_string(),
        members,
        expiry,
    })
}

/// Splits `48h` into `("48", 'h')`; `None` for an empty word. Safe for any Unicode input.
fn number_and_unit(w: &str) -> Option<(&str, char)> {
    let unit = w.chars().last()?;
    Some((&w[..w.len() - unit.len_utf8()], unit))
}

fn looks_like_expiry(w: &str) -> bool {
    number_and_unit(w).is_some_and(|(num, unit)| {
        !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) && unit.is_alphabetic()
    })
}

/// `30m`, `48h`, `7d` → seconds; 5 minutes to 365 days.
pub fn parse_expiry(w: &str) -> Option<i64> {
    let (num, unit) = number_and_unit(w)?;
    let n: i64 = num.parse().ok()?;
    let secs = n.checked_mul(match unit {
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    })?;
    (300..=365 * 86_400).contains(&secs).then_some(secs)
}

/// Parses members, refusing malformed and duplicate ones and more than `seats`.
pub fn parse_members(raw: &[String], seats: HeadCount) -> Result<Vec<MemberRef>, UserError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for w in raw {
        let m = MemberRef::parse(w).map_err(UserError::BadMember)?;
        if !seen.insert((m.kind(), m.value())) {
            return Err(UserError::DuplicateMember(m.to_string()));
        }
        out.push(m);
    }
    if out.len() > seats.get() as usize {
        return Err(UserError::TooManyMembers {
            members: out.len(),
            seats: seats.get(),
        });
    }
    Ok(out)
}

fn find_product(all: &[Product], query: &str) -> Result<Product, UserError> {
    match catalog::find(all, query) {
        ProductMatch::Found(p) => Ok(p.clone()),
        ProductMatch::Ambiguous(ps) => Err(UserError::AmbiguousProduct {
            query: query.to_string(),
            candidates: ps.iter().map(|p| p.sku.to_string()).collect(),
        }),
        ProductMatch::Unknown => Err(UserError::UnknownProduct(query.to_string())),
    }
}

/// What the organiser is told; also returned so callers can show it directly.
#[derive(Debug, Clone)]
pub struct Created {
    pub group_id: i64,
    pub key: GroupKey,
}

/// Creates the group and queues the organiser's confirmation, each reachable member's
/// prompt and each email member's invitation. `update_id` makes a redelivered command a no-op.
#[tracing::instrument(skip_all, fields(organiser = organiser.id, chat_id, update_id))]
pub async fn create(
    ctx: &Ctx,
    update_id: i64,
    organiser: &Person,
    chat_id: i64,
    args: &str,
) -> AppResult<Option<Created>> {
    let req = parse_words(args)?;
    let now = ctx.now();
    let mut conn = ctx.store.read().await?;
    let catalog = products::list(&mut conn).await?;
    drop(conn);
    let product = find_product(&catalog, &req.product)?;
    let head_count = HeadCount::parse(&req.head_count, ctx.config.max_head_count)
        .map_err(|_| UserError::from_head_count(&req.head_count, ctx.config.max_head_count))?;
    let members = parse_members(&req.members, head_count)?;
    let lifetime = match &req.expiry {
        Some(raw) => parse_expiry(raw).ok_or_else(|| UserError::BadExpiry(raw.clone()))?,
        None => ctx.config.key_lifetime_secs,
    };

    let mut tx = ctx.store.write().await?;
    if !updates::claim(&mut tx, update_id, now).await? {
        tracing::info!(update_id, "duplicate /newgroup ignored");
        return Ok(None);
    }
    users::seen(
        &mut tx,
        organiser.id,
        organiser.username.as_deref(),
        &organiser.first_name,
        chat_id == organiser.id,
        now,
    )
    .await?;
    let (group_id, key) = insert_with_fresh_key(
        &mut tx,
        ctx,
        organiser,
        chat_id,
        &product,
        head_count,
        now,
        now + lifetime,
    )
    .await?;
    let group = groups::by_id(&mut tx, group_id)
        .await?
        .ok_or_else(|| super::AppError::Other("group vanished".into()))?;

    let told = invite_all(&mut tx, ctx, &group, &product, organiser, &members, now).await?;
    let html = created_message(
        ctx,
        &group,
        &product,
        &told.reached,
        &told.waiting,
        &told.not_mailed,
    );
    // The organiser waits for this one: an answer, served before the invitations.
    let confirmation = super::reply::message(format!("created:{group_id}"), chat_id, html, None);
    super::reply::queue(&mut tx, now, &confirmation).await?;
    tx.commit().await?;
    ctx.answered();
    tracing::info!(group_id, sku = %product.sku, head_count = head_count.get(), members = members.len(), "group created");
    Ok(Some(Created { group_id, key }))
}

/// Who was reached at once, who waits for their first contact, and who was not mailed.
#[derive(Debug, Default)]
struct Told {
    reached: Vec<String>,
    waiting: Vec<String>,
    not_mailed: NotMailed,
}

/// Invites every named member: a prompt to those who already talk to the bot, an email to
/// email invitees (within the organiser's budget, never to a suppressed address), and a
/// prompt waiting for the others' first contact.
async fn invite_all(
    tx: &mut Conn,
    ctx: &Ctx,
    group: &GroupRow,
    product: &Product,
    organiser: &Person,
    members: &[MemberRef],
    now: i64,
) -> AppResult<Told> {
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
        match invite(tx, ctx, group, product, organiser, m, now).await? {
            Invited::Prompted => told.reached.push(m.to_string()),
            Invited::Emailed => told.reached.push(format!("{m} (by email)")),
            Invited::Waiting => told.waiting.push(m.to_string()),
        }
    }
    Ok(told)
}

/// Email members `/newgroup` left out, and why; their seats stay open to anyone with the link.
#[derive(Debug, Default)]
struct NotMailed {
    /// On the suppression list: they asked never to get invitations.
    refused: Vec<String>,
    /// Over the organiser's `email_invites_per_group` or `email_invites_per_day`.
    over_limit: Vec<String>,
}

/// How many more invitation emails `organiser` may have sent for this group now.
async fn email_budget(
    conn: &mut Conn,
    ctx: &Ctx,
    organiser: i64,
    group_id: i64,
    now: i64,
) -> AppResult<u32> {
    let (group, day) = mailing::invites_sent(conn, organiser, group_id, now - 86_400).await?;
    let c = &ctx.config;
    Ok(c.email_invites_per_group
        .saturating_sub(group)
        .min(c.email_invites_per_day.saturating_sub(day)))
}

#[allow(clippy::too_many_arguments)]
async fn insert_with_fresh_key(
    conn: &mut Conn,
    _ctx: &Ctx,
    organiser: &Person,
    chat_id: i64,
    product: &Product,
    head_count: HeadCount,
    now: i64,
    expires_at: i64,
) -> AppResult<(i64, GroupKey)> {
    // 90 random bits make a collision practically impossible; a retry costs nothing.
    for _ in 0..3 {
        let key = GroupKey::generate()?;
        let g = NewGroup {
            key: key.as_str(),
            sku: product.sku.as_str(),
            head_count: head_count.get(),
            organiser_id: organiser.id,
            chat_id,
            policy: _ctx.config.policy,
            now,
            expires_at,
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

enum Invited {
    Prompted,
    Emailed,
    Waiting,
}

async fn invite(
    conn: &mut Conn,
    ctx: &Ctx,
    group: &GroupRow,
    product: &Product,
    organiser: &Person,
    member: &MemberRef,
    now: i64,
) -> AppResult<Invited> {
    match member {
        MemberRef::Email(email) => {
            let code = InviteCode::generate()?;
            // Stored as its keyed hash: the database alone recognises no invitee.
            let code_hash = ctx.secrets.hash(Purpose::Invite, code.as_str());
            let member_id =
                groups::insert_member(conn, group.id, member, Some(&code_hash), None).await?;
            let payload = StartPayload::Invitation(
                GroupKey::parse(&group.key).map_err(|_| UserError::UnknownKey)?,
                code,
            );
            mailing::count_invite(conn, organiser.id, group.id, now).await?;
            let mail = Invitation {
                organiser: crate::replies::quoted_name(&organiser.first_name),
                product: product.name.clone(),
                price: ctx.money(product.price.minor()),
                head_count: group.head_count,
                best_rate: ctx.config.tiers.rate_for(group.head_count).to_string(),
                expires: when(group.expires_at),
                deep_link: ctx.deep_link(&payload.encode()),
                page_url: ctx.page_url(&group.key),
                key: group.key.clone(),
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
            groups::mark_prompted(conn, member_id, now).await?;
            Ok(Invited::Emailed)
        }
        MemberRef::UserId(_) | MemberRef::Username(_) => {
            let known = match member {
                MemberRef::UserId(id) => users::get(conn, *id).await?,
                MemberRef::Username(u) => users::by_username(conn, u).await?,
                MemberRef::Email(_) => None,
            };
            let reachable = known.filter(|u| u.started && !u.unreachable);
            let member_id = groups::insert_member(
                conn,
                group.id,
                member,
                None,
                reachable.as_ref().map(|u| u.id),
            )
            .await?;
            match reachable {
                Some(user) => {
                    queue_prompt(
                        conn,
                        ctx,
                        group,
                        product,
                        &organiser.first_name,
                        member_id,
                        user.id,
                        user.email,
                        now,
                    )
                    .await?;
                    Ok(Invited::Prompted)
                }
                None => Ok(Invited::Waiting),
            }
        }
    }
}

/// Queues the purchase prompt of claim 11 for one member and marks them prompted.
#[allow(clippy::too_many_arguments)]
pub async fn queue_prompt(
    conn: &mut Conn,
    ctx: &Ctx,
    group: &GroupRow,
    product: &Product,
    organiser_name: &str,
    member_id: i64,
    user_id: i64,
    email: Option<String>,
    now: i64,
) -> AppResult<()> {
    let bought = crate::store::purchases::count_counted(conn, group.id).await?;
    let html = format!(
        "{} invited you to buy together.\n\n{}",
        esc(organiser_name),
        group_card(ctx, group, product, organiser_name, bought)
    );
    let kb = buy_keyboard(ctx, group, product);
    queue_message(
        conn,
        now,
        format!("prompt:{member_id}"),
        user_id,
        html,
        Some(kb),
        email,
    )
    .await?;
    groups::mark_prompted(conn, member_id, now).await?;
    Ok(())
}

/// Listed members per section; the rest are counted, so the confirmation stays within
/// Telegram's 4,096 characters however many members were named.
const LISTED: usize = 30;

fn bullets(s: &mut String, names: &[String]) {
    for n in names.iter().take(LISTED) {
        bullet(s, &esc(&crate::replies::short(n)));
    }
    if names.len() > LISTED {
        let _ = writeln!(s, "… and {} more", names.len() - LISTED);
    }
}

fn created_message(
    ctx: &Ctx,
    g: &GroupRow,
    product: &Product,
    reached: &[String],
    waiting: &[String],
    not_mailed: &NotMailed,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "<b>Your group purchase is open.</b>");
    let _ = writeln!(
        s,
        "{} × {} at {} each.",
        g.head_count,
        esc(&product.name),
        ctx.money(product.price.minor())
    );
    let _ = writeln!(s, "Key: <code>{}</code>", esc(&g.key));
    let _ = writeln!(s, "Open until {}.", when(g.expires_at));
    let _ = writeln!(s, "Group page: {}", esc(&ctx.page_url(&g.key)));
    let _ = writeln!(s, "Invitation link: {}", esc(&ctx.deep_link(&g.key)));
    let _ = writeln!(s, "Discount tiers: {}.", tier_line(&ctx.config.tiers));
    if !reached.is_empty() {
        let _ = writeln!(s, "\nInvited now:");
        bullets(&mut s, reached);
    }
    if !waiting.is_empty() {
        let _ = writeln!(
            s,
            "\nWill be asked as soon as they message me (bots cannot start chats) — send them the invitation link:"
        );
        bullets(&mut s, waiting);
    }
    if !not_mailed.refused.is_empty() {
        let _ = writeln!(s, "{}", crate::replies::not_mailed_refused());
        bullets(&mut s, &not_mailed.refused);
    }
    if !not_mailed.over_limit.is_empty() {
        let c = &ctx.config;
        let _ = writeln!(
            s,
            "{}",
            crate::replies::not_mailed_over_limit(
                c.email_invites_per_group,
                c.email_invites_per_day
            )
        );
        bullets(&mut s, &not_mailed.over_limit);
    }
    let open = g.head_count as usize - reached.len() - waiting.len();
    if open > 0 {
        let _ = writeln!(
            s,
            "\n{open} seat(s) are open to anyone with the key or link."
        );
    }
    s.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_into_product_count_members_expiry() {
        let r = parse_words("camera 3 @alice 123456 carol@example.com 48h").expect("valid");
        assert_eq!(r.product, "camera");
        assert_eq!(r.head_count, "3");
        assert_eq!(r.members, vec!["@alice", "123456", "carol@example.com"]);
        assert_eq!(r.expiry.as_deref(), Some("48h"));
        let r = parse_words("Photo scanner 2").expect("valid");
        assert_eq!(r.product, "Photo scanner");
        assert_eq!(parse_words("camera"), Err(UserError::NewGroupUsage));
        assert_eq!(parse_words("3 @alice"), Err(UserError::NewGroupUsage));
        assert_eq!(
            parse_words("camera 3 1h 2h"),
            Err(UserError::BadExpiry("2h".into()))
        );
        assert_eq!(
            parse_words("camera 3 @a 99x").map(|r| r.expiry),
            Ok(Some("99x".into()))
        );
    }

    #[test]
    fn expiry_bounds() {
        assert_eq!(parse_expiry("30m"), Some(1_800));
        assert_eq!(parse_expiry("48h"), Some(172_800));
        assert_eq!(parse_expiry("7d"), Some(604_800));
        assert_eq!(parse_expiry("1m"), None);
        assert_eq!(parse_expiry("366d"), None);
        assert_eq!(parse_expiry("5x"), None);
        // Multi-byte words must not split inside a character.
        assert_eq!(parse_expiry("3日"), None);
        assert_eq!(parse_expiry("café"), None);
        assert_eq!(parse_expiry(""), None);
        assert!(parse_words("camera 3 café").is_ok());
        assert_eq!(
            parse_words("camera 3 3日").map(|r| r.expiry),
            Ok(Some("3日".into()))
        );
    }

    #[test]
    fn members_are_checked() {
        let n = HeadCount::new(2, 10).expect("valid");
        let words = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(parse_members(&words(&["@alice", "123"]), n).is_ok());
        assert_eq!(
            parse_members(&words(&["@alice", "@Alice"]), n),
            Err(UserError::DuplicateMember("@alice".into()))
        );
        assert_eq!(
            parse_members(&words(&["@alice", "1", "2"]), n),
            Err(UserError::TooManyMembers {
                members: 3,
                seats: 2
            })
        );
        assert!(matches!(
            parse_members(&words(&["bob@x"]), n),
            Err(UserError::BadMember(_))
        ));
    }
}
