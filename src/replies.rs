//! Everything the bot says, in one catalogue. Each variant renders to Telegram HTML with
//! every user-supplied string escaped; tests assert on the variant and on the text.

mod error_text;
pub(crate) mod group;
pub(crate) mod messages;
pub(crate) mod organiser;
pub(crate) mod status;

use crate::domain::member::MemberError;
use crate::domain::payment::{RefundMethod, RefundReason};
use crate::domain::{GroupKey, HeadCount, Policy};
use std::fmt::Write;

/// Escapes text for Telegram's HTML parse mode (`<`, `>`, `&`, and `"` inside attributes).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// What a reply repeats of someone's input: at most 64 characters, so an error about a
/// 4,000-character word still fits in Telegram's 4,096.
pub fn short(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        s.chars().take(MAX).chain(std::iter::once('…')).collect()
    }
}

/// "2 of 3" for a group of 3; just "2" for an open head count (¶0144).
pub fn of_seats(
    bought: impl std::fmt::Display,
    head_count: impl std::fmt::Display,
    open: bool,
) -> String {
    if open {
        bought.to_string()
    } else {
        format!("{bought} of {head_count}")
    }
}

/// An open head count's next tier (¶0144): how many buyers reach which rate, and how many
/// more that is; `None` once the top tier is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextTier {
    pub members: u32,
    pub rate: crate::domain::Rate,
    pub more: u32,
}

impl NextTier {
    pub fn of(tiers: &crate::domain::TierTable, buyers: u32) -> Option<Self> {
        tiers.next_after(buyers).map(|(t, more)| NextTier {
            members: t.members,
            rate: t.rate,
            more,
        })
    }

    /// "Next tier: 3 buyers → 5% back (1 more buyer)." or "Top tier reached."
    pub fn line(next: Option<Self>) -> String {
        match next {
            Some(n) => format!(
                "Next tier: {} buyers → {} back ({} more buyer{}).",
                n.members,
                n.rate,
                n.more,
                if n.more == 1 { "" } else { "s" }
            ),
            None => "Top tier reached.".into(),
        }
    }
}

/// "2026-11-24 09:00 UTC".
pub fn when(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ts.to_string())
}

/// "2 days 3 hours", "45 minutes", "less than a minute".
pub fn duration(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, (secs % 86_400) / 3_600, (secs % 3_600) / 60);
    let unit = |n: i64, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    match (d, h, m) {
        (0, 0, 0) => "less than a minute".into(),
        (0, 0, m) => unit(m, "minute"),
        (0, h, m) if m > 0 => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
        (0, h, _) => unit(h, "hour"),
        (d, 0, _) => unit(d, "day"),
        (d, h, _) => format!("{} {}", unit(d, "day"), unit(h, "hour")),
    }
}

