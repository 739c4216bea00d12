//! A group as the bot shows it: the card that comes with a purchase prompt, `/start KEY`,
//! `/join` and `/buy`, and the organiser's confirmation of `/newgroup`.

use super::NextTier;
use super::messages::NO_DISCOUNT;
use super::{bullet, duration, esc, not_mailed_over_limit, not_mailed_refused, short, when};
use crate::domain::{Amount, Expiry, GroupKey, HeadCount, MemberRef, Policy, Rate, TierTable};
use std::fmt::Write;

/// "2 → 3%, 3 → 5%, 4 → 10%" (tiers with a rate only).
pub fn tier_line(tiers: &TierTable) -> String {
    tiers
        .tiers()
        .iter()
        .filter(|t| t.rate.basis_points() > 0)
        .map(|t| format!("{} → {}", t.members, t.rate))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One group's card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCard {
    pub product: String,
    pub organiser: String,
    pub key: GroupKey,
    pub price: Amount,
    pub bought: u32,
    pub head_count: HeadCount,
    /// The rate a full group reaches, and every tier as [`tier_line`] writes it.
    pub when_full: Rate,
    pub tiers: String,
    /// Its expiry and the seconds left, while it is open.
    pub open: Option<(i64, i64)>,
    /// A group without expiry (¶0145): open until it fills or its organiser closes it.
    pub no_expiry: bool,
    /// False for a product sold without a group discount (¶0146).
    pub discount: bool,
    /// An open head count (¶0144): the tier reached now and the next one.
    pub open_count: Option<(Rate, Option<NextTier>)>,
    pub page_url: String,
}

/// When a group without expiry stops taking purchases, completing "open until …" (¶0145).
pub const NO_EXPIRY_ENDS: &str =
    "every seat is bought or its organiser closes it (the group has no expiry)";

/// How a group without expiry ends, in one sentence (¶0145).
pub const NO_EXPIRY: &str =
    "No expiry: open until every seat is bought or its organiser closes it with /close.";

impl GroupCard {
    /// Telegram HTML.
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "<b>Group purchase: {}</b>", esc(&self.product));
        let _ = writeln!(
            s,
            "Organised by {} · key <code>{}</code>",
            esc(&self.organiser),
            self.key
        );
        let _ = writeln!(
            s,
            "Price: {} each — you pay the normal price now and your order ships right away.",
            self.price
        );
        if let Some((reached, next)) = self.open_count {
            let _ = writeln!(
                s,
                "Buyers so far: {} (open head count: anyone with the key may join)",
                self.bought
            );
            if self.discount {
                let _ = writeln!(
                    s,
                    "The tier of the buyers when it closes comes back as points: {reached} now. {}",
                    NextTier::line(next)
                );
            }
        } else {
            let _ = writeln!(s, "Seats: {} of {} bought", self.bought, self.head_count);
        }
        if !self.discount {
            let _ = writeln!(s, "{NO_DISCOUNT}");
        } else if self.open_count.is_none() {
            let _ = writeln!(
                s,
                "When the group fills: {} back as points (tiers: {}).",
                self.when_full, self.tiers
            );
        }
        if self.no_expiry {
            let _ = writeln!(s, "{NO_EXPIRY}");
        } else if let Some((until, left)) = self.open {
            let _ = writeln!(s, "Open until {} ({} left).", when(until), duration(left));
        }
        let _ = write!(s, "Group page: {}", esc(&self.page_url));
        s
    }
}

/// The purchase prompt of claim 11: who invited the member, then the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub organiser: String,
    pub card: GroupCard,
}

impl Prompt {
    /// Telegram HTML.
    pub fn html(&self) -> String {
        format!(
            "{} invited you to buy together.\n\n{}",
            esc(&self.organiser),
            self.card.html()
        )
    }
}

/// The greeting above the card when someone arrives through a deep link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub first_name: String,
    /// How they were invited, when they came through their own invitation.
    pub invited_as: Option<MemberRef>,
}

