//! The discount tier table: how much back for how many buyers (e.g. 2→3 %, 3→5 %, 4→10 %).

use std::fmt;

/// A discount rate in basis points (1/100 of a percent), 0–10 000. Integers only: a rate of
/// 2.5 % is 250.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Rate(u32);

impl Rate {
    /// No discount.
    pub const ZERO: Rate = Rate(0);

    /// A rate of `bp` hundredths of a percent; `None` above 10 000 (100 %).
    pub fn from_basis_points(bp: u32) -> Option<Self> {
        (bp <= 10_000).then_some(Self(bp))
    }

    /// The rate in hundredths of a percent (10 000 = 100 %).
    pub fn basis_points(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}%"),
            f10 if f10 % 10 == 0 => write!(f, "{whole}.{}%", f10 / 10),
            _ => write!(f, "{whole}.{frac:02}%"),
        }
    }
}

/// The rate a group earns once it has `members` buyers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    pub members: u32,
    pub rate: Rate,
}

/// Tiers sorted by head count, rates never falling as the count grows: a bigger group can
/// never get a smaller rate, by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierTable(Vec<Tier>);

/// Why a tier table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TierError {
    #[error("the tier table is empty")]
    Empty,
    #[error("tier for {0} members appears twice")]
    Duplicate(u32),
    #[error("tier for {bigger} members has a smaller rate than the tier for {smaller}")]
    Falling { smaller: u32, bigger: u32 },
    #[error("a tier needs at least 1 member")]
    ZeroMembers,
}

impl TierTable {
    /// Sorts the tiers by head count; refuses none, duplicates, zero members or a falling rate.
    pub fn new(mut tiers: Vec<Tier>) -> Result<Self, TierError> {
        if tiers.is_empty() {
            return Err(TierError::Empty);
        }
        tiers.sort_by_key(|t| t.members);
        if tiers[0].members == 0 {
            return Err(TierError::ZeroMembers);
        }
        for pair in tiers.windows(2) {
            if pair[0].members == pair[1].members {
                return Err(TierError::Duplicate(pair[0].members));
            }
            if pair[1].rate < pair[0].rate {
                return Err(TierError::Falling {
                    smaller: pair[0].members,
                    bigger: pair[1].members,
                });
            }
        }
        Ok(Self(tiers))
    }

    /// The rate of the largest tier whose head count the group has reached; 0 below the first.
    pub fn rate_for(&self, buyers: u32) -> Rate {
        self.0
            .iter()
            .take_while(|t| t.members <= buyers)
            .last()
            .map_or(Rate::ZERO, |t| t.rate)
    }

    /// The tiers, smallest head count first.
    pub fn tiers(&self) -> &[Tier] {
        &self.0
    }

    /// The first tier with a higher rate than `buyers` reach, and how many more buyers reach
    /// it; `None` at the top (for an open head count, ¶0144).
    pub fn next_after(&self, buyers: u32) -> Option<(Tier, u32)> {
        let now = self.rate_for(buyers);
        self.0
            .iter()
            .find(|t| t.members > buyers && t.rate > now)
            .map(|t| (*t, t.members - buyers))
    }

    /// Where a group of `head_count` stands once `bought` have bought: the rate reached, and
    /// what one more purchase would reach (none when the group is full).
    pub fn progress(&self, bought: u32, head_count: u32) -> Progress {
        let reached = self.rate_for(bought);
        Progress {
            bought,
            head_count,
            reached,
            one_more: (bought < head_count).then(|| self.rate_for(bought.saturating_add(1))),
            new_tier: bought > 0 && reached > self.rate_for(bought - 1),
        }
    }
}

/// Groups up to this size tell their organiser of every purchase; larger ones only of a
/// purchase that reaches a new tier or fills the group, so a crowd buying does not bury the
/// organiser's chat (Telegram delivers about one message a second to it).
pub const TELL_EVERY_PURCHASE_UP_TO: u32 = 20;

/// A group's progress after a purchase, for the organiser's notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub bought: u32,
    pub head_count: u32,
    pub reached: Rate,
    /// The rate one more purchase reaches; none when every seat is bought.
    pub one_more: Option<Rate>,
    /// This purchase reached a higher rate than the one before it.
    pub new_tier: bool,
}

