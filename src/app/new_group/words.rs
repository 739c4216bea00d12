//! The words of `/newgroup PRODUCT N [MEMBER…] [EXPIRY] [all|partial]`, parsed without
//! touching the store.

use crate::domain::catalog::{self, ProductMatch};
use crate::domain::{HeadCount, MemberRef, Policy, Product};
use crate::replies::UserError;
use std::collections::HashSet;

/// The parsed words of a `/newgroup` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub product: String,
    pub head_count: String,
    pub members: Vec<String>,
    /// `48h`, `never` (¶0145), or anything else that looks like an expiry.
    pub expiry: Option<String>,
    /// The organiser's `all` or `partial`, anywhere after the head count.
    pub policy: Option<Policy>,
}

/// The expiry word of a group that never expires (¶0145).
pub const NEVER: &str = "never";

/// The head-count word of an open head count (¶0144).
pub const ANY: &str = "any";

/// Splits the words: the product is every word before the first whole number or `any` (the
/// head count); after it come members, optionally one expiry such as `48h` or `never`, and
/// optionally one policy word, `all` or `partial`.
pub fn parse_words(args: &str) -> Result<Request, UserError> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| {
            (w.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                && w.bytes().any(|b| b.is_ascii_digit()))
                || w.eq_ignore_ascii_case(ANY)
        })
        .ok_or(UserError::NewGroupUsage)?;
    if at == 0 {
        return Err(UserError::NewGroupUsage);
    }
    let mut members = Vec::new();
    let mut expiry = None;
    let mut policy = None;
    for w in &words[at + 1..] {
        if let Some(p) = Policy::from_word(w) {
            if policy.is_some() {
                return Err(UserError::PolicyTwice((*w).to_string()));
            }
            policy = Some(p);
        } else if w.eq_ignore_ascii_case(NEVER)
            || parse_expiry(w).is_some()
            || (expiry.is_none() && looks_like_expiry(w))
        {
            if expiry.is_some() {
                return Err(UserError::BadExpiry((*w).to_string()));
            }
            expiry = Some((*w).to_string());
        } else {
            members.push((*w).to_string());
        }
    }
    Ok(Request {
        product: words[..at].join(" "),
        head_count: words[at].to_string(),
        members,
        expiry,
        policy,
    })
}

/// What `/regroup KEY …` changes of the group it repeats, in `/newgroup`'s words: another
/// product, another head count, another expiry; anything not named stays as it was.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Overrides {
    pub product: Option<String>,
    pub head_count: Option<String>,
    pub expiry: Option<String>,
}

/// The words after `/regroup KEY`: a whole number is the head count, a number with a unit
/// the expiry, the other words the product; each at most once.
pub fn parse_overrides(words: &[&str]) -> Result<Overrides, UserError> {
    let mut out = Overrides::default();
    let mut product = Vec::new();
    for w in words {
        if w.bytes().all(|b| b.is_ascii_digit()) {
            if out.head_count.replace((*w).to_string()).is_some() {
                return Err(UserError::Usage(REGROUP_USAGE));
            }
        } else if parse_expiry(w).is_some() || looks_like_expiry(w) {
            if out.expiry.replace((*w).to_string()).is_some() {
                return Err(UserError::BadExpiry((*w).to_string()));
            }
        } else {
            product.push(*w);
        }
    }
    out.product = (!product.is_empty()).then(|| product.join(" "));
    Ok(out)
}

/// How `/regroup` is written.
pub const REGROUP_USAGE: &str = "/regroup KEY [PRODUCT] [N] [EXPIRY]";

/// Splits `48h` into `("48", 'h')`; `None` for an empty word. Safe for any Unicode input.
fn number_and_unit(w: &str) -> Option<(&str, char)> {
    let unit = w.chars().last()?;
    Some((&w[..w.len() - unit.len_utf8()], unit))
}

/// A number followed by a letter: meant as an expiry, even if not a valid one.
fn looks_like_expiry(w: &str) -> bool {
    number_and_unit(w).is_some_and(|(num, unit)| {
        !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) && unit.is_alphabetic()
    })
}

/// `30m`, `48h`, `7d` → seconds; 5 minutes to 365 days.
pub fn parse_expiry(w: &str) -> Option<i64> {
    parse_duration(w).filter(|secs| (300..=365 * 86_400).contains(secs))
}

/// `30m`, `48h`, `7d` → seconds, any number of them (`groupbuy export --since`).
pub fn parse_duration(w: &str) -> Option<i64> {
    let (num, unit) = number_and_unit(w)?;
    let n: i64 = num.parse().ok()?;
    n.checked_mul(match unit {
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    })
}

/// Parses members, refusing malformed and duplicate ones and more than `seats`.
pub fn parse_members(raw: &[String], seats: HeadCount) -> Result<Vec<MemberRef>, UserError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for w in raw {
        let m = MemberRef::parse(w).map_err(UserError::BadMember)?;
        if !seen.insert((m.kind(), m.value())) {
            return Err(UserError::DuplicateMember(m.to_string()));
        }
        out.push(m);
    }
    if out.len() > seats.get() as usize {
        return Err(UserError::TooManyMembers {
            members: out.len(),
            seats: seats.get(),
        });
    }
    Ok(out)
}

