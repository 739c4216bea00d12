//! Email addresses as people type them in a chat: checked once, stored lower-case.

use std::fmt;

/// A plain `local@domain` address: no display name, no spaces, no control characters
/// (so nothing can reach an SMTP header unescaped), at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

/// Why an email address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("an email address looks like name@example.com")]
    Malformed,
}

impl EmailAddress {
    /// Trims, checks and lower-cases an address: at most 254 characters, a plausible name@domain.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = raw.trim();
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError::Malformed);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::Malformed)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(Self(s.to_lowercase()))
        } else {
            Err(EmailError::Malformed)
        }
    }

    /// The address, trimmed and in lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a word someone typed is meant as an email address (it has an `@` not at the start).
    pub fn looks_like(raw: &str) -> bool {
        raw.find('@').is_some_and(|i| i > 0)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        assert_eq!(
            EmailAddress::parse(" Carol@Example.com ")
                .expect("valid")
                .as_str(),
            "carol@example.com"
        );
        assert!(EmailAddress::parse("a.b+tag@mail.example.co.jp").is_ok());
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "carol",
            "carol@",
            "@example.com",
            "carol@example",
            "carol@@example.com",
            "ca rol@example.com",
            "carol@example.com\r\nBcc: x@y.z",
            "carol..x@example.com",
            "carol@-example.com",
            "\"a b\"@example.com",
        ] {
            assert!(
                EmailAddress::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
