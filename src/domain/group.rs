//! The shape of one group purchase: how many seats, what happens if it does not fill, and
//! where it is in its life.

use std::fmt;

/// N, the number of purchases that fill the group (the organiser counts if they buy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeadCount(u32);

/// Why a head count was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadCountError {
    #[error("the head count must be a whole number")]
    NotANumber,
    #[error("the head count must be between {min} and {max}")]
    OutOfRange { min: u32, max: u32 },
}

impl HeadCount {
    /// The smallest head count a group can have.
    pub const MIN: u32 = 2;

    /// Reads a typed head count between [`Self::MIN`] and `max`.
    pub fn parse(raw: &str, max: u32) -> Result<Self, HeadCountError> {
        let n: i64 = raw.trim().parse().map_err(|_| HeadCountError::NotANumber)?;
        Self::new(n, max)
    }

    /// A head count between [`Self::MIN`] and `max`, inclusive.
    pub fn new(n: i64, max: u32) -> Result<Self, HeadCountError> {
        let range = HeadCountError::OutOfRange {
            min: Self::MIN,
            max,
        };
        let n = u32::try_from(n).map_err(|_| range.clone())?;
        if (Self::MIN..=max).contains(&n) {
            Ok(Self(n))
        } else {
            Err(range)
        }
    }

    /// A head count read back from the store: the operator's maximum may have changed since
    /// the group was opened, so only the lower bound is checked.
    pub fn stored(n: i64) -> Result<Self, HeadCountError> {
        Self::new(n, u32::MAX)
    }

    /// N as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for HeadCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a group that did not fill by its expiry gets (¶0060, ¶0086).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// No discount unless every seat was bought.
    #[default]
    AllOrNothing,
    /// The tier of the number who actually bought.
    Partial,
}

impl Policy {
    /// The stored form: `all_or_nothing` or `partial`.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::AllOrNothing => "all_or_nothing",
            Policy::Partial => "partial",
        }
    }

    /// Reads the stored form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all_or_nothing" => Some(Policy::AllOrNothing),
            "partial" => Some(Policy::Partial),
            _ => None,
        }
    }

    /// The organiser's word for a policy at `/newgroup`: `all` or `partial`, in any case.
    pub fn from_word(w: &str) -> Option<Self> {
        if w.eq_ignore_ascii_case("all") {
            Some(Policy::AllOrNothing)
        } else if w.eq_ignore_ascii_case("partial") {
            Some(Policy::Partial)
        } else {
            None
        }
    }
}

/// The expiry stored for a group without one (¶0145): 9999-12-31 23:59:59 UTC. Every
/// "has it expired" comparison, in Rust and in SQL, stays false for it.
pub const NO_EXPIRY_AT: i64 = 253_402_300_799;

/// When a group stops taking purchases: at a time, or never (it settles when it fills or
/// when its organiser closes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    At(i64),
    Never,
}

impl Expiry {
    /// As stored in `expires_at`.
    pub fn stored(self) -> i64 {
        match self {
            Expiry::At(t) => t,
            Expiry::Never => NO_EXPIRY_AT,
        }
    }

    /// From a stored `expires_at`.
    pub fn from_stored(t: i64) -> Self {
        if t >= NO_EXPIRY_AT {
            Expiry::Never
        } else {
            Expiry::At(t)
        }
    }

    /// The time, when there is one.
    pub fn at(self) -> Option<i64> {
        match self {
            Expiry::At(t) => Some(t),
            Expiry::Never => None,
        }
    }
}

/// Where a group is in its life. Only `Open` groups take purchases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStatus {
    Open,
    Settled,
    Cancelled,
}

impl GroupStatus {
    /// The stored form: `open`, `settled` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Open => "open",
            GroupStatus::Settled => "settled",
            GroupStatus::Cancelled => "cancelled",
        }
    }

    /// Reads the stored form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(GroupStatus::Open),
            "settled" => Some(GroupStatus::Settled),
            "cancelled" => Some(GroupStatus::Cancelled),
            _ => None,
        }
    }
}

