//! `groupbuy export`: every purchase of one group, or of the groups opened lately, as CSV
//! (one line a purchase, then one totals line per currency) or JSON, written as it is read a
//! page at a time: memory stays constant however many groups there are.

use crate::store::Store;
use crate::store::export::{self, ExportRow, Filter};
use std::collections::BTreeMap;
use std::io::Write;

/// Purchases read per query.
const PAGE: i64 = 1_000;

/// The export's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

/// `30m`, `48h`, `30d` → seconds (any positive number of them).
pub fn parse_age(raw: &str) -> Option<i64> {
    crate::app::new_group::parse_duration(raw).filter(|secs| *secs > 0)
}

const HEADER: &str = "group_key,group_status,purchase_id,buyer_id,buyer,product,price,currency,paid,points_redeemed,points_credited,counted,shipping,region,bought_at";

/// One CSV field: quoted when it must be, and a text a spreadsheet would take for a formula
/// (`=`, `+`, `-`, `@` first) prefixed with `'`.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn shipping(r: &ExportRow) -> &'static str {
    if r.shipped { "requested" } else { "none" }
}

fn csv_line(r: &ExportRow) -> String {
    [
        r.group_key.to_string(),
        r.group_status.as_str().to_string(),
        r.purchase_id.to_string(),
        r.buyer_id.to_string(),
        field(&r.buyer),
        field(r.sku.as_str()),
        r.price.minor().to_string(),
        r.currency.code().to_string(),
        r.paid.minor().to_string(),
        r.points_redeemed.value().to_string(),
        r.points_credited.value().to_string(),
        u8::from(r.counted).to_string(),
        shipping(r).to_string(),
        field(r.region.as_ref().map_or("", |g| g.as_str())),
        r.bought_at.to_string(),
    ]
    .join(",")
}

fn json_value(r: &ExportRow) -> serde_json::Value {
    serde_json::json!({
        "group_key": r.group_key.as_str(),
        "group_status": r.group_status.as_str(),
        "purchase_id": r.purchase_id,
        "buyer_id": r.buyer_id.get(),
        "buyer": r.buyer,
        "product": r.sku.as_str(),
        "price": r.price.minor(),
        "currency": r.currency.code(),
        "paid": r.paid.minor(),
        "points_redeemed": r.points_redeemed.value(),
        "points_credited": r.points_credited.value(),
        "counted": r.counted,
        "shipping": shipping(r),
        "region": r.region.as_ref().map(|g| g.as_str()),
        "bought_at": r.bought_at,
    })
}

/// One group's purchases as a CSV file (`/export`): the same lines as `groupbuy export`.
pub fn csv(rows: &[ExportRow]) -> String {
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    let mut out = format!("{HEADER}\n");
    for r in rows {
        out.push_str(&csv_line(r));
        out.push('\n');
        totals
            .entry(r.currency.code().to_string())
            .or_default()
            .add(r);
    }
    for (currency, t) in &totals {
        out.push_str(&totals_line(currency, t));
        out.push('\n');
    }
    out
}

/// The CSV line that sums one currency's purchases.
fn totals_line(currency: &str, t: &Totals) -> String {
    format!(
        "TOTAL,,{},,,,{},{},{},{},{},,,,",
        t.purchases,
        t.price,
        field(currency),
        t.paid,
        t.redeemed,
        t.credited
    )
}

/// Sums per currency (money and points are never added across currencies).
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    purchases: i64,
    price: i64,
    paid: i64,
    redeemed: i64,
    credited: i64,
}

impl Totals {
    fn add(&mut self, r: &ExportRow) {
        self.purchases += 1;
        self.price += r.price.minor();
        self.paid += r.paid.minor();
        self.redeemed += r.points_redeemed.value();
        self.credited += r.points_credited.value();
    }
}

/// Writes the export to `out`; returns how many purchases it listed.
pub async fn write(
    store: &Store,
    filter: &Filter,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut conn = store.read().await?;
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    let (mut after, mut n) = (0, 0u64);
    match format {
        Format::Csv => writeln!(out, "{HEADER}")?,
        Format::Json => write!(out, "{{\"purchases\":[")?,
    }
    loop {
        let rows = export::page(&mut conn, filter, after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.purchase_id;
        for r in &rows {
            match format {
                Format::Csv => writeln!(out, "{}", csv_line(r))?,
                Format::Json => {
                    let sep = if n == 0 { "\n" } else { ",\n" };
                    write!(out, "{sep}{}", json_value(r))?;
                }
            }
            totals
                .entry(r.currency.code().to_string())
                .or_default()
                .add(r);
            n += 1;
        }
    }
    match format {
        Format::Csv => {
            for (currency, t) in &totals {
                writeln!(out, "{}", totals_line(currency, t))?;
            }
        }
        Format::Json => {
            let totals: Vec<serde_json::Value> = totals
                .iter()
                .map(|(currency, t)| {
                    serde_json::json!({
                        "currency": currency, "purchases": t.purchases, "price": t.price,
                        "paid": t.paid, "points_redeemed": t.redeemed, "points_credited": t.credited,
                    })
                })
                .collect();
            writeln!(out, "\n],\"totals\":{}}}", serde_json::Value::Array(totals))?;
        }
    }
    out.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_fields() {
        assert_eq!(parse_age("30d"), Some(2_592_000));
        assert_eq!(parse_age("48h"), Some(172_800));
        assert_eq!(parse_age("0d"), None);
        assert_eq!(parse_age("5x"), None);
        assert_eq!(parse_age("日"), None);
        assert_eq!(parse_age(""), None);
        assert_eq!(field("Alice"), "Alice");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=1+2"), "'=1+2");
    }
}