/// Bad input, each with the reply its sender gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("usage of /newgroup")]
    NewGroupUsage,
    #[error("unknown product {0:?}")]
    UnknownProduct(String),
    #[error("ambiguous product {query:?}")]
    AmbiguousProduct {
        query: String,
        candidates: Vec<String>,
    },
    #[error("head count {raw:?} invalid")]
    HeadCount { raw: String, min: u32, max: u32 },
    #[error("{members} members for {seats} seats")]
    TooManyMembers { members: usize, seats: u32 },
    #[error("duplicate member {0}")]
    DuplicateMember(String),
    #[error("bad member: {0}")]
    BadMember(MemberError),
    #[error("bad expiry {0:?}")]
    BadExpiry(String),
    #[error("policy named twice: {0:?}")]
    PolicyTwice(String),
    #[error("policy {word:?} but the operator fixes it")]
    PolicyFixed { word: String, policy: Policy },
    #[error("close while a payment is under way")]
    CloseWhilePaying { key: GroupKey },
    #[error("key usage for /{0}")]
    KeyUsage(&'static str),
    #[error("malformed key {0:?}")]
    MalformedKey(String),
    #[error("unknown key")]
    UnknownKey,
    #[error("expired key")]
    Expired { key: GroupKey, at: i64 },
    #[error("settled key")]
    Settled { key: GroupKey },
    #[error("cancelled key")]
    Cancelled { key: GroupKey },
    #[error("group full")]
    GroupFull { key: GroupKey, seats: u32 },
    #[error("not invited")]
    NotInvited { key: GroupKey },
    #[error("already bought")]
    AlreadyBought { key: GroupKey },
    #[error("no open group")]
    NoOpenGroup,
    #[error("invitation taken")]
    InvitationTaken,
    #[error("price changed")]
    PriceChanged,
    #[error("wrong buyer")]
    WrongBuyer,
    #[error("not enough points")]
    NotEnoughPoints { balance: i64 },
    #[error("bad shipping address")]
    BadAddress,
    #[error("only the organiser")]
    NotOrganiser,
    #[error("already has purchases")]
    HasPurchases { key: GroupKey },
    #[error("stale button")]
    StaleButton,
    #[error("not a private chat")]
    PrivateOnly,
    #[error("too many unknown keys")]
    SlowDown,
    #[error("invoice refused")]
    InvoiceRefused,
    #[error("last seats being paid for")]
    SeatBeingPaid { key: GroupKey },
    #[error("already paying")]
    AlreadyPaying { key: GroupKey },
    #[error("not for sale without a provider")]
    NotForSale { product: String },
    #[error("pre-checkout check ran out of time")]
    CheckoutBusy,
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("extension past the longest lifetime")]
    ExtendPastMaximum { key: GroupKey, latest: i64 },
    #[error("extension of a group without expiry")]
    ExtendNoExpiry { key: GroupKey },
    #[error("not enough unreserved seats")]
    NoSeatsToInvite {
        key: GroupKey,
        free: u32,
        asked: usize,
    },
    #[error("member already invited")]
    AlreadyInvited { key: GroupKey, member: String },
    #[error("not a member")]
    NotAMember { key: GroupKey, member: String },
    #[error("member already bought")]
    MemberBought { key: GroupKey, member: String },
    #[error("member paying now")]
    MemberPaying { key: GroupKey, member: String },
    #[error("group still open")]
    StillOpen { key: GroupKey },
    #[error("already regrouped")]
    AlreadyRegrouped { key: GroupKey, again: GroupKey },
    #[error("internal error")]
    Internal,
}

impl UserError {
    /// The reply, as Telegram HTML.
    pub fn html(&self) -> String {
        self.input_html()
            .or_else(|| self.group_html())
            .or_else(|| self.payment_html())
            .or_else(|| self.organiser_html())
            .unwrap_or_else(|| self.chat_html())
    }

    /// Plain text, for places without HTML (the pre-checkout error shown by Telegram).
    pub fn plain(&self) -> String {
        strip_tags(&self.html())
    }

    /// The head-count error for `raw`, naming the allowed range up to `max`.
    pub fn from_head_count(raw: &str, max: u32) -> Self {
        UserError::HeadCount {
            raw: raw.to_string(),
            min: HeadCount::MIN,
            max,
        }
    }