impl Welcome {
    /// Telegram HTML: the greeting, then the card (already HTML).
    pub fn html(&self, card_html: &str) -> String {
        let name = esc(&self.first_name);
        let greeting = match &self.invited_as {
            None => format!("Welcome, {name}!"),
            Some(MemberRef::Email(email)) => format!(
                "Welcome, {name}! You were invited by email as {}.",
                esc(email.as_str())
            ),
            Some(other) => format!(
                "Welcome, {name}! You were invited as {}.",
                esc(&other.to_string())
            ),
        };
        format!("{greeting}\n\n{card_html}")
    }
}

/// The organiser's confirmation that `/newgroup` opened the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCreated {
    pub product: String,
    pub head_count: HeadCount,
    pub price: Amount,
    pub key: GroupKey,
    pub until: Expiry,
    /// What the group gets if it does not fill.
    pub policy: Policy,
    /// False for a product sold without a group discount (¶0146).
    pub discount: bool,
    /// An open head count (¶0144): `head_count` is then the most it can take.
    pub open_count: bool,
    pub page_url: String,
    pub invite_link: String,
    pub tiers: String,
    /// Members prompted or emailed now.
    pub reached: Vec<String>,
    /// Members who will be prompted when they first message the bot.
    pub waiting: Vec<String>,
    /// Email members not mailed: on the suppression list, or over the organiser's limits
    /// (per group, per day).
    pub refused: Vec<String>,
    pub over_limit: Vec<String>,
    pub limits: (u32, u32),
}

/// Listed members per section; the rest are counted, so the confirmation stays within
/// Telegram's 4,096 characters however many members were named.
const LISTED: usize = 30;

fn bullets(s: &mut String, names: &[String]) {
    for n in names.iter().take(LISTED) {
        bullet(s, &esc(&short(n)));
    }
    if names.len() > LISTED {
        let _ = writeln!(s, "… and {} more", names.len() - LISTED);
    }
}

impl GroupCreated {
    /// Telegram HTML.
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "<b>Your group purchase is open.</b>");
        self.what(&mut s);
        let _ = writeln!(s, "Key: <code>{}</code>", self.key);
        self.until_line(&mut s);
        let _ = writeln!(s, "Group page: {}", esc(&self.page_url));
        let _ = writeln!(s, "Invitation link: {}", esc(&self.invite_link));
        self.discount_lines(&mut s);
        self.members(&mut s);
        let open = self.open_seats();
        if self.open_count {
            let _ = writeln!(s, "\nAnyone with the key or link may join.");
        } else if open > 0 {
            let _ = writeln!(
                s,
                "\n{open} seat(s) are open to anyone with the key or link."
            );
        }
        s.trim_end().to_string()
    }

    /// The product, the price and how many.
    fn what(&self, s: &mut String) {
        if self.open_count {
            let _ = writeln!(
                s,
                "{} at {} each, for as many buyers as join before it closes (open head count, at most {}).",
                esc(&self.product),
                self.price,
                self.head_count
            );
        } else {
            let _ = writeln!(
                s,
                "{} × {} at {} each.",
                self.head_count,
                esc(&self.product),
                self.price
            );
        }
    }

    /// Until when it is open, or how it ends without an expiry.
    fn until_line(&self, s: &mut String) {
        match self.until {
            Expiry::At(until) => {
                let _ = writeln!(s, "Open until {}.", when(until));
            }
            Expiry::Never => {
                let _ = writeln!(
                    s,
                    "No expiry: it settles when every seat is bought, or when you send <code>/close {}</code>.",
                    self.key
                );
            }
        }
    }

    /// The tiers and the policy, or that there is no discount.
    fn discount_lines(&self, s: &mut String) {
        if !self.discount {
            let _ = writeln!(s, "{NO_DISCOUNT}");
            return;
        }
        let _ = writeln!(s, "Discount tiers: {}.", self.tiers);
        if self.open_count {
            let _ = writeln!(
                s,
                "When it closes, every buyer gets the tier of the number who bought."
            );
        } else {
            let _ = writeln!(
                s,
                "Policy: {}.",
                super::error_text::policy_words(self.policy)
            );
        }
    }

    /// Seats no named member was reached or is waited for.
    pub fn open_seats(&self) -> usize {
        (self.head_count.get() as usize).saturating_sub(self.reached.len() + self.waiting.len())
    }

    fn members(&self, s: &mut String) {
        let lists = MemberLists {
            reached: &self.reached,
            waiting: &self.waiting,
            refused: &self.refused,
            over_limit: &self.over_limit,
            limits: self.limits,
        };
        lists.write(s);
    }
}

