//! What organisers and members hear about a group's organiser's actions: `/cancel`,
//! `/close`, `/extend`, `/remove`, each purchase, and `/export`'s file.

use super::{esc, when};
use crate::domain::GroupKey;

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

/// `/close`: the organiser's answer once the group is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedNow {
    pub key: GroupKey,
    pub buyers: u32,
}

impl ClosedNow {
    pub fn html(&self) -> String {
        format!(
            "Group <code>{}</code> is closed and settled now with its {} buyer(s), under its policy. Each buyer is told what they get back.",
            self.key, self.buyers
        )
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
    /// An open head count (¶0144): buyers are counted, not seats.
    pub open_count: bool,
    /// False for a product sold without a group discount (¶0146): no tier to speak of.
    pub discount: bool,
}

impl Bought {
    /// Telegram HTML.
    pub fn html(&self) -> String {
        let p = &self.progress;
        let buyer = esc(&super::short(&self.buyer));
        let count = super::of_seats(p.bought, p.head_count, self.open_count);
        if !self.discount {
            return format!(
                "{buyer} bought — {count}. (group <code>{}</code>)",
                self.key
            );
        }
        let next = match p.one_more {
            Some(rate) => format!("one more → {rate}"),
            None => "the group is full".into(),
        };
        format!(
            "{buyer} bought — {count}, {} reached; {next}. (group <code>{}</code>)",
            p.reached, self.key
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn bought(open_count: bool, discount: bool) -> Option<Bought> {
        let tiers = crate::config::default_tiers();
        Some(Bought {
            key: GroupKey::generate().ok()?,
            buyer: "Alice".into(),
            progress: tiers.progress(2, 3),
            open_count,
            discount,
        })
    }

    #[test]
    fn the_purchase_notice_counts_seats_or_buyers_and_names_no_tier_without_discount() {
        let seats = bought(false, true).expect("a notice").html();
        assert!(
            seats.starts_with("Alice bought — 2 of 3, 3% reached; one more → 5%."),
            "{seats}"
        );
        let open = bought(true, true).expect("a notice").html();
        assert!(open.starts_with("Alice bought — 2, 3% reached"), "{open}");
        let plain = bought(false, false).expect("a notice").html();
        assert!(
            plain.starts_with("Alice bought — 2 of 3. (group"),
            "{plain}"
        );
        assert!(!plain.contains('%'), "{plain}");
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
