//! What the bot says when a request succeeds or a group moves on, as typed values: the use
//! cases build one, and it is rendered to Telegram HTML here, with every user-supplied string
//! escaped here and nowhere else. (Refusals are [`super::UserError`].)

use super::{bullet, duration, esc, when};
use crate::domain::{Amount, GroupKey, HeadCount, Points, Rate};
use std::fmt::Write;

/// Buyers named in `/status`; 40 names of at most 40 characters stay far below Telegram's
/// 4,096-character limit.
const SHOWN_BUYERS: usize = 40;

/// `/status`: one group in detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStatus {
    pub product: String,
    pub key: GroupKey,
    pub organiser: String,
    pub bought: usize,
    pub head_count: HeadCount,
    /// The tier the buyers so far reach, and the one a full group reaches.
    pub reached: Rate,
    pub when_full: Rate,
    pub state: StatusState,
    /// The buyers' first names, shown to the organiser and the buyers only.
    pub buyers: Option<Vec<String>>,
}

/// Where a group stands, for `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusState {
    Open {
        until: i64,
        left_secs: i64,
    },
    Expired {
        at: i64,
    },
    Settled {
        at: i64,
        rate: Rate,
        points: Points,
    },
    /// Settled, but its settlement row could not be read.
    SettledUnknown,
    Cancelled,
}

impl GroupStatus {
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<b>{}</b> — group <code>{}</code>",
            esc(&self.product),
            self.key
        );
        let _ = writeln!(s, "Organiser: {}", esc(&self.organiser));
        let _ = writeln!(s, "Seats: {} of {} bought", self.bought, self.head_count);
        let _ = writeln!(
            s,
            "Discount reached so far: {} (when full: {})",
            self.reached, self.when_full
        );
        match &self.state {
            StatusState::Expired { at } => {
                let _ = writeln!(s, "Expired on {}; settling shortly.", when(*at));
            }
            StatusState::Open { until, left_secs } => {
                let _ = writeln!(
                    s,
                    "Open until {} ({} left).",
                    when(*until),
                    duration(*left_secs)
                );
            }
            StatusState::Settled { at, rate, points } => {
                let _ = writeln!(
                    s,
                    "Settled on {}: {rate}, {points} points credited.",
                    when(*at)
                );
            }
            StatusState::SettledUnknown => {}
            StatusState::Cancelled => {
                let _ = writeln!(s, "Cancelled by the organiser.");
            }
        }
        if let Some(buyers) = self.buyers.as_ref().filter(|b| !b.is_empty()) {
            let _ = writeln!(s, "\nBuyers:");
            // Telegram takes at most 4,096 characters: name the first ones, count the rest.
            for name in buyers.iter().take(SHOWN_BUYERS) {
                let name: String = name.chars().take(40).collect();
                bullet(&mut s, &esc(&name));
            }
            if buyers.len() > SHOWN_BUYERS {
                let _ = writeln!(s, "… and {} more", buyers.len() - SHOWN_BUYERS);
            }
        }
        s.trim_end().to_string()
    }
}

/// `/points`: the balance and the latest changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsReport {
    pub balance: Points,
    /// The currency one point is worth one minor unit of.
    pub unit: String,
    pub latest: Vec<PointsChange>,
}

/// One change to a person's points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsChange {
    pub change: i64,
    pub memo: String,
    pub at: i64,
}

impl PointsReport {
    pub fn html(&self) -> String {
        let mut s = format!(
            "<b>Your points: {}</b> (1 point = 1 {}).\n",
            self.balance, self.unit
        );
        if self.latest.is_empty() {
            s.push_str("No points yet: they come back to you when a group you bought in closes.");
        } else {
            s.push_str("\nLatest:\n");
            for h in &self.latest {
                let sign = if h.change > 0 { "+" } else { "" };
                bullet(
                    &mut s,
                    &format!("{sign}{} — {} ({})", h.change, esc(&h.memo), when(h.at)),
                );
            }
        }
        s.trim_end().to_string()
    }
}

/// `/mygroups`: the person's buying circles (first page only), then the groups they
/// organised, were invited to, or bought in, ten a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyGroups {
    pub circles: Vec<MyCircle>,
    pub groups: Vec<MyGroup>,
    /// This page (from 0), and whether older groups follow.
    pub page: u32,
    pub more: bool,
}

/// A buying circle: the same people who bought together (claim 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyCircle {
    pub size: u32,
    pub times_bought: u32,
    pub total_spent: Amount,
    pub last_bought_at: i64,
    /// The product it bought most.
    pub top_product: Option<String>,
}

