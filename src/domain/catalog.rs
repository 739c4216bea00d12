//! Products the merchant sells: a short SKU people can type, a name, and a normal price.

use super::money::Money;
use std::fmt;

/// A catalog code: 1–32 characters of `a-z 0-9 - _`, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

/// Why a product code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkuError {
    #[error("a product code is 1 to 32 letters, digits, '-' or '_'")]
    Malformed,
}

impl Sku {
    /// Trims and lower-cases a product code: 1 to 32 letters, digits, `-` or `_`.
    pub fn parse(raw: &str) -> Result<Self, SkuError> {
        let s = raw.trim().to_ascii_lowercase();
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s))
        } else {
            Err(SkuError::Malformed)
        }
    }

    /// The code in lower case, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of goods a product is, which decides how it may be paid for: Telegram allows
/// Stars only for digital goods and services; physical goods are paid in a currency through
/// a payment provider, which also collects the shipping address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductKind {
    #[default]
    Physical,
    Digital,
}

impl ProductKind {
    /// Reads the stored form (`physical`, `digital`); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "physical" => Some(Self::Physical),
            "digital" => Some(Self::Digital),
            _ => None,
        }
    }

    /// The stored form: `physical` or `digital`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Physical => "physical",
            Self::Digital => "digital",
        }
    }
}

/// A product in the catalog: its code, name, price and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: Sku,
    pub name: String,
    /// The normal price in the catalog currency's minor units (the base of every discount).
    pub price: Money,
    pub kind: ProductKind,
    /// The price in Telegram Stars, for digital products (configured explicitly, never
    /// derived from `price`).
    pub stars: Option<u32>,
    /// False for goods sold without a group discount (¶0146: scarce items): their groups
    /// still share a page, seats and shipping, and settle with nothing to credit.
    pub discount: bool,
}

/// How a typed product reference matched the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductMatch<'a> {
    Found(&'a Product),
    Ambiguous(Vec<&'a Product>),
    Unknown,
}

/// Finds a product by exact SKU, then by exact name, then by a unique name prefix or substring
/// (case-insensitive), so `/newgroup camera 3` works whether `camera` is the code or the name.
pub fn find<'a>(products: &'a [Product], query: &str) -> ProductMatch<'a> {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return ProductMatch::Unknown;
    }
    if let Some(p) = products.iter().find(|p| p.sku.as_str() == q) {
        return ProductMatch::Found(p);
    }
    if let Some(p) = products.iter().find(|p| p.name.to_lowercase() == q) {
        return ProductMatch::Found(p);
    }
    let partial: Vec<&Product> = products
        .iter()
        .filter(|p| p.name.to_lowercase().contains(&q) || p.sku.as_str().contains(&q))
        .collect();
    match partial.len() {
        0 => ProductMatch::Unknown,
        1 => ProductMatch::Found(partial[0]),
        _ => ProductMatch::Ambiguous(partial),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(sku: &str, name: &str, price: i64) -> Product {
        Product {
            sku: Sku::parse(sku).expect("valid sku"),
            name: name.into(),
            price: Money::from_minor(price).expect("positive"),
            kind: ProductKind::Physical,
            stars: None,
            discount: true,
        }
    }

    #[test]
    fn sku_rules() {
        assert_eq!(Sku::parse(" Camera ").expect("valid").as_str(), "camera");
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("a b").is_err());
        assert!(Sku::parse(&"x".repeat(33)).is_err());
    }

    #[test]
    fn finds_by_sku_name_and_unique_part() {
        let all = vec![
            product("camera", "Digital camera", 34_800),
            product("scanner", "Photo scanner", 29_800),
            product("memory", "Memory card 64 GB", 6_780),
        ];
        assert_eq!(find(&all, "camera"), ProductMatch::Found(&all[0]));
        assert_eq!(find(&all, "photo scanner"), ProductMatch::Found(&all[1]));
        assert_eq!(find(&all, "card"), ProductMatch::Found(&all[2]));
        assert!(matches!(find(&all, "a"), ProductMatch::Ambiguous(v) if v.len() == 3));
        assert_eq!(find(&all, "telescope"), ProductMatch::Unknown);
    }
}
