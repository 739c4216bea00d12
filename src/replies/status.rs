//! `/status`: one group in detail, as a typed value rendered to Telegram HTML.

use super::messages::NO_DISCOUNT;
use super::{NextTier, bullet, duration, esc, when};
use crate::domain::{GroupKey, HeadCount, Points, Rate};
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
    /// False for a product sold without a group discount (¶0146).
    pub discount: bool,
    /// An open head count (¶0144): the next tier above the buyers so far.
    pub open_count: Option<Option<NextTier>>,
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
    /// Open, without expiry (¶0145).
    OpenNoExpiry,
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
    /// Telegram HTML.
    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<b>{}</b> — group <code>{}</code>",
            esc(&self.product),
            self.key
        );
        let _ = writeln!(s, "Organiser: {}", esc(&self.organiser));
        self.seats_and_discount(&mut s);
        self.state_line(&mut s);
        self.buyers_list(&mut s);
        s.trim_end().to_string()
    }

    /// Seats (or buyers, for an open head count) and the discount reached.
    fn seats_and_discount(&self, s: &mut String) {
        match self.open_count {
            Some(_) => {
                let _ = writeln!(s, "Buyers so far: {} (open head count)", self.bought);
            }
            None => {
                let _ = writeln!(s, "Seats: {} of {} bought", self.bought, self.head_count);
            }
        }
        if let (true, Some(next)) = (self.discount, self.open_count) {
            let _ = writeln!(
                s,
                "Discount reached so far: {}. {}",
                self.reached,
                NextTier::line(next)
            );
        } else if self.discount {
            let _ = writeln!(
                s,
                "Discount reached so far: {} (when full: {})",
                self.reached, self.when_full
            );
        } else {
            let _ = writeln!(s, "{NO_DISCOUNT}");
        }
    }

    /// Where the group is in its life.
    fn state_line(&self, s: &mut String) {
        match &self.state {
            StatusState::OpenNoExpiry => {
                let _ = writeln!(s, "{}", super::group::NO_EXPIRY);
            }
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
    }

    /// The buyers' first names, for the organiser and the buyers.
    fn buyers_list(&self, s: &mut String) {
        if let Some(buyers) = self.buyers.as_ref().filter(|b| !b.is_empty()) {
            let _ = writeln!(s, "\nBuyers:");
            // Telegram takes at most 4,096 characters: name the first ones, count the rest.
            for name in buyers.iter().take(SHOWN_BUYERS) {
                let name: String = name.chars().take(40).collect();
                bullet(s, &esc(&name));
            }
            if buyers.len() > SHOWN_BUYERS {
                let _ = writeln!(s, "… and {} more", buyers.len() - SHOWN_BUYERS);
            }
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
            discount: true,
            open_count: None,
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
    fn status_of_an_open_head_count_names_the_next_tier_and_of_a_product_without_discount_says_so()
    {
        let tier = |bp| Rate::from_basis_points(bp).expect("in range");
        let status = GroupStatus {
            product: "Camera".into(),
            key: GroupKey::generate().expect("a key"),
            organiser: "Bob".into(),
            bought: 2,
            head_count: HeadCount::new(1_000, 1_000).expect("a head count"),
            reached: tier(300),
            when_full: tier(1_000),
            discount: true,
            open_count: Some(Some(NextTier {
                members: 3,
                rate: tier(500),
                more: 1,
            })),
            state: StatusState::OpenNoExpiry,
            buyers: None,
        };
        let html = status.html();
        assert!(
            html.contains("Buyers so far: 2 (open head count)"),
            "{html}"
        );
        assert!(
            html.contains(
                "Discount reached so far: 3%. Next tier: 3 buyers → 5% back (1 more buyer)."
            ),
            "{html}"
        );
        assert!(html.contains("No expiry"), "{html}");
        assert!(!html.contains("of 1000"), "{html}");
        let top = GroupStatus {
            open_count: Some(None),
            ..status.clone()
        };
        assert!(top.html().contains("Top tier reached."));
        let rare = GroupStatus {
            discount: false,
            open_count: None,
            ..status
        };
        let html = rare.html();
        assert!(
            html.contains(NO_DISCOUNT) && !html.contains("Discount reached"),
            "{html}"
        );
    }
}