/// The buttons that page through `/mygroups`.
pub const NEWER_GROUPS: &str = "‹ Newer";
pub const OLDER_GROUPS: &str = "Older ›";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyGroup {
    pub key: GroupKey,
    pub product: String,
    pub bought: u32,
    pub head_count: HeadCount,
    pub state: MyGroupState,
    pub organiser: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MyGroupState {
    Open {
        left_secs: i64,
    },
    Expired,
    /// Settled, with the rate reached and the points credited (when its row could be read).
    Settled {
        outcome: Option<(Rate, Points)>,
    },
    Cancelled,
}

impl MyGroups {
    pub fn html(&self) -> String {
        if self.page == 0 && self.groups.is_empty() && self.circles.is_empty() {
            return "You have no group purchases yet. Start one with /newgroup.".into();
        }
        let mut s = String::new();
        if !self.circles.is_empty() {
            let _ = writeln!(s, "<b>Your buying circles</b>");
            for c in &self.circles {
                let mostly = c
                    .top_product
                    .as_deref()
                    .map(|p| format!(", mostly {}", esc(p)))
                    .unwrap_or_default();
                bullet(
                    &mut s,
                    &format!(
                        "{} people — bought together {} time(s), {} in all{mostly}; last on {}",
                        c.size,
                        c.times_bought,
                        c.total_spent,
                        when(c.last_bought_at)
                    ),
                );
            }
            s.push('\n');
        }
        if self.groups.is_empty() {
            s.push_str("No older group purchases.");
            return s;
        }
        if self.page == 0 && !self.more {
            s.push_str("<b>Your group purchases</b>\n");
        } else {
            let _ = writeln!(s, "<b>Your group purchases</b> (page {})", self.page + 1);
        }
        for g in &self.groups {
            let state = match g.state {
                MyGroupState::Open { left_secs } => format!("open, {} left", duration(left_secs)),
                MyGroupState::Expired => "expired".into(),
                MyGroupState::Settled {
                    outcome: Some((rate, points)),
                } => format!("settled, {rate} reached, {points} points"),
                MyGroupState::Settled { outcome: None } => "settled".into(),
                MyGroupState::Cancelled => "cancelled".into(),
            };
            let role = if g.organiser { "organiser" } else { "member" };
            bullet(
                &mut s,
                &format!(
                    "<code>{}</code> {} — {}/{} bought, {state} ({role})",
                    g.key,
                    esc(&g.product),
                    g.bought,
                    g.head_count
                ),
            );
        }
        s.trim_end().to_string()
    }
}

/// `/cancel`: what the organiser and the invited members are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// To the organiser; `again` when the group was already cancelled by this request.
    ToOrganiser { key: GroupKey, again: bool },
    /// To a member who had been told about the group.
    ToMember { key: GroupKey },
}

impl Cancelled {
    pub fn html(&self) -> String {
        match self {
            Cancelled::ToOrganiser { key, again: true } => {
                format!("Group <code>{}</code> is cancelled.", key)
            }
            Cancelled::ToOrganiser { key, again: false } => format!(
                "Group <code>{}</code> is cancelled. Invited members who were told about it get a note.",
                key
            ),
            Cancelled::ToMember { key } => format!(
                "The group purchase <code>{}</code> you were invited to was cancelled by its organiser.",
                key
            ),
        }
    }
}

/// `/extend`: what the organiser and the members who were told about the group hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extended {
    /// To the organiser: the new expiry, and how many members got a note.
    ToOrganiser {
        key: GroupKey,
        until: i64,
        told: usize,
    },
    /// To a member who had been told about the group.
    ToMember {
        key: GroupKey,
        product: String,
        until: i64,
    },
}

impl Extended {
    pub fn html(&self) -> String {
        match self {
            Extended::ToOrganiser { key, until, told } => format!(
                "Group <code>{key}</code> is now open until {}. {told} invited member(s) who were told about it get a note.",
                when(*until)
            ),
            Extended::ToMember {
                key,
                product,
                until,
            } => format!(
                "More time: group <code>{key}</code> for {} is now open until {}.",
                esc(product),
                when(*until)
            ),
        }
    }
}

/// `/remove`: what the organiser and the removed member hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// To the organiser; `told` when the member had been told about the group and gets a note.
    ToOrganiser {
        key: GroupKey,
        member: String,
        told: bool,
    },
    /// To the member, by bot message.
    ToMember { key: GroupKey, product: String },
}

impl Removed {
    pub fn html(&self) -> String {
        match self {
            Removed::ToOrganiser { key, member, told } => format!(
                "{} is no longer invited to group <code>{key}</code>; their seat is open again.{}",
                esc(&super::short(member)),
                if *told { " They get a note." } else { "" }
            ),
            Removed::ToMember { key, product } => format!(
                "The organiser of group <code>{key}</code> for {} took back your invitation. You need not buy in it.",
                esc(product)
            ),
        }
    }

