//! How an organiser names a member: `@username`, a numeric Telegram user id, or an email.

use super::email::{EmailAddress, EmailError};
use std::fmt;

/// A member an organiser named: a Telegram username, a numeric user id or an email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberRef {
    /// A Telegram username, stored lower-case without the `@` (Telegram usernames are
    /// case-insensitive).
    Username(String),
    UserId(super::UserId),
    Email(EmailAddress),
}

/// Why a typed member was not recognised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("{0:?} is not a valid Telegram username (5–32 letters, digits or _)")]
    BadUsername(String),
    #[error("{0:?} is not a valid email address")]
    BadEmail(String),
    #[error("{0:?} is not a @username, a numeric Telegram id or an email address")]
    Unrecognised(String),
}

impl MemberRef {
    /// Reads a `@username`, a numeric Telegram id or an email address.
    pub fn parse(raw: &str) -> Result<Self, MemberError> {
        let s = raw.trim();
        if let Some(name) = s.strip_prefix('@') {
            let ok = (5..=32).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
            return if ok {
                Ok(Self::Username(name.to_ascii_lowercase()))
            } else {
                Err(MemberError::BadUsername(s.to_string()))
            };
        }
        if EmailAddress::looks_like(s) {
            return EmailAddress::parse(s)
                .map(Self::Email)
                .map_err(|EmailError::Malformed| MemberError::BadEmail(s.to_string()));
        }
        if !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && let Ok(id) = s.parse::<i64>()
            && id > 0
        {
            return Ok(Self::UserId(super::UserId::new(id)));
        }
        Err(MemberError::Unrecognised(s.to_string()))
    }

    /// The kind column of the stored row.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Username(_) => "username",
            Self::UserId(_) => "user_id",
            Self::Email(_) => "email",
        }
    }

    /// The value column of the stored row (normalised, so duplicates collide).
    pub fn value(&self) -> String {
        match self {
            Self::Username(u) => u.clone(),
            Self::UserId(id) => id.to_string(),
            Self::Email(e) => e.as_str().to_string(),
        }
    }

    /// Rebuilds a stored member from its kind (`username`, `user_id`, `email`) and value.
    pub fn from_row(kind: &str, value: &str) -> Option<Self> {
        match kind {
            "username" => Some(Self::Username(value.to_string())),
            "user_id" => value
                .parse()
                .ok()
                .map(|id| Self::UserId(super::UserId::new(id))),
            "email" => EmailAddress::parse(value).ok().map(Self::Email),
            _ => None,
        }
    }
}

impl fmt::Display for MemberRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Username(u) => write!(f, "@{u}"),
            Self::UserId(id) => write!(f, "{id}"),
            Self::Email(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            MemberRef::parse("@Alice_1"),
            Ok(MemberRef::Username("alice_1".into()))
        );
        assert_eq!(
            MemberRef::parse("1234567"),
            Ok(MemberRef::UserId(crate::domain::UserId::new(1_234_567)))
        );
        assert!(matches!(
            MemberRef::parse("carol@example.com"),
            Ok(MemberRef::Email(_))
        ));
    }

    #[test]
    fn rejects_each_kind_precisely() {
        assert!(matches!(
            MemberRef::parse("@al"),
            Err(MemberError::BadUsername(_))
        ));
        assert!(matches!(
            MemberRef::parse("@1alice"),
            Err(MemberError::BadUsername(_))
        ));
        assert!(matches!(
            MemberRef::parse("carol@example"),
            Err(MemberError::BadEmail(_))
        ));
        assert!(matches!(
            MemberRef::parse("carol"),
            Err(MemberError::Unrecognised(_))
        ));
        assert!(matches!(
            MemberRef::parse("0"),
            Err(MemberError::Unrecognised(_))
        ));
        assert!(matches!(
            MemberRef::parse("99999999999999999999"),
            Err(MemberError::Unrecognised(_))
        ));
    }

    #[test]
    fn duplicates_collide_after_normalising() {
        let a = MemberRef::parse("@Alice_1").expect("valid");
        let b = MemberRef::parse("@alice_1").expect("valid");
        assert_eq!((a.kind(), a.value()), (b.kind(), b.value()));
        let e = MemberRef::parse("Carol@Example.com").expect("valid");
        assert_eq!(MemberRef::from_row(e.kind(), &e.value()), Some(e));
    }
}
