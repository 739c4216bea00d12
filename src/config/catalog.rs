//! What is sold and at what discount: products, tiers and the shared-region bonus.

use super::ConfigError;
use super::file::{FileConfig, FileProduct, FileRegionBonus, FileRegionRate, FileTier};
use super::sources::invalid;
use crate::domain::catalog::{Product, ProductKind, Sku};
use crate::domain::money::Money;
use crate::domain::region::{RegionBonus, RegionRate};
use crate::domain::tiers::{Rate, Tier, TierTable};

/// The checked catalog sections of the file.
pub(super) struct Catalog {
    pub(super) tiers: TierTable,
    pub(super) region_bonus: Option<RegionBonus>,
    pub(super) region_rate: Option<RegionRate>,
    pub(super) products: Vec<Product>,
}

impl Catalog {
    /// Tiers, then the region bonus, then the products (the order their errors are reported).
    pub(super) fn parse(file: &mut FileConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            tiers: tiers(&file.tiers)?,
            region_bonus: region_bonus(file.region_bonus.take())?,
            region_rate: region_rate(file.region_rate.take())?,
            products: parse_products(&file.products)?,
        })
    }
}

/// Percent as TOML integer (`5`) or decimal (`2.5`) into basis points, exactly.
pub(super) fn percent_to_rate(v: &toml::Value) -> Option<Rate> {
    let bp = match v {
        toml::Value::Integer(i) => i.checked_mul(100)?,
        toml::Value::Float(f) => {
            let scaled = f * 100.0;
            if (scaled - scaled.round()).abs() > 1e-6 {
                return None;
            }
            scaled.round() as i64
        }
        toml::Value::String(s) => {
            return percent_to_rate(
                &s.trim()
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .ok()
                    .map(toml::Value::Float)?,
            );
        }
        _ => return None,
    };
    Rate::from_basis_points(u32::try_from(bp).ok()?)
}

/// Parses products from a catalog file (the same `[[products]]` tables as `groupbuy.toml`).
pub fn parse_products(raw: &[FileProduct]) -> Result<Vec<Product>, ConfigError> {
    let mut out: Vec<Product> = Vec::with_capacity(raw.len());
    for p in raw {
        let product = parse_product(p, &out)?;
        out.push(product);
    }
    Ok(out)
}

/// One product table (its code new among `earlier`): price, name, kind and Stars.
fn parse_product(p: &FileProduct, earlier: &[Product]) -> Result<Product, ConfigError> {
    let sku = Sku::parse(&p.sku).map_err(|e| invalid("products", format!("{:?}: {e}", p.sku)))?;
    let price =
        Money::from_minor(p.price).map_err(|e| invalid("products", format!("{sku}: {e}")))?;
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > 32 {
        return Err(invalid(
            "products",
            format!("{sku}: a product name is 1 to 32 characters (Telegram's invoice title limit)"),
        ));
    }
    if price.minor() == 0 {
        return Err(invalid("products", format!("{sku}: price must be above 0")));
    }
    if earlier.iter().any(|o| o.sku == sku) {
        return Err(invalid("products", format!("{sku} appears twice")));
    }
    let kind = product_kind(&sku, p.kind.as_deref())?;
    let stars = product_stars(&sku, kind, p.stars)?;
    Ok(Product {
        sku,
        name: name.to_string(),
        price,
        kind,
        stars,
        discount: p.discount.unwrap_or(true),
    })
}

/// `physical` unless the table says otherwise.
fn product_kind(sku: &Sku, kind: Option<&str>) -> Result<ProductKind, ConfigError> {
    match kind {
        None => Ok(ProductKind::Physical),
        Some(k) => ProductKind::parse(k).ok_or_else(|| {
            invalid(
                "products",
                format!("{sku}: kind is \"physical\" or \"digital\", not {k:?}"),
            )
        }),
    }
}