    /// The same words as a plain email, for a member invited by email.
    pub fn email(&self) -> crate::mail::Rendered {
        let html = self.html();
        crate::mail::Rendered {
            subject: "Your group purchase invitation was withdrawn".into(),
            text: super::strip_tags(&html),
            html: format!("<p>{html}</p>"),
        }
    }
}

/// The organiser's notice each time someone buys: "Alice bought — 2 of 3, 3% reached; one
/// more → 5%".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bought {
    pub key: GroupKey,
    pub buyer: String,
    pub progress: crate::domain::tiers::Progress,
}

impl Bought {
    pub fn html(&self) -> String {
        let p = &self.progress;
        let next = match p.one_more {
            Some(rate) => format!("one more → {rate}"),
            None => "the group is full".into(),
        };
        format!(
            "{} bought — {} of {}, {} reached; {next}. (group <code>{}</code>)",
            esc(&super::short(&self.buyer)),
            p.bought,
            p.head_count,
            p.reached,
            self.key
        )
    }
}

/// The caption of `/export`'s CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub key: GroupKey,
    pub purchases: usize,
}

impl Exported {
    pub fn html(&self) -> String {
        format!(
            "Group <code>{}</code>: {} purchase(s), one line each (buyer, product, price, paid, points redeemed and credited, shipping, region), then the totals.",
            self.key, self.purchases
        )
    }
}

/// The link to a purchase's receipt page, as the last line of a message.
pub fn receipt_line(url: &str) -> String {
    format!("Receipt: {}", esc(url))
}

/// A buyer's notice when their group settles (sent by bot; the email renders the same values).
pub fn discount_notice(n: &crate::mail::render::DiscountNotice) -> String {
    let mut s = String::new();
    if n.points > 0 {
        let _ = writeln!(s, "<b>{} points are yours.</b>", n.points_text);
        let _ = writeln!(
            s,
            "Group <code>{}</code> for {} closed with {} of {} buyers and reached a {} discount.",
            esc(&n.key),
            esc(&n.product),
            n.buyers,
            n.head_count,
            n.rate
        );
        if n.bonus > 0 {
            let _ = writeln!(s, "Shared-region bonus included: {}.", n.bonus_text);
        }
    } else {
        let _ = writeln!(s, "<b>Your group purchase has closed.</b>");
        let _ = writeln!(
            s,
            "Group <code>{}</code> for {} closed with {} of {} buyers. {}",
            esc(&n.key),
            esc(&n.product),
            n.buyers,
            n.head_count,
            esc(&n.reason)
        );
    }
    let _ = writeln!(
        s,
        "Your points balance: {} (1 point = 1 {}). Spend them on your next purchase.",
        n.balance_text, n.unit
    );
    s.push_str(&receipt_line(&n.receipt_url));
    s
}

/// Why an unfilled group's buyers get no discount (empty when it filled).
pub fn no_discount_reason(filled: bool, partial: bool, buyers: u32, head_count: u32) -> String {
    match (filled, partial) {
        (true, _) => String::new(),
        (false, false) => format!(
            "The group did not fill before it expired ({buyers} of {head_count} bought), so under its all-or-nothing rule there is no discount."
        ),
        (false, true) => format!(
            "The group did not fill before it expired ({buyers} of {head_count} bought), and that many buyers reach no discount tier."
        ),
    }
}

/// The settled summary's button that opens the same group again (`/regroup`).
pub const BUY_TOGETHER_AGAIN: &str = "Buy together again";

/// The organiser's summary when their group settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledSummary {
    pub key: GroupKey,
    pub product: String,
    pub buyers: u32,
    pub head_count: HeadCount,
    pub filled: bool,
    pub rate: Rate,
    pub total: Points,
    /// The total in money, for people ("4,970 JPY").
    pub total_money: String,
}

impl SettledSummary {
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "<b>Group <code>{}</code> is settled.</b>", self.key);
        let _ = writeln!(
            s,
            "{}: {} of {} bought{}.",
            esc(&self.product),
            self.buyers,
            self.head_count,
            if self.filled { " — full" } else { "" }
        );
        let _ = writeln!(
            s,
            "Discount: {} — {} points credited to the buyers ({}).",
            self.rate, self.total, self.total_money
        );
        let _ = write!(
            s,
            "The key is no longer valid. Buy together again with the same people: the button below, or <code>/regroup {}</code> (add a product, head count or expiry to change them).",
            self.key
        );
        s
    }
}