impl Progress {
    /// Whether the organiser hears of this purchase (see [`TELL_EVERY_PURCHASE_UP_TO`]).
    pub fn worth_telling(&self) -> bool {
        self.head_count <= TELL_EVERY_PURCHASE_UP_TO || self.new_tier || self.one_more.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tier(members: u32, bp: u32) -> Tier {
        Tier {
            members,
            rate: Rate::from_basis_points(bp).expect("in range"),
        }
    }

    pub(crate) fn patent_table() -> TierTable {
        TierTable::new(vec![tier(1, 0), tier(2, 300), tier(3, 500), tier(4, 1_000)]).expect("valid")
    }

    #[test]
    fn progress_names_the_rate_reached_and_the_next_one() {
        let t = patent_table();
        let p = t.progress(2, 3);
        assert_eq!(
            (p.reached, p.one_more),
            (tier(2, 300).rate, Some(tier(3, 500).rate))
        );
        assert_eq!(t.progress(3, 3).one_more, None);
        assert_eq!(t.progress(0, 2).reached, Rate::ZERO);
        // A big group tells its organiser of new tiers and of the last seat only.
        assert!(t.progress(3, 50).worth_telling() && t.progress(50, 50).worth_telling());
        assert!(!t.progress(7, 50).worth_telling() && t.progress(7, 20).worth_telling());
    }

    #[test]
    fn patent_figures() {
        let t = patent_table();
        assert_eq!(t.rate_for(0), Rate::ZERO);
        assert_eq!(t.rate_for(1), Rate::ZERO);
        assert_eq!(t.rate_for(2).to_string(), "3%");
        assert_eq!(t.rate_for(3).to_string(), "5%");
        assert_eq!(t.rate_for(4).to_string(), "10%");
        assert_eq!(t.rate_for(40).to_string(), "10%");
        assert_eq!(
            Rate::from_basis_points(250).map(|r| r.to_string()),
            Some("2.5%".into())
        );
        assert_eq!(
            Rate::from_basis_points(1_234).map(|r| r.to_string()),
            Some("12.34%".into())
        );
        assert_eq!(Rate::from_basis_points(10_001), None);
    }

    #[test]
    fn the_next_tier_and_how_many_more_reach_it() {
        let t = patent_table();
        let next = |b| t.next_after(b).map(|(tier, more)| (tier.members, more));
        assert_eq!(next(0), Some((2, 2)));
        assert_eq!(next(2), Some((3, 1)));
        assert_eq!(next(3), Some((4, 1)));
        assert_eq!(next(4), None);
        assert_eq!(next(40), None);
    }

    #[test]
    fn invalid_tables_are_refused() {
        assert_eq!(TierTable::new(vec![]), Err(TierError::Empty));
        assert_eq!(
            TierTable::new(vec![tier(2, 1), tier(2, 2)]),
            Err(TierError::Duplicate(2))
        );
        assert_eq!(
            TierTable::new(vec![tier(2, 500), tier(3, 300)]),
            Err(TierError::Falling {
                smaller: 2,
                bigger: 3
            })
        );
        assert_eq!(
            TierTable::new(vec![tier(0, 1)]),
            Err(TierError::ZeroMembers)
        );
    }

    proptest! {
        #[test]
        fn a_bigger_group_never_gets_a_smaller_rate(
            raw in proptest::collection::vec((1u32..200, 0u32..=10_000), 1..12),
            a in 0u32..300, b in 0u32..300,
        ) {
            // Any accepted table is monotone; build one by sorting the random rates.
            let mut rates: Vec<u32> = raw.iter().map(|r| r.1).collect();
            rates.sort_unstable();
            let mut members: Vec<u32> = raw.iter().map(|r| r.0).collect();
            members.sort_unstable();
            members.dedup();
            let tiers = members.iter().zip(rates).map(|(&m, bp)| tier(m, bp)).collect();
            let table = TierTable::new(tiers).expect("sorted table is valid");
            let (small, big) = (a.min(b), a.max(b));
            prop_assert!(table.rate_for(small) <= table.rate_for(big));
        }
    }
}