/// The longest a group may stay open, counted from its opening: `/newgroup`'s longest expiry
/// (365 days). `/extend` never pushes an expiry past it.
pub const MAX_LIFETIME_SECS: i64 = 365 * 86_400;

/// Why an expiry cannot be moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtendError {
    /// The new expiry would be later than [`MAX_LIFETIME_SECS`] after the opening; `latest`
    /// is the latest it may be.
    #[error("past the longest lifetime of a group")]
    PastMaximum { latest: i64 },
    /// The group has no expiry (¶0145): there is nothing to move.
    #[error("the group has no expiry")]
    NoExpiry,
}

/// The expiry of a group opened at `created_at` with `expiry`, moved `by_secs` later
/// (`/extend KEY 24h`), within [`MAX_LIFETIME_SECS`] of its opening. A group without expiry
/// has none to move.
pub fn extended_expiry(created_at: i64, expiry: Expiry, by_secs: i64) -> Result<i64, ExtendError> {
    let Expiry::At(expires_at) = expiry else {
        return Err(ExtendError::NoExpiry);
    };
    let latest = created_at.saturating_add(MAX_LIFETIME_SECS);
    match expires_at.checked_add(by_secs) {
        Some(at) if by_secs > 0 && at <= latest => Ok(at),
        _ => Err(ExtendError::PastMaximum { latest }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_moves_later_within_the_longest_lifetime() {
        assert_eq!(extended_expiry(0, Expiry::At(3_600), 86_400), Ok(90_000));
        assert_eq!(
            extended_expiry(0, Expiry::At(MAX_LIFETIME_SECS - 10), 10),
            Ok(MAX_LIFETIME_SECS)
        );
        assert_eq!(
            extended_expiry(100, Expiry::At(MAX_LIFETIME_SECS), 3_600),
            Err(ExtendError::PastMaximum {
                latest: MAX_LIFETIME_SECS + 100
            })
        );
        assert!(extended_expiry(0, Expiry::At(i64::MAX - 1), 86_400).is_err());
        assert!(extended_expiry(0, Expiry::At(3_600), 0).is_err());
        assert_eq!(
            extended_expiry(0, Expiry::Never, 86_400),
            Err(ExtendError::NoExpiry)
        );
    }

    #[test]
    fn head_count_range() {
        assert_eq!(HeadCount::parse("3", 50).map(HeadCount::get), Ok(3));
        assert_eq!(HeadCount::parse("x", 50), Err(HeadCountError::NotANumber));
        assert_eq!(
            HeadCount::parse("1", 50),
            Err(HeadCountError::OutOfRange { min: 2, max: 50 })
        );
        assert!(HeadCount::parse("51", 50).is_err());
        assert!(HeadCount::parse("-3", 50).is_err());
        assert!(HeadCount::parse("99999999999", 50).is_err());
    }

    #[test]
    fn policy_words_and_expiry() {
        assert_eq!(Policy::from_word("ALL"), Some(Policy::AllOrNothing));
        assert_eq!(Policy::from_word("partial"), Some(Policy::Partial));
        assert_eq!(Policy::from_word("some"), None);
        for e in [Expiry::At(1_795_510_800), Expiry::Never] {
            assert_eq!(Expiry::from_stored(e.stored()), e);
        }
        assert_eq!(Expiry::Never.at(), None);
    }

    #[test]
    fn names_round_trip() {
        for p in [Policy::AllOrNothing, Policy::Partial] {
            assert_eq!(Policy::parse(p.as_str()), Some(p));
        }
        for s in [
            GroupStatus::Open,
            GroupStatus::Settled,
            GroupStatus::Cancelled,
        ] {
            assert_eq!(GroupStatus::parse(s.as_str()), Some(s));
        }
    }
}
