//! Inline keyboards as plain data, so they can wait in the outbox as JSON and be turned into
//! Telegram's `InlineKeyboardMarkup` only when sent.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// `callback_data`, at most 64 bytes.
    Callback(String),
    Url(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub text: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Keyboard {
    pub rows: Vec<Vec<Button>>,
}

impl Keyboard {
    pub fn row(mut self, buttons: Vec<Button>) -> Self {
        self.rows.push(buttons);
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

pub fn callback(text: impl Into<String>, data: impl Into<String>) -> Button {
    Button {
        text: text.into(),
        action: Action::Callback(data.into()),
    }
}

pub fn url(text: impl Into<String>, url: impl Into<String>) -> Button {
    Button {
        text: text.into(),
        action: Action::Url(url.into()),
    }
}

/// What a button press asks for. Encoded in `callback_data` (≤ 64 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Press {
    /// Show the ways to buy into a group: `b:<key>`.
    Buy { key: String },
    /// Pick another catalog product for the same group (claim 2): `o:<key>`.
    Other { key: String },
    /// Buy this product in this group: `s:<key>:<sku>`.
    Product { key: String, sku: String },
    /// Send the invoice, redeeming this many points: `p:<key>:<points>:<sku>`.
    Pay {
        key: String,
        sku: String,
        redeem: i64,
    },
    /// The organiser buys together again with the same people (`/regroup`): `r:<key>`.
    Regroup { key: String },
    /// A page of `/mygroups` (from 0): `m:<page>`.
    MyGroups { page: u32 },
}

impl Press {
    pub fn encode(&self) -> String {
        match self {
            Press::Buy { key } => format!("b:{key}"),
            Press::Other { key } => format!("o:{key}"),
            Press::Product { key, sku } => format!("s:{key}:{sku}"),
            Press::Pay { key, sku, redeem } => format!("p:{key}:{redeem}:{sku}"),
            Press::Regroup { key } => format!("r:{key}"),
            Press::MyGroups { page } => format!("m:{page}"),
        }
    }

    pub fn decode(data: &str) -> Option<Self> {
        let mut parts = data.splitn(4, ':');
        let tag = parts.next()?;
        let key = parts.next()?.to_string();
        match tag {
            "b" => Some(Press::Buy { key }),
            "o" => Some(Press::Other { key }),
            "r" => Some(Press::Regroup { key }),
            "m" => Some(Press::MyGroups {
                page: key.parse().ok()?,
            }),
            "s" => Some(Press::Product {
                key,
                sku: parts.next()?.to_string(),
            }),
            "p" => {
                let redeem = parts.next()?.parse().ok().filter(|r: &i64| *r >= 0)?;
                Some(Press::Pay {
                    key,
                    sku: parts.next()?.to_string(),
                    redeem,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presses_round_trip_within_telegram_limit() {
        let key = "ABCDEFGHJKLMNPQRST".to_string();
        let sku = "x".repeat(32);
        for p in [
            Press::Buy { key: key.clone() },
            Press::Other { key: key.clone() },
            Press::Product {
                key: key.clone(),
                sku: sku.clone(),
            },
            Press::Pay {
                key: key.clone(),
                sku: sku.clone(),
                redeem: 99_999_999,
            },
            Press::Regroup { key: key.clone() },
            Press::MyGroups { page: u32::MAX },
        ] {
            let data = p.encode();
            assert!(data.len() <= 64, "{data} is {} bytes", data.len());
            assert_eq!(Press::decode(&data), Some(p));
        }
        assert_eq!(Press::decode("p:K:-5:camera"), None);
        assert_eq!(Press::decode("zz"), None);
    }
}