    /// A short word for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            UserError::NewGroupUsage => "newgroup_usage",
            UserError::UnknownProduct(_) => "unknown_product",
            UserError::AmbiguousProduct { .. } => "ambiguous_product",
            UserError::HeadCount { .. } => "head_count",
            UserError::TooManyMembers { .. } => "too_many_members",
            UserError::DuplicateMember(_) => "duplicate_member",
            UserError::BadMember(_) => "bad_member",
            UserError::BadExpiry(_) => "bad_expiry",
            UserError::PolicyTwice(_) => "policy_twice",
            UserError::PolicyFixed { .. } => "policy_fixed",
            UserError::CloseWhilePaying { .. } => "close_while_paying",
            UserError::KeyUsage(_) => "key_usage",
            UserError::MalformedKey(_) => "malformed_key",
            UserError::UnknownKey => "unknown_key",
            UserError::Expired { .. } => "expired",
            UserError::Settled { .. } => "settled",
            UserError::Cancelled { .. } => "cancelled",
            UserError::GroupFull { .. } => "full",
            UserError::NotInvited { .. } => "not_invited",
            UserError::AlreadyBought { .. } => "already_bought",
            UserError::NoOpenGroup => "no_open_group",
            UserError::InvitationTaken => "invitation_taken",
            UserError::PriceChanged => "price_changed",
            UserError::WrongBuyer => "wrong_buyer",
            UserError::NotEnoughPoints { .. } => "not_enough_points",
            UserError::BadAddress => "bad_address",
            UserError::NotOrganiser => "not_organiser",
            UserError::HasPurchases { .. } => "has_purchases",
            UserError::StaleButton => "stale_button",
            UserError::PrivateOnly => "private_only",
            UserError::SlowDown => "slow_down",
            UserError::InvoiceRefused => "invoice_refused",
            UserError::SeatBeingPaid { .. } => "seat_being_paid",
            UserError::AlreadyPaying { .. } => "already_paying",
            UserError::NotForSale { .. } => "not_for_sale",
            UserError::CheckoutBusy => "checkout_busy",
            UserError::Usage(_) => "usage",
            UserError::ExtendPastMaximum { .. } => "extend_past_maximum",
            UserError::ExtendNoExpiry { .. } => "extend_no_expiry",
            UserError::NoSeatsToInvite { .. } => "no_seats_to_invite",
            UserError::AlreadyInvited { .. } => "already_invited",
            UserError::NotAMember { .. } => "not_a_member",
            UserError::MemberBought { .. } => "member_bought",
            UserError::MemberPaying { .. } => "member_paying",
            UserError::StillOpen { .. } => "still_open",
            UserError::AlreadyRegrouped { .. } => "already_regrouped",
            UserError::Internal => "internal",
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Telegram HTML to plain text: drops tags and decodes the four entities Telegram knows.
pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// `/help` (and the greeting's list): what the bot does, and its commands as the command
/// menu lists them, `(command, description)` each — generated from the command enum, so the
/// menu and the help never disagree.
pub fn help(commands: &[(String, String)]) -> String {
    let mut s = String::from(
        "<b>groupbuy</b>: buy together, pay the normal price now, get the group discount back as points.\n\n",
    );
    for (command, description) in commands {
        let _ = writeln!(s, "/{command} — {}", esc(description));
    }
    s.push_str(
        "\nMembers are @usernames, numeric Telegram ids or email addresses; I message each one.",
    );
    s
}

/// Why a payment does not count (completes "… because …").
pub fn refund_reason(reason: RefundReason) -> &'static str {
    match reason {
        RefundReason::Late => "the group had already closed",
        RefundReason::Full => "every seat had been taken",
        RefundReason::Repeat => "you already hold a seat in it",
        RefundReason::Points => {
            "the points this invoice used were spent on another purchase meanwhile"
        }
        RefundReason::Closed => "the group was cancelled",
        RefundReason::Reversed => "the payment was refunded",
    }
}

/// What happens to the money of a payment that is refunded, in the buyer's words.
pub fn money_back(method: RefundMethod, amount: &str, charge_id: &str, points: i64) -> String {
    let mut s = match method {
        RefundMethod::Stars => format!(
            "Your {amount} are being refunded to your Telegram Stars balance now; you get a message when they are back."
        ),
        RefundMethod::Provider => format!(
            "The shop refunds {amount} to the card you paid with, usually within a few business days; your reference is <code>{}</code>. If it has not arrived within 10 days, write /paysupport.",
            esc(charge_id)
        ),
    };
    if points > 0 {
        let _ = write!(s, " The {points} points it used are back in your balance.");
    }
    s
}

/// A payment that did not count: the receipt says so and what happens to the money.
pub fn payment_refunded(
    product: &str,
    amount: &str,
    key: &str,
    reason: RefundReason,
    back: &str,
) -> String {
    format!(
        "<b>Refund: payment received, and it is coming back to you.</b>\n{}: {amount}\nThis payment cannot count toward group <code>{}</code> because {}, so nothing ships and you are not charged for it.\n{back}",
        esc(product),
        esc(key),
        refund_reason(reason)
    )
}

