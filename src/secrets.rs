//! The server secret and the keyed hashes made with it.
//!
//! Tokens that open something (receipt tokens, invite codes) are stored as
//! HMAC-SHA-256(server secret, purpose, token) and compared in constant time, so a copy of
//! the database alone opens nothing. The same key makes the unsubscribe token of an email
//! address, so the suppression list holds no addresses.
//!
//! The secret comes from `GROUPBUY_SERVER_SECRET` (`server_secret`, at least 32 characters),
//! else from the file `groupbuy.secret` in `data_dir`, written with 256 random bits on first
//! start. Several instances on one database must share it.

use crate::config::{Config, Secret};
use anyhow::Context;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::PathBuf;

/// The file the generated secret is kept in, inside `data_dir`.
pub const FILE_NAME: &str = "groupbuy.secret";

/// Why a keyed hash was made: the same token hashed for two purposes gives two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A receipt token, as stored.
    Receipt,
    /// The receipt token of a charge, as sent (derived, so it can be shown again).
    ReceiptLink,
    Invite,
    Unsubscribe,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Receipt => b"receipt",
            Purpose::ReceiptLink => b"receipt-link",
            Purpose::Invite => b"invite",
            Purpose::Unsubscribe => b"unsubscribe",
        }
    }
}

/// The key for keyed hashes. Never printed.
#[derive(Clone)]
pub struct Keyed {
    key: Vec<u8>,
}

impl fmt::Debug for Keyed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyed(***)")
    }
}

impl Keyed {
    /// Keyed hashes made with `key`.
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// The configured secret; without one (a library use that skipped [`resolve`]) a random
    /// key for this process, said once in the log: its hashes do not outlive a restart.
    pub fn from_config(config: &Config) -> Self {
        match &config.server_secret {
            Some(s) => Self::new(s.expose().as_bytes()),
            None => {
                tracing::warn!("no server secret configured: using a random one for this process");
                let random = crate::domain::group_key::random_token(43)
                    .unwrap_or_else(|_| format!("{:?}", std::time::SystemTime::now()));
                Self::new(random.as_bytes())
            }
        }
    }

    fn mac(&self, purpose: Purpose, value: &str) -> Hmac<Sha256> {
        // A key of any length is valid for HMAC.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose.label());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac
    }

    /// HMAC-SHA-256 of `value` for `purpose`, as 64 lowercase hex digits.
    pub fn hash(&self, purpose: Purpose, value: &str) -> String {
        hex(&self.mac(purpose, value).finalize().into_bytes())
    }

    /// The receipt token of a charge: 24 letters and digits (over 140 bits) only the server
    /// can make, so a receipt link can be written again (a discount notice) without keeping
    /// the token.
    pub fn receipt_token(&self, charge_id: &str) -> String {
        const SYMBOLS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let bytes = self
            .mac(Purpose::ReceiptLink, charge_id)
            .finalize()
            .into_bytes();
        bytes
            .iter()
            .take(24)
            .map(|b| char::from(SYMBOLS[usize::from(*b) % SYMBOLS.len()]))
            .collect()
    }

    /// Whether `given` is the receipt token of `charge_id`, compared in constant time.
    pub fn is_receipt_token(&self, charge_id: &str, given: &str) -> bool {
        let made = self.receipt_token(charge_id);
        made.len() == given.len()
            && made
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// Whether `stored` is the hash of `value` for `purpose`, compared in constant time.
    pub fn verify(&self, purpose: Purpose, value: &str, stored: &str) -> bool {
        let Some(bytes) = unhex(stored) else {
            return false;
        };
        self.mac(purpose, value).verify_slice(&bytes).is_ok()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Fills in `server_secret` from `data_dir/groupbuy.secret` when the environment did not
/// give one, writing a new random secret there (readable by its owner only) on first start.
pub fn resolve(mut config: Config) -> anyhow::Result<Config> {
    if config.server_secret.is_some() {
        return Ok(config);
    }
    let path = PathBuf::from(&config.data_dir).join(FILE_NAME);
    let secret = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fresh = crate::domain::group_key::random_token(43)
                .map_err(|e| anyhow::anyhow!("cannot draw a server secret: {e}"))?;
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create the data directory {}", config.data_dir))?;
            write_private(&path, &fresh)
                .with_context(|| format!("cannot write the server secret to {}", path.display()))?;
            tracing::info!(file = %path.display(), "generated the server secret");
            fresh
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {}", path.display()));
        }
    };
    if secret.len() < 32 {
        anyhow::bail!(
            "the server secret in {} is shorter than 32 characters",
            path.display()
        );
    }
    config.server_secret = Some(Secret::new(secret));
    Ok(config)
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_per_purpose_and_verified() {
        let a = Keyed::new(b"first secret, long enough for this");
        let b = Keyed::new(b"second secret, long enough for it");
        let h = a.hash(Purpose::Receipt, "token");
        assert_eq!(h.len(), 64);
        assert!(a.verify(Purpose::Receipt, "token", &h));
        assert!(!a.verify(Purpose::Receipt, "tokeN", &h));
        assert!(!a.verify(Purpose::Invite, "token", &h), "purposes differ");
        assert!(!b.verify(Purpose::Receipt, "token", &h), "keys differ");
        assert!(!a.verify(Purpose::Receipt, "token", "zz"));
        assert!(!a.verify(Purpose::Receipt, "token", ""));
        assert!(!a.verify(Purpose::Receipt, "token", "é"));
        assert_eq!(format!("{a:?}"), "Keyed(***)");
        let t = a.receipt_token("charge-1");
        assert_eq!(t.len(), 24);
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(a.is_receipt_token("charge-1", &t));
        assert!(!a.is_receipt_token("charge-2", &t));
        assert!(!b.is_receipt_token("charge-1", &t));
        assert!(!a.is_receipt_token("charge-1", &t[..23]));
    }

    #[test]
    fn the_secret_is_generated_once_into_the_data_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let env: std::collections::HashMap<String, String> = [(
            "GROUPBUY_DATA_DIR".to_string(),
            dir.path().join("data").display().to_string(),
        )]
        .into();
        let config = Config::from_sources(None, &env).expect("valid");
        assert!(config.server_secret.is_none());
        let first = resolve(config.clone()).expect("generated");
        let path = dir.path().join("data").join(FILE_NAME);
        let written = std::fs::read_to_string(&path).expect("file");
        assert_eq!(
            first.server_secret.as_ref().map(|s| s.expose().to_string()),
            Some(written.trim().to_string())
        );
        assert!(written.trim().len() >= 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = resolve(config).expect("read back");
        assert_eq!(
            first.server_secret, second.server_secret,
            "the same on restart"
        );
    }
}
