//! Money and credit points, always integers in minor currency units.
//!
//! Rounding rule (the only place money is divided): a discount of `rate` on `amount` is
//! `floor(amount × basis_points / 10 000)`, rounded towards zero, so a buyer is never credited
//! a fraction the merchant did not grant and the discount can never exceed the amount.

use std::fmt;

/// An ISO 4217 code (or Telegram's `XTR` for Stars) and its number of minor-unit digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// Why a currency code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("currency must be a three-letter code such as JPY, USD or XTR")]
    BadCode,
}

impl Currency {
    /// Parses a three-letter code; the exponent is known for the common currencies, 2 otherwise.
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        let upper = code.trim().to_ascii_uppercase();
        let bytes: [u8; 3] = upper
            .as_bytes()
            .try_into()
            .map_err(|_| CurrencyError::BadCode)?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(CurrencyError::BadCode);
        }
        let exponent = match &bytes {
            b"JPY" | b"KRW" | b"XTR" | b"VND" | b"CLP" | b"ISK" | b"HUF" | b"TWD" | b"UGX" => 0,
            b"BHD" | b"KWD" | b"OMR" | b"JOD" | b"TND" => 3,
            _ => 2,
        };
        Ok(Self {
            code: bytes,
            exponent,
        })
    }

    /// The three-letter code, e.g. `JPY`.
    pub fn code(&self) -> &str {
        // Only ASCII uppercase letters are ever stored.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Digits after the decimal point: 0 for JPY, 2 for USD.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Renders an amount of minor units for people: `34,800 JPY`, `12.50 USD`.
    pub fn format(&self, minor: i64) -> String {
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        let scale = 10u64.pow(u32::from(self.exponent));
        let whole = group_thousands(abs / scale);
        if self.exponent == 0 {
            format!("{sign}{whole} {}", self.code())
        } else {
            let frac = abs % scale;
            let width = usize::from(self.exponent);
            format!("{sign}{whole}.{frac:0width$} {}", self.code())
        }
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount in a currency, as people read it: `34,800 JPY`, `12.50 USD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub money: Money,
    pub currency: Currency,
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.currency.format(self.money.minor()))
    }
}

/// A non-negative amount of money in minor units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("an amount of money cannot be negative")]
    Negative,
}

impl Money {
    /// No money.
    pub const ZERO: Money = Money(0);

    /// An amount in minor currency units; refuses a negative one.
    pub fn from_minor(minor: i64) -> Result<Self, MoneyError> {
        if minor < 0 {
            return Err(MoneyError::Negative);
        }
        Ok(Self(minor))
    }

    /// The amount in minor currency units.
    pub fn minor(self) -> i64 {
        self.0
    }

    /// `floor(self × basis_points / 10 000)`: the documented rounding rule.
    pub fn share(self, basis_points: u32) -> Money {
        let product = i128::from(self.0) * i128::from(basis_points.min(10_000));
        // The result is at most self.0, so it always fits.
        Money((product / 10_000) as i64)
    }

    /// The difference, never below zero.
    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0).max(0))
    }

    /// The sum; `None` on overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
}

/// Credit points: 1 point is worth 1 minor currency unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Points(i64);

impl Points {
    /// No points.
    pub const ZERO: Points = Points(0);

    /// Any number of points, negative included.
    pub fn new(points: i64) -> Self {
        Self(points)
    }

    /// The number of points (1 point = 1 minor currency unit).
    pub fn value(self) -> i64 {
        self.0
    }

    /// Points worth `money`: 1 point per minor currency unit.
    pub fn of(money: Money) -> Self {
        Self(money.minor())
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}", group_thousands(self.0.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_by_exponent() {
        let jpy = Currency::parse("jpy").expect("JPY parses");
        assert_eq!(jpy.format(34_800), "34,800 JPY");
        let usd = Currency::parse("USD").expect("USD parses");
        assert_eq!(usd.format(1_250), "12.50 USD");
        assert_eq!(usd.format(5), "0.05 USD");
        assert_eq!(Points::new(1_740).to_string(), "1,740");
    }

    #[test]
    fn rejects_bad_codes_and_negative_money() {
        assert!(Currency::parse("YEN!").is_err());
        assert!(Currency::parse("J1Y").is_err());
        assert_eq!(Money::from_minor(-1), Err(MoneyError::Negative));
    }

    #[test]
    fn share_rounds_down() {
        let m = Money::from_minor(34_800).expect("positive");
        assert_eq!(m.share(500).minor(), 1_740);
        assert_eq!(
            Money::from_minor(6_780)
                .expect("positive")
                .share(300)
                .minor(),
            203
        ); // 203.4
        assert_eq!(
            Money::from_minor(999)
                .expect("positive")
                .share(10_000)
                .minor(),
            999
        );
    }

    proptest! {
        #[test]
        fn share_never_exceeds_amount_and_is_the_floor(amount in 0i64..=i64::MAX / 2, bp in 0u32..=10_000) {
            let m = Money::from_minor(amount).expect("non-negative");
            let s = m.share(bp).minor();
            prop_assert!(s <= amount);
            prop_assert!(s >= 0);
            let exact = i128::from(amount) * i128::from(bp);
            prop_assert!(i128::from(s) * 10_000 <= exact);
            prop_assert!((i128::from(s) + 1) * 10_000 > exact);
        }
    }
}
