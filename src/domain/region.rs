//! Shipping regions and the region bonus (claim 8, ¶0058): buyers in one group who ship to
//! the same region within the same period save the merchant a shipment, and get part of it back.

use super::money::Money;
use super::tiers::Rate;
use std::fmt;

/// `COUNTRY-STATE` (e.g. `JP-TOKYO`), or `COUNTRY-` plus the first three characters of the
/// post code when the address has no state. Upper-case ASCII letters and digits only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

impl RegionCode {
    /// Derives the region from a shipping address; `None` without a usable country code.
    pub fn from_address(country_code: &str, state: &str, post_code: &str) -> Option<Self> {
        let country: String = clean(country_code);
        if country.len() != 2 {
            return None;
        }
        let state = clean(state);
        let area: String = if state.is_empty() {
            clean(post_code).chars().take(3).collect()
        } else {
            state
        };
        // Without a state or post code there is no region to share.
        (!area.is_empty()).then(|| Self(format!("{country}-{area}")))
    }

    /// Rebuilds a stored code.
    pub fn from_stored(s: &str) -> Self {
        Self(s.to_string())
    }

    /// The code, e.g. `JP-TOKYO`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Letters and digits of any script, upper-cased (`東京都` stays a region of its own).
fn clean(s: &str) -> String {
    // Filtered after upper-casing too: some letters upper-case to a letter plus combining
    // marks (ΐ → Ϊ́), which are not letters (found by src/fuzz.rs).
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The bonus each qualifying buyer gets: at least `min_buyers` of the group ship to one
/// region, with purchases no further apart than `window_secs` (0: the whole group period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionBonus {
    pub amount: Money,
    pub min_buyers: u32,
    pub window_secs: i64,
}

impl SharedRegion for RegionBonus {
    fn min_buyers(&self) -> u32 {
        self.min_buyers
    }
    fn window_secs(&self) -> i64 {
        self.window_secs
    }
}

/// A higher rate for buyers who share a region within a window (¶0059): `extra` on top of
/// the group's tier, for each buyer with at least `min_buyers` of the group (themselves
/// included) shipping to their region no further apart than `window_secs` (0: the whole
/// group period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionRate {
    pub extra: Rate,
    pub min_buyers: u32,
    pub window_secs: i64,
}

impl SharedRegion for RegionRate {
    fn min_buyers(&self) -> u32 {
        self.min_buyers
    }
    fn window_secs(&self) -> i64 {
        self.window_secs
    }
}

/// What the region bonus and the region rate share: who counts as shipping to one region
/// together — at least `min_buyers` (2 at least) of the group, themselves included, no
/// further apart than `window_secs` (0: any time).
pub trait SharedRegion {
    fn min_buyers(&self) -> u32;
    fn window_secs(&self) -> i64;

    /// Whether a buyer qualifies, given every purchase of the group as (region, time).
    fn qualifies(
        &self,
        own: (&RegionCode, i64),
        all: impl Iterator<Item = (Option<RegionCode>, i64)>,
    ) -> bool {
        let (region, at) = own;
        let window = self.window_secs();
        let near = all
            .filter(|(r, t)| {
                r.as_ref() == Some(region) && (window == 0 || (t - at).abs() <= window)
            })
            .count();
        u32::try_from(near).unwrap_or(u32::MAX) >= self.min_buyers().max(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_from_address() {
        assert_eq!(
            RegionCode::from_address("jp", "Tokyo", "100-0001").map(|r| r.0),
            Some("JP-TOKYO".into())
        );
        assert_eq!(
            RegionCode::from_address("GB", "", "sw1a 1aa").map(|r| r.0),
            Some("GB-SW1".into())
        );
        assert_eq!(RegionCode::from_address("", "Tokyo", "1"), None);
        assert_eq!(
            RegionCode::from_address("JP", "東京都", "").map(|r| r.0),
            Some("JP-東京都".into())
        );
        assert_eq!(RegionCode::from_address("JP", "", ""), None);
    }

    #[test]
    fn bonus_needs_company_in_the_window() {
        let bonus = RegionBonus {
            amount: Money::from_minor(500).expect("positive"),
            min_buyers: 2,
            window_secs: 3_600,
        };
        let tokyo = RegionCode::from_stored("JP-TOKYO");
        let osaka = RegionCode::from_stored("JP-OSAKA");
        let all = vec![
            (Some(tokyo.clone()), 0),
            (Some(tokyo.clone()), 100),
            (Some(osaka.clone()), 50),
            (None, 10),
        ];
        assert!(bonus.qualifies((&tokyo, 0), all.clone().into_iter()));
        assert!(!bonus.qualifies((&osaka, 50), all.clone().into_iter()));
        let far = vec![(Some(tokyo.clone()), 0), (Some(tokyo.clone()), 7_200)];
        assert!(!bonus.qualifies((&tokyo, 0), far.clone().into_iter()));
        let whole_period = RegionBonus {
            window_secs: 0,
            ..bonus
        };
        assert!(whole_period.qualifies((&tokyo, 0), far.into_iter()));
    }
}
