//! Buying circles (claim 13, ¶0043–0046): a set of people who bought together — the same
//! people across groups, however each was invited. A circle is known by its members alone.

use super::UserId;
use std::fmt;

/// The members of a circle, as the store keys it: their Telegram ids, sorted and without
/// repeats, joined by commas. Two or more people: one buyer alone is no circle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CircleKey {
    members: Vec<UserId>,
}

impl CircleKey {
    /// The circle of these buyers; None for fewer than two different people.
    pub fn of(buyers: impl IntoIterator<Item = UserId>) -> Option<Self> {
        let mut members: Vec<UserId> = buyers.into_iter().collect();
        members.sort_unstable_by_key(|u| u.get());
        members.dedup();
        (members.len() >= 2).then_some(Self { members })
    }

    pub fn members(&self) -> &[UserId] {
        &self.members
    }

    pub fn size(&self) -> usize {
        self.members.len()
    }
}

impl fmt::Display for CircleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", m.get())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_people_make_the_same_circle_in_any_order() {
        let ids = |v: &[i64]| v.iter().map(|&i| UserId::new(i)).collect::<Vec<_>>();
        let a = CircleKey::of(ids(&[30, 10, 20])).expect("three people");
        let b = CircleKey::of(ids(&[20, 30, 10, 10])).expect("three people");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "10,20,30");
        assert_eq!(a.size(), 3);
        assert_eq!(CircleKey::of(ids(&[5, 5])), None);
        assert_eq!(CircleKey::of(ids(&[])), None);
    }
}
