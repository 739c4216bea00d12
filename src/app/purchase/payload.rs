//! The invoice payload: which group, buyer, price, points and product an invoice is for,
//! carried through Telegram and back with the payment.

use crate::domain::{GroupId, Money, Points, Sku, UserId};

/// The invoice payload: `v2:<group>:<buyer>:<price>:<redeem>:<nonce>:<sku>` (≤ 128 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub group_id: GroupId,
    pub buyer_id: UserId,
    /// The normal price the invoice was made at.
    pub price: Money,
    /// Points the buyer chose to spend (never negative).
    pub redeem: Points,
    pub sku: Sku,
    /// Makes each invoice's payload unique, so the seat and points held for one invoice are
    /// never taken as held for another.
    pub nonce: String,
}

impl Payload {
    /// `v2:<group>:<buyer>:<price>:<redeem>:<nonce>:<sku>`.
    pub fn encode(&self) -> String {
        format!(
            "v2:{}:{}:{}:{}:{}:{}",
            self.group_id,
            self.buyer_id,
            self.price.minor(),
            self.redeem.value(),
            self.nonce,
            self.sku
        )
    }

    /// Reads a payload back; None for anything this service did not write.
    pub fn decode(s: &str) -> Option<Self> {
        let mut p = s.splitn(7, ':');
        (p.next()? == "v2").then_some(())?;
        Some(Self {
            group_id: GroupId::new(p.next()?.parse().ok()?),
            buyer_id: UserId::new(p.next()?.parse().ok()?),
            price: Money::from_minor(p.next()?.parse().ok()?).ok()?,
            redeem: Points::new(p.next()?.parse().ok().filter(|r: &i64| *r >= 0)?),
            nonce: p.next().filter(|n| n.len() <= 16)?.to_string(),
            sku: Sku::parse(p.next()?).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_limit() {
        let p = Payload {
            group_id: GroupId::new(i64::MAX),
            buyer_id: UserId::new(i64::MAX),
            price: Money::from_minor(i64::MAX).expect("non-negative"),
            redeem: Points::new(i64::MAX),
            sku: Sku::parse(&"x".repeat(32)).expect("a valid code"),
            nonce: "ABCDEFGH".into(),
        };
        assert!(p.encode().len() <= 128, "{} bytes", p.encode().len());
        assert_eq!(Payload::decode(&p.encode()), Some(p));
        assert_eq!(
            Payload::decode("v2:1:2:3:4::camera").map(|p| p.sku.to_string()),
            Some("camera".into())
        );
        assert_eq!(Payload::decode("v2:1:2:3:4:x"), None);
        assert_eq!(Payload::decode("v1:1:2:3:4:x"), None);
        assert_eq!(Payload::decode("v2:1:2:x:4::x"), None);
        // A negative price or point count is not ours.
        assert_eq!(Payload::decode("v2:1:2:-3:4::x"), None);
        assert_eq!(Payload::decode("v2:1:2:3:-4::x"), None);
    }
}