/// The one catalog product `query` names.
pub(crate) fn find_product(all: &[Product], query: &str) -> Result<Product, UserError> {
    match catalog::find(all, query) {
        ProductMatch::Found(p) => Ok(p.clone()),
        ProductMatch::Ambiguous(ps) => Err(UserError::AmbiguousProduct {
            query: query.to_string(),
            candidates: ps.iter().map(|p| p.sku.to_string()).collect(),
        }),
        ProductMatch::Unknown => Err(UserError::UnknownProduct(query.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_into_product_count_members_expiry() {
        let r = parse_words("camera 3 @alice 123456 carol@example.com 48h").expect("valid");
        assert_eq!(r.product, "camera");
        assert_eq!(r.head_count, "3");
        assert_eq!(r.members, vec!["@alice", "123456", "carol@example.com"]);
        assert_eq!(r.expiry.as_deref(), Some("48h"));
        let r = parse_words("Photo scanner 2").expect("valid");
        assert_eq!(r.product, "Photo scanner");
        assert_eq!(parse_words("camera"), Err(UserError::NewGroupUsage));
        assert_eq!(parse_words("3 @alice"), Err(UserError::NewGroupUsage));
        assert_eq!(
            parse_words("camera 3 1h 2h"),
            Err(UserError::BadExpiry("2h".into()))
        );
        assert_eq!(
            parse_words("camera 3 @a 99x").map(|r| r.expiry),
            Ok(Some("99x".into()))
        );
    }

    #[test]
    fn policy_and_never_words() {
        let r = parse_words("camera 3 @alice never PARTIAL").expect("valid");
        assert_eq!(r.members, vec!["@alice"]);
        assert_eq!(r.expiry.as_deref(), Some("never"));
        assert_eq!(r.policy, Some(Policy::Partial));
        assert_eq!(
            parse_words("camera 3 all").map(|r| r.policy),
            Ok(Some(Policy::AllOrNothing))
        );
        assert_eq!(parse_words("camera 3").map(|r| r.policy), Ok(None));
        assert_eq!(
            parse_words("camera 3 all partial"),
            Err(UserError::PolicyTwice("partial".into()))
        );
        assert_eq!(
            parse_words("camera 3 never 48h"),
            Err(UserError::BadExpiry("48h".into()))
        );
        let r = parse_words("Photo scanner ANY never partial").expect("valid");
        assert_eq!(r.product, "Photo scanner");
        assert_eq!(r.head_count, "ANY");
        assert_eq!(parse_words("any 3"), Err(UserError::NewGroupUsage));
    }

    #[test]
    fn regroup_overrides_in_newgroup_words() {
        assert_eq!(parse_overrides(&[]), Ok(Overrides::default()));
        assert_eq!(
            parse_overrides(&["Photo", "scanner", "4", "48h"]),
            Ok(Overrides {
                product: Some("Photo scanner".into()),
                head_count: Some("4".into()),
                expiry: Some("48h".into()),
            })
        );
        assert_eq!(
            parse_overrides(&["99x"]).map(|o| o.expiry),
            Ok(Some("99x".into()))
        );
        assert_eq!(
            parse_overrides(&["1h", "2h"]),
            Err(UserError::BadExpiry("2h".into()))
        );
        assert_eq!(
            parse_overrides(&["3", "4"]),
            Err(UserError::Usage(REGROUP_USAGE))
        );
    }

    #[test]
    fn expiry_bounds() {
        assert_eq!(parse_expiry("30m"), Some(1_800));
        assert_eq!(parse_expiry("48h"), Some(172_800));
        assert_eq!(parse_expiry("7d"), Some(604_800));
        assert_eq!(parse_expiry("1m"), None);
        assert_eq!(parse_expiry("366d"), None);
        assert_eq!(parse_expiry("5x"), None);
        // Multi-byte words must not split inside a character.
        assert_eq!(parse_expiry("3日"), None);
        assert_eq!(parse_expiry("café"), None);
        assert_eq!(parse_expiry(""), None);
        assert!(parse_words("camera 3 café").is_ok());
        assert_eq!(
            parse_words("camera 3 3日").map(|r| r.expiry),
            Ok(Some("3日".into()))
        );
    }

    #[test]
    fn members_are_checked() {
        let n = HeadCount::new(2, 10).expect("valid");
        let words = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(parse_members(&words(&["@alice", "123"]), n).is_ok());
        assert_eq!(
            parse_members(&words(&["@alice", "@Alice"]), n),
            Err(UserError::DuplicateMember("@alice".into()))
        );
        assert_eq!(
            parse_members(&words(&["@alice", "1", "2"]), n),
            Err(UserError::TooManyMembers {
                members: 3,
                seats: 2
            })
        );
        assert!(matches!(
            parse_members(&words(&["bob@x"]), n),
            Err(UserError::BadMember(_))
        ));
    }
}
