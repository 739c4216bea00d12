//! What the bot says when a request succeeds or a group moves on, as typed values: the use
//! cases build one, and it is rendered to Telegram HTML here, with every user-supplied string
//! escaped here and nowhere else. (Refusals are [`super::UserError`].)

use super::{bullet, duration, esc, of_seats, when};
use crate::domain::{Amount, GroupKey, HeadCount, Points, Rate};
use std::fmt::Write;

pub use super::organiser::{Bought, Cancelled, ClosedNow, Exported, Extended, Removed};
pub use super::status::{GroupStatus, StatusState};

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
    /// An open head count (¶0144).
    pub open_count: bool,
    pub state: MyGroupState,
    pub organiser: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MyGroupState {
    Open {
        left_secs: i64,
    },
    /// Open, without expiry (¶0145).
    OpenNoExpiry,
    Expired,
    /// Settled, with the rate reached and the points credited (when its row could be read).
    Settled {
        outcome: Option<(Rate, Points)>,
    },
    Cancelled,
}

impl MyGroups {
    /// Telegram HTML.
    pub fn html(&self) -> String {
        if self.page == 0 && self.groups.is_empty() && self.circles.is_empty() {
            return "You have no group purchases yet. Start one with /newgroup.".into();
        }
        let mut s = String::new();
        self.circles_html(&mut s);
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
            bullet(&mut s, &g.line());
        }
        s.trim_end().to_string()
    }

    /// The people who bought together, and how often.
    fn circles_html(&self, s: &mut String) {
        if self.circles.is_empty() {
            return;
        }
        let _ = writeln!(s, "<b>Your buying circles</b>");
        for c in &self.circles {
            let mostly = c
                .top_product
                .as_deref()
                .map(|p| format!(", mostly {}", esc(p)))
                .unwrap_or_default();
            bullet(
                s,
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
}

impl MyGroup {
    /// One group's line: key, product, buyers, how it stands or ended, the person's role.
    fn line(&self) -> String {
        let state = match self.state {
            MyGroupState::Open { left_secs } => format!("open, {} left", duration(left_secs)),
            MyGroupState::OpenNoExpiry => "open, no expiry".into(),
            MyGroupState::Expired => "expired".into(),
            MyGroupState::Settled {
                outcome: Some((rate, points)),
            } => format!("settled, {rate} reached, {points} points"),
            MyGroupState::Settled { outcome: None } => "settled".into(),
            MyGroupState::Cancelled => "cancelled".into(),
        };
        let role = if self.organiser {
            "organiser"
        } else {
            "member"
        };
        let bought = if self.open_count {
            self.bought.to_string()
        } else {
            format!("{}/{}", self.bought, self.head_count)
        };
        format!(
            "<code>{}</code> {} — {bought} bought, {state} ({role})",
            self.key,
            esc(&self.product)
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
            "Group <code>{}</code> for {} closed with {} buyers and reached a {} discount.",
            esc(&n.key),
            esc(&n.product),
            n.buyers_text(),
            n.rate
        );
        if n.extra > 0 {
            let _ = writeln!(
                s,
                "Shared-region rate included: {} (buyers shipping to your region together).",
                n.extra_text
            );
        }
        if n.bonus > 0 {
            let _ = writeln!(s, "Shared-region bonus included: {}.", n.bonus_text);
        }
    } else {
        let _ = writeln!(s, "<b>Your group purchase has closed.</b>");
        let _ = writeln!(
            s,
            "Group <code>{}</code> for {} closed with {} buyers. {}",
            esc(&n.key),
            esc(&n.product),
            n.buyers_text(),
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

/// How a group ended, for [`no_discount_reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub filled: bool,
    pub partial: bool,
    pub buyers: u32,
    pub head_count: u32,
    /// False for a product sold without a group discount (¶0146).
    pub discount: bool,
    /// Closed by its organiser (`/close`) before it filled or expired.
    pub closed_early: bool,
    /// An open head count (¶0144): it had no N to fill.
    pub open_count: bool,
}

/// Why a group's buyers get no discount (empty when it filled and its product has one).
pub fn no_discount_reason(e: &Ending) -> String {
    if !e.discount {
        return NO_DISCOUNT.into();
    }
    let (buyers, head_count) = (e.buyers, e.head_count);
    if e.open_count {
        // Shown only when its buyers earned nothing: too few for the first tier.
        return format!("Its {buyers} buyer(s) reach no discount tier.");
    }
    let ended = if e.closed_early {
        "before its organiser closed it"
    } else {
        "before it expired"
    };
    match (e.filled, e.partial) {
        (true, _) => String::new(),
        (false, false) => format!(
            "The group did not fill {ended} ({buyers} of {head_count} bought), so under its all-or-nothing rule there is no discount."
        ),
        (false, true) => format!(
            "The group did not fill {ended} ({buyers} of {head_count} bought), and that many buyers reach no discount tier."
        ),
    }
}

/// What every message about a group of a product sold without discount says (¶0146).
pub const NO_DISCOUNT: &str = "This product is sold without a group discount (it is a scarce item): buying together shares the page, the seats and the shipping, and no points are credited.";
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
    /// False for a product sold without a group discount (¶0146).
    pub discount: bool,
    /// An open head count (¶0144).
    pub open_count: bool,
}

impl SettledSummary {
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "<b>Group <code>{}</code> is settled.</b>", self.key);
        let _ = writeln!(
            s,
            "{}: {} bought{}.",
            esc(&self.product),
            of_seats(self.buyers, self.head_count, self.open_count),
            if self.filled { " — full" } else { "" }
        );
        if self.discount {
            let _ = writeln!(
                s,
                "Discount: {} — {} points credited to the buyers ({}).",
                self.rate, self.total, self.total_money
            );
        } else {
            let _ = writeln!(s, "{NO_DISCOUNT}");
        }
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
    /// False for a product sold without a group discount (¶0146).
    pub discount: bool,
    /// An open head count (¶0144).
    pub open_count: bool,
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
        if self.open_count {
            let _ = writeln!(
                s,
                "Group <code>{}</code>: {} bought so far. {}",
                self.key,
                self.bought,
                if self.discount {
                    "When it closes, you get the tier of the number who bought back as points."
                } else {
                    NO_DISCOUNT
                }
            );
        } else if self.discount {
            let _ = writeln!(
                s,
                "Group <code>{}</code>: {} of {} seats bought. When it fills, you get {} back as points.",
                self.key, self.bought, self.head_count, self.rate
            );
        } else {
            let _ = writeln!(
                s,
                "Group <code>{}</code>: {} of {} seats bought. {NO_DISCOUNT}",
                self.key, self.bought, self.head_count
            );
        }
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