/// A counted purchase reversed afterwards (an operator's refund, or one Telegram reported).
pub fn purchase_reversed(product: &str, key: &str, back: &str, clawed_back: i64) -> String {
    let mut s = format!(
        "<b>Your purchase of {} in group <code>{}</code> was refunded.</b>\nIt no longer counts toward the group.\n{back}",
        esc(product),
        esc(key)
    );
    if clawed_back > 0 {
        let _ = write!(
            s,
            "\nThe {clawed_back} points this purchase earned when the group settled were taken back."
        );
    }
    s
}

/// A refund went out.
pub fn refund_paid(amount: &str, product: &str) -> String {
    format!(
        "<b>Refund complete:</b> {amount} for {} are back with you.",
        esc(product)
    )
}

/// A list line such as "• Alice — bought".
pub fn bullet(out: &mut String, line: &str) {
    let _ = writeln!(out, "• {line}");
}

/// Addresses `/newgroup` did not mail because they asked never to get invitations.
pub fn not_mailed_refused() -> &'static str {
    "\nNot emailed: these addresses asked not to get invitations from us, so they will not be mailed (share the link with them yourself if they want it):"
}

/// Addresses `/newgroup` did not mail because the organiser's invitation budget ran out.
pub fn not_mailed_over_limit(per_group: u32, per_day: u32) -> String {
    format!(
        "\nNot emailed: you may have {per_group} invitation emails sent per group and {per_day} a day, and these were over it (send them the invitation link yourself):"
    )
}

/// The organiser's name as invitations show it: the words someone chose in Telegram, in
/// quotes and marked as such, never as a sender: no quotes or control characters of its
/// own, whitespace collapsed, at most 32 characters.
pub fn quoted_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '"' | '\u{201c}' | '\u{201d}' | '<' | '>' | '@')
        })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let mut name: String = words.join(" ").chars().take(32).collect();
    if name.is_empty() {
        name = "someone".into();
    }
    format!("\u{201c}{name}\u{201d}")
}

/// The one-click unsubscribe page: what it offers, and what it says once done.
pub const UNSUBSCRIBE_OFFER: &str = "Don't want invitations from groupbuy? Press the button and this address will not get invitations, campaigns or reminders from us again.";
/// What the unsubscribe page says once the address is unsubscribed.
pub const UNSUBSCRIBE_DONE: &str =
    "Done: this address will not get invitations, campaigns or reminders from us again.";

/// The answer to `/forgetme`.
pub const FORGOTTEN: &str = "<b>Done: I have forgotten you.</b>\nYour name, username, email address and shipping addresses are erased everywhere I kept them, and your email address will not be mailed again. What remains is anonymous: the amounts of your purchases and points, against your numeric Telegram id. If you write to me again, I will know your name from that message on.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            esc("<b>a & \"b\"</b>"),
            "&lt;b&gt;a &amp; &quot;b&quot;&lt;/b&gt;"
        );
        let e = UserError::UnknownProduct("<script>".into());
        assert!(e.html().contains("&lt;script&gt;"));
        assert!(!e.html().contains("<script>"));
        assert!(e.plain().contains("<script>"));
    }

    #[test]
    fn echoed_input_is_cut_short() {
        let long = "x".repeat(5_000);
        for e in [
            UserError::UnknownProduct(long.clone()),
            UserError::MalformedKey(long.clone()),
            UserError::BadExpiry(long.clone()),
            UserError::DuplicateMember(long.clone()),
            UserError::HeadCount {
                raw: long.clone(),
                min: 2,
                max: 10,
            },
        ] {
            assert!(e.html().chars().count() < 400, "{e:?}");
        }
        assert_eq!(short("abc"), "abc");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(30), "less than a minute");
        assert_eq!(duration(60), "1 minute");
        assert_eq!(duration(3_660), "1 hour 1 minute");
        assert_eq!(duration(2 * 86_400 + 3 * 3_600), "2 days 3 hours");
        assert_eq!(duration(86_400), "1 day");
    }
}