/// What became of the members an organiser named, as `/newgroup` and `/invite` list it.
struct MemberLists<'a> {
    reached: &'a [String],
    waiting: &'a [String],
    refused: &'a [String],
    over_limit: &'a [String],
    limits: (u32, u32),
}

impl MemberLists<'_> {
    fn write(&self, s: &mut String) {
        if !self.reached.is_empty() {
            let _ = writeln!(s, "\nInvited now:");
            bullets(s, self.reached);
        }
        if !self.waiting.is_empty() {
            let _ = writeln!(
                s,
                "\nWill be asked as soon as they message me (bots cannot start chats) — send them the invitation link:"
            );
            bullets(s, self.waiting);
        }
        if !self.refused.is_empty() {
            let _ = writeln!(s, "{}", not_mailed_refused());
            bullets(s, self.refused);
        }
        if !self.over_limit.is_empty() {
            let _ = writeln!(s, "{}", not_mailed_over_limit(self.limits.0, self.limits.1));
            bullets(s, self.over_limit);
        }
    }
}

/// The organiser's answer to `/invite KEY MEMBER…`: what became of each new member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersInvited {
    pub key: GroupKey,
    pub reached: Vec<String>,
    pub waiting: Vec<String>,
    pub refused: Vec<String>,
    pub over_limit: Vec<String>,
    pub limits: (u32, u32),
    /// Seats still neither bought nor kept for an invited member.
    pub open_seats: u32,
    pub invite_link: String,
}

impl MembersInvited {
    /// Telegram HTML.
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<b>More members for group <code>{}</code>.</b>",
            self.key
        );
        MemberLists {
            reached: &self.reached,
            waiting: &self.waiting,
            refused: &self.refused,
            over_limit: &self.over_limit,
            limits: self.limits,
        }
        .write(&mut s);
        let _ = writeln!(s, "\nInvitation link: {}", esc(&self.invite_link));
        if self.open_seats > 0 {
            let _ = writeln!(
                s,
                "{} seat(s) are open to anyone with the key or link.",
                self.open_seats
            );
        }
        s.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money};

    fn created() -> Option<GroupCreated> {
        Some(GroupCreated {
            product: "Camera <X>".into(),
            head_count: HeadCount::new(3, 10).ok()?,
            price: Amount {
                money: Money::from_minor(34_800).ok()?,
                currency: Currency::parse("JPY").ok()?,
            },
            key: GroupKey::generate().ok()?,
            until: Expiry::At(0),
            policy: Policy::AllOrNothing,
            discount: true,
            open_count: false,
            page_url: "https://example.com/g/K".into(),
            invite_link: "https://t.me/bot?start=K".into(),
            tiers: "2 → 3%".into(),
            reached: vec!["@alice".into()],
            waiting: vec![],
            refused: vec![],
            over_limit: vec![],
            limits: (20, 50),
        })
    }

    #[test]
    fn the_confirmation_escapes_the_product_and_counts_open_seats() {
        let c = created().expect("a valid confirmation");
        assert_eq!(c.open_seats(), 2);
        let html = c.html();
        assert!(
            html.contains("3 × Camera &lt;X&gt; at 34,800 JPY each."),
            "{html}"
        );
        assert!(html.contains("2 seat(s) are open"), "{html}");
        assert!(html.contains("Invited now:\n• @alice"), "{html}");
        assert!(
            html.contains("Policy: all or nothing, no discount unless the group fills."),
            "{html}"
        );
    }

    #[test]
    fn a_confirmation_says_no_expiry_and_no_discount_plainly() {
        let mut c = created().expect("a valid confirmation");
        c.until = Expiry::Never;
        c.discount = false;
        let html = c.html();
        assert!(
            html.contains("No expiry: it settles when every seat is bought"),
            "{html}"
        );
        assert!(html.contains(NO_DISCOUNT), "{html}");
        assert!(!html.contains("Discount tiers"), "{html}");
    }
}
