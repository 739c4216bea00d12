//! Group keys: the unguessable identity of one group purchase (claims 1, 3, 12; ¶0042).
//!
//! A key is 18 characters from a 32-character alphabet with no look-alikes (no 0/O, 1/I),
//! 5 bits each: 90 bits from the operating system's random source, well over the 80 the
//! patent asks for. Keys are upper-case, and parsing forgives lower case, spaces and dashes,
//! so a key read aloud or typed on a phone still works.

use rand::TryRng;
use std::fmt;

/// 32 symbols: digits 2–9 and letters without I and O.
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Symbols in a group key: 90 random bits.
pub const KEY_LEN: usize = 18;
/// Symbols in an invitation code: 50 random bits.
pub const INVITE_LEN: usize = 10;

/// The unguessable key that names a group: [`KEY_LEN`] symbols of [`ALPHABET`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupKey(String);

/// Why a key or code could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a group key is {KEY_LEN} letters and digits")]
    Malformed,
    #[error("the operating system's random source failed")]
    Entropy,
}

fn random_symbols(len: usize) -> Result<String, KeyError> {
    // 5 bits per symbol; 32 divides 256, so taking the low 5 bits of a byte is uniform.
    let mut bytes = vec![0u8; len];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| KeyError::Entropy)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 0x1f)]))
        .collect())
}

fn normalise(raw: &str, len: usize) -> Result<String, KeyError> {
    let s: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '_'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if s.len() == len && s.bytes().all(|b| ALPHABET.contains(&b)) {
        Ok(s)
    } else {
        Err(KeyError::Malformed)
    }
}

/// A random token of `len` symbols of [`ALPHABET`] (5 bits each), e.g. for receipt links.
pub fn random_token(len: usize) -> Result<String, KeyError> {
    random_symbols(len)
}

impl GroupKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        random_symbols(KEY_LEN).map(Self)
    }

    /// Reads a typed key: any case, with or without `-`, spaces and `_`.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        normalise(raw, KEY_LEN).map(Self)
    }

    /// The key in canonical form: upper case, no separators.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A per-invitee code carried in an email invitation's deep link, so the bot recognises the
/// invited person when they arrive from their mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InviteCode(String);

impl InviteCode {
    /// A fresh code from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        random_symbols(INVITE_LEN).map(Self)
    }

    /// Reads a typed code: any case, with or without `-`, spaces and `_`.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        normalise(raw, INVITE_LEN).map(Self)
    }

    /// The code in canonical form: upper case, no separators.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a `/start` payload (a `t.me/<bot>?start=…` deep link) points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPayload {
    Group(GroupKey),
    Invitation(GroupKey, InviteCode),
}

impl StartPayload {
    /// Payloads are `KEY` or `KEY-INVITE`: only characters Telegram allows (`A-Z0-9-`), ≤ 64.
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        match raw.trim().split_once('-') {
            Some((key, invite)) => Ok(Self::Invitation(
                GroupKey::parse(key)?,
                InviteCode::parse(invite)?,
            )),
            None => Ok(Self::Group(GroupKey::parse(raw)?)),
        }
    }

    /// The payload text: the group key, or `KEY-CODE` for an invitation.
    pub fn encode(&self) -> String {
        match self {
            Self::Group(k) => k.0.clone(),
            Self::Invitation(k, i) => format!("{}-{}", k.0, i.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_have_enough_entropy_and_a_safe_alphabet() {
        // 5 bits a symbol.
        const { assert!(KEY_LEN * 5 >= 80) };
        for look_alike in [b'0', b'O', b'1', b'I'] {
            assert!(!ALPHABET.contains(&look_alike));
        }
        let unique: HashSet<u8> = ALPHABET.iter().copied().collect();
        assert_eq!(unique.len(), 32);
    }

    #[test]
    fn generated_keys_are_unique_and_parse_back() {
        let keys: HashSet<String> = (0..10_000)
            .map(|_| GroupKey::generate().expect("OS RNG works").0)
            .collect();
        assert_eq!(keys.len(), 10_000);
        for k in keys.iter().take(50) {
            assert_eq!(
                GroupKey::parse(&k.to_lowercase()).expect("parses").as_str(),
                k
            );
        }
    }

    #[test]
    fn every_symbol_is_used() {
        let mut seen = HashSet::new();
        for _ in 0..200 {
            seen.extend(GroupKey::generate().expect("OS RNG works").0.bytes());
        }
        assert_eq!(seen.len(), 32);
    }

    #[test]
    fn parse_forgives_case_spaces_and_dashes_but_not_look_alikes() {
        let k = GroupKey::generate().expect("OS RNG works");
        let spaced = format!("{} {}", &k.0[..9], &k.0[9..]).to_lowercase();
        assert_eq!(GroupKey::parse(&spaced), Ok(k.clone()));
        assert_eq!(
            GroupKey::parse("0OIL23456789ABCDEF"),
            Err(KeyError::Malformed)
        );
        assert_eq!(GroupKey::parse("ABC"), Err(KeyError::Malformed));
    }

    #[test]
    fn deep_link_payloads_fit_telegram_rules() {
        let k = GroupKey::generate().expect("OS RNG works");
        let i = InviteCode::generate().expect("OS RNG works");
        let p = StartPayload::Invitation(k.clone(), i.clone());
        let encoded = p.encode();
        assert!(encoded.len() <= 64);
        assert!(
            encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(StartPayload::parse(&encoded), Ok(p));
        assert_eq!(StartPayload::parse(k.as_str()), Ok(StartPayload::Group(k)));
        assert!(StartPayload::parse("hello").is_err());
    }
}