/// The receipt for a payment that took its seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub product: String,
    /// The normal price, and what was paid, for people ("34,800 JPY", "120 Stars").
    pub price: Amount,
    pub paid: String,
    pub points_used: Points,
    pub key: GroupKey,
    pub bought: u32,
    pub head_count: HeadCount,
    /// The discount when the group fills.
    pub rate: Rate,
    pub receipt_url: String,
}

impl Receipt {
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "<b>Thank you — payment received.</b>");
        let _ = writeln!(s, "{}: {}", esc(&self.product), self.price);
        if self.points_used > Points::ZERO {
            let _ = writeln!(s, "Points used: {}", self.points_used.value());
        }
        let _ = writeln!(s, "Paid: {}", self.paid);
        let _ = writeln!(s, "Your order has gone to the warehouse and ships now.");
        let _ = writeln!(
            s,
            "Group <code>{}</code>: {} of {} seats bought. When it fills, you get {} back as points.",
            self.key, self.bought, self.head_count, self.rate
        );
        s.push_str(&receipt_line(&self.receipt_url));
        s
    }
}

/// The buy flow's questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyQuestion {
    /// "Buy the group's product?" (with Buy and Another-product buttons).
    Confirm { product: String, key: String },
    /// Which catalog product to buy as the seat (claim 2).
    WhichProduct,
    /// Spend points on this product?
    UsePoints { balance: i64, product: String },
}

impl BuyQuestion {
    pub fn html(&self) -> String {
        match self {
            BuyQuestion::Confirm { product, key } => format!(
                "Buy <b>{}</b> in group <code>{}</code>?",
                esc(product),
                key
            ),
            BuyQuestion::WhichProduct => {
                "Any product of the catalog counts as your seat in this group. Which one would you like?"
                    .into()
            }
            BuyQuestion::UsePoints { balance, product } => format!(
                "You have <b>{balance}</b> points. Use them on {}?",
                esc(product)
            ),
        }
    }
}

/// Greetings and the other words of the chat itself; `help` is the generated `/help` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chat {
    /// `/start` with no group.
    Hello { first_name: String, help: String },
    /// A message that is not a command.
    WhatICanDo { first_name: String, help: String },
    /// A command the bot does not have.
    UnknownCommand { command: String, help: String },
    /// `/buy` with several groups open to the person.
    WhichGroup,
    /// `/paysupport` (Telegram requires bots that take payments to answer it).
    PaySupport { contact: String },
}

impl Chat {
    pub fn html(&self) -> String {
        match self {
            Chat::Hello { first_name, help } => format!("Hello, {}!\n\n{help}", esc(first_name)),
            Chat::WhatICanDo { first_name, help } => {
                format!(
                    "Hello, {}! Here is what I can do.\n\n{help}",
                    esc(first_name)
                )
            }
            Chat::UnknownCommand { command, help } => format!(
                "I don't know the command {}.\n\n{help}",
                esc(&super::short(command))
            ),
            Chat::WhichGroup => "Which group would you like to buy in?".into(),
            Chat::PaySupport { contact } => format!(
                "<b>Payment support</b>\n{}\n\nEvery payment is recorded once with its Telegram charge id; your receipts are in this chat.",
                esc(contact)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_at_most_forty_buyers_and_escapes_them() {
        let status = GroupStatus {
            product: "Camera <b>".into(),
            key: GroupKey::generate().expect("a key"),
            organiser: "Bob & co".into(),
            bought: 45,
            head_count: HeadCount::new(50, 100).expect("a head count"),
            reached: Rate::ZERO,
            when_full: Rate::ZERO,
            state: StatusState::Cancelled,
            buyers: Some((0..45).map(|i| format!("<i>{i}")).collect()),
        };
        let html = status.html();
        assert!(html.contains("Camera &lt;b&gt;") && html.contains("Bob &amp; co"));
        assert_eq!(html.matches("• &lt;i&gt;").count(), 40);
        assert!(html.ends_with("… and 5 more"));
        let hidden = GroupStatus {
            buyers: None,
            ..status
        };
        assert!(!hidden.html().contains("Buyers:"));
    }

    #[test]
    fn points_report_signs_credits() {
        let r = PointsReport {
            balance: Points::new(1_740),
            unit: "JPY".into(),
            latest: vec![PointsChange {
                change: 1_740,
                memo: "Group discount <x>".into(),
                at: 0,
            }],
        };
        let html = r.html();
        assert!(
            html.starts_with("<b>Your points: 1,740</b> (1 point = 1 JPY)."),
            "{html}"
        );
        assert!(html.contains("+1740 — Group discount &lt;x&gt;"), "{html}");
    }
}