/// The Stars price: required for digital goods, refused for physical ones.
fn product_stars(
    sku: &Sku,
    kind: ProductKind,
    stars: Option<i64>,
) -> Result<Option<u32>, ConfigError> {
    match (kind, stars) {
        (ProductKind::Digital, Some(n)) => u32::try_from(n)
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    "products",
                    format!("{sku}: stars is a whole number from 1 to 100000"),
                )
            }),
        (ProductKind::Digital, None) => Err(invalid(
            "products",
            format!(
                "{sku}: a digital product is sold in Telegram Stars: give its price as stars = N"
            ),
        )),
        (ProductKind::Physical, Some(_)) => Err(invalid(
            "products",
            format!(
                "{sku}: Telegram allows Stars only for digital goods: drop stars, or set kind = \"digital\""
            ),
        )),
        (ProductKind::Physical, None) => Ok(None),
    }
}

/// The discount tiers (the patent's figures unless the file lists its own).
fn tiers(file_tiers: &[FileTier]) -> Result<TierTable, ConfigError> {
    if file_tiers.is_empty() {
        return Ok(default_tiers());
    }
    let mut parsed = Vec::new();
    for t in file_tiers {
        let members =
            u32::try_from(t.members).map_err(|_| invalid("tiers", "members must be positive"))?;
        let rate = percent_to_rate(&t.percent).ok_or_else(|| {
            invalid(
                "tiers",
                format!(
                    "percent {} must be 0 to 100 with at most two decimals",
                    t.percent
                ),
            )
        })?;
        parsed.push(Tier { members, rate });
    }
    TierTable::new(parsed).map_err(|e| invalid("tiers", e.to_string()))
}

/// The shared-region bonus, if configured.
fn region_bonus(file_value: Option<FileRegionBonus>) -> Result<Option<RegionBonus>, ConfigError> {
    let Some(b) = file_value else {
        return Ok(None);
    };
    let (min_buyers, window_secs) = sharing("region_bonus", b.min_buyers, b.window_hours)?;
    Ok(Some(RegionBonus {
        amount: Money::from_minor(b.amount).map_err(|e| invalid("region_bonus", e.to_string()))?,
        min_buyers,
        window_secs,
    }))
}

/// The `[region_rate]` table (¶0059): its extra percent, and who shares a region.
fn region_rate(file_value: Option<FileRegionRate>) -> Result<Option<RegionRate>, ConfigError> {
    let Some(r) = file_value else {
        return Ok(None);
    };
    let (min_buyers, window_secs) = sharing("region_rate", r.min_buyers, r.window_hours)?;
    Ok(Some(RegionRate {
        extra: percent_to_rate(&r.extra_percent)
            .ok_or_else(|| invalid("region_rate", "extra_percent must be 0 to 100"))?,
        min_buyers,
        window_secs,
    }))
}

/// How many buyers of one region, how close together: at least 2, and 0 hours (the whole
/// group) or more.
fn sharing(
    name: &'static str,
    min_buyers: i64,
    window_hours: i64,
) -> Result<(u32, i64), ConfigError> {
    Ok((
        u32::try_from(min_buyers)
            .ok()
            .filter(|n| *n >= 2)
            .ok_or_else(|| invalid(name, "min_buyers must be at least 2"))?,
        window_hours
            .checked_mul(3_600)
            .filter(|s| *s >= 0)
            .ok_or_else(|| invalid(name, "window_hours must be 0 (whole group) or more"))?,
    ))
}

/// The patent's example table: 1→0 %, 2→3 %, 3→5 %, 4→10 %.
pub fn default_tiers() -> TierTable {
    let t = |members, bp| Tier {
        members,
        rate: Rate::from_basis_points(bp).unwrap_or(Rate::ZERO),
    };
    TierTable::new(vec![t(1, 0), t(2, 300), t(3, 500), t(4, 1_000)])
        .unwrap_or_else(|_| unreachable!("constant table is valid"))
}
