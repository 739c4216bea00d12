//! Payments Telegram confirmed, and the shipping requests they caused.

use super::{Conn, decode_err};
use crate::domain::{Currency, GroupId, Money, Points, PurchaseId, RegionCode, Sku, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Why a recorded payment does not count as a seat of its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// The group had closed or expired when the payment arrived.
    Late,
    /// Every seat was already taken.
    Full,
    /// The buyer already held a seat in this group.
    Repeat,
}

impl Flag {
    /// The flag as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Late => "late",
            Flag::Full => "full",
            Flag::Repeat => "repeat",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "late" => Some(Flag::Late),
            "full" => Some(Flag::Full),
            "repeat" => Some(Flag::Repeat),
            _ => None,
        }
    }
}

/// A purchase as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRow {
    pub id: PurchaseId,
    pub group_id: GroupId,
    pub buyer_id: UserId,
    pub sku: Sku,
    /// The normal price, the base of the discount.
    pub price: Money,
    pub points_redeemed: Points,
    /// What Telegram charged (in `currency`; Stars for digital goods paid in Stars).
    pub amount_paid: Money,
    pub currency: Currency,
    pub charge_id: String,
    pub counted: bool,
    pub flag: Option<Flag>,
    pub region: Option<RegionCode>,
    pub receipt_token: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, group_id, buyer_id, sku, price, points_redeemed, amount_paid, currency, charge_id, counted, flag, region, receipt_token, created_at";

fn from_row(r: &AnyRow) -> Result<PurchaseRow, sqlx::Error> {
    let id: i64 = r.try_get("id")?;
    let bad = |what: &str, value: &dyn std::fmt::Display| decode_err("purchase", id, what, value);
    let sku: String = r.try_get("sku")?;
    let price: i64 = r.try_get("price")?;
    let paid: i64 = r.try_get("amount_paid")?;
    let currency: String = r.try_get("currency")?;
    let flag: Option<String> = r.try_get("flag")?;
    let region: Option<String> = r.try_get("region")?;
    Ok(PurchaseRow {
        id: PurchaseId::new(id),
        group_id: GroupId::new(r.try_get("group_id")?),
        buyer_id: UserId::new(r.try_get("buyer_id")?),
        sku: Sku::parse(&sku).map_err(|_| bad("product code", &sku))?,
        price: Money::from_minor(price).map_err(|_| bad("price", &price))?,
        points_redeemed: Points::new(r.try_get("points_redeemed")?),
        amount_paid: Money::from_minor(paid).map_err(|_| bad("amount paid", &paid))?,
        currency: Currency::parse(&currency).map_err(|_| bad("currency", &currency))?,
        charge_id: r.try_get("charge_id")?,
        counted: r.try_get::<i64, _>("counted")? != 0,
        flag: match flag {
            Some(f) => Some(Flag::parse(&f).ok_or_else(|| bad("flag", &f))?),
            None => None,
        },
        region: region.as_deref().map(RegionCode::from_stored),
        receipt_token: r.try_get("receipt_token")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A purchase to record.
pub struct NewPurchase<'a> {
    pub group_id: GroupId,
    pub buyer_id: UserId,
    pub sku: &'a Sku,
    pub price: Money,
    pub points_redeemed: Points,
    pub amount_paid: Money,
    pub currency: Currency,
    pub charge_id: &'a str,
    pub provider_charge_id: &'a str,
    /// Takes a seat of the group (an object user of claim 1).
    pub counted: bool,
    /// Why a payment that does not count did not (none for a counted one).
    pub flag: Option<Flag>,
    pub region: Option<&'a RegionCode>,
    pub receipt_token: &'a str,
    pub now: i64,
}

/// Records a payment once per charge id; `None` when this charge was already recorded.
pub async fn insert(
    conn: &mut Conn,
    p: &NewPurchase<'_>,
) -> Result<Option<PurchaseId>, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO purchases (group_id, buyer_id, sku, price, points_redeemed, amount_paid, currency, charge_id,
             provider_charge_id, counted, flag, region, receipt_token, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (charge_id) DO NOTHING RETURNING id",
    )
    .bind(p.group_id.get())
    .bind(p.buyer_id.get())
    .bind(p.sku.as_str())
    .bind(p.price.minor())
    .bind(p.points_redeemed.value())
    .bind(p.amount_paid.minor())
    .bind(p.currency.code())
    .bind(p.charge_id)
    .bind(p.provider_charge_id)
    .bind(i64::from(p.counted))
    .bind(p.flag.map(Flag::as_str))
    .bind(p.region.map(RegionCode::as_str))
    .bind(p.receipt_token)
    .bind(p.now)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| r.try_get(0).map(PurchaseId::new)).transpose()
}

/// The purchase of this Telegram payment charge id.
pub async fn by_charge(
    conn: &mut Conn,
    charge_id: &str,
) -> Result<Option<PurchaseRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM purchases WHERE charge_id = $1"
    )))
    .bind(charge_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The purchase whose receipt link carries this token.
pub async fn by_receipt(conn: &mut Conn, token: &str) -> Result<Option<PurchaseRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM purchases WHERE receipt_token = $1"
    )))
    .bind(token)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every purchase of a group, counted or not.
pub async fn of_group(conn: &mut Conn, group_id: GroupId) -> Result<Vec<PurchaseRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM purchases WHERE group_id = $1 ORDER BY id"
    )))
    .bind(group_id.get())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The object users of a group: its counted purchases in the order they were made.
pub async fn counted(conn: &mut Conn, group_id: GroupId) -> Result<Vec<PurchaseRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM purchases WHERE group_id = $1 AND counted = 1 ORDER BY id"
    )))
    .bind(group_id.get())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The counted purchases of several groups, by group, each in id order.
pub async fn counted_many(
    conn: &mut Conn,
    group_ids: &[GroupId],
) -> Result<std::collections::HashMap<GroupId, Vec<PurchaseRow>>, sqlx::Error> {
    let mut out: std::collections::HashMap<GroupId, Vec<PurchaseRow>> =
        std::collections::HashMap::new();
    for chunk in group_ids.chunks(super::IN_LIST) {
        let list: Vec<String> = (1..=chunk.len()).map(|k| format!("${k}")).collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM purchases WHERE group_id IN ({}) AND counted = 1 ORDER BY group_id, id",
            list.join(", ")
        )));
        for id in chunk {
            query = query.bind(id.get());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let p = from_row(&row)?;
            out.entry(p.group_id).or_default().push(p);
        }
    }
    Ok(out)
}

/// How many of the group's purchases hold a seat (count towards its head count).
pub async fn count_counted(conn: &mut Conn, group_id: GroupId) -> Result<u32, sqlx::Error> {
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM purchases WHERE group_id = $1 AND counted = 1")
        .bind(group_id.get())
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Whether the buyer has a purchase holding a seat in the group.
pub async fn has_seat(
    conn: &mut Conn,
    group_id: GroupId,
    buyer_id: UserId,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT 1 FROM purchases WHERE group_id = $1 AND buyer_id = $2 AND counted = 1",
    )
    .bind(group_id.get())
    .bind(buyer_id.get())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

/// Releases a purchase's seat: it was refunded and never counts again. False when it did
/// not hold one.
pub async fn uncount(conn: &mut Conn, purchase_id: PurchaseId) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE purchases SET counted = 0 WHERE id = $1 AND counted = 1")
            .bind(purchase_id.get())
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Whether a shipping request went to fulfilment for this purchase.
pub async fn has_shipping_request(
    conn: &mut Conn,
    purchase_id: PurchaseId,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 FROM shipping_requests WHERE purchase_id = $1")
            .bind(purchase_id.get())
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// Records the shipping request sent for a purchase; a second one for it is ignored.
pub async fn insert_shipping_request(
    conn: &mut Conn,
    purchase_id: PurchaseId,
    recipient: &str,
    address: &str,
    region: Option<&RegionCode>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO shipping_requests (purchase_id, recipient, address, region, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (purchase_id) DO NOTHING",
    )
    .bind(purchase_id.get())
    .bind(recipient)
    .bind(address)
    .bind(region.map(RegionCode::as_str))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Invited members of a group who have not yet taken their seat: seats held for them.
pub async fn count_reserved(conn: &mut Conn, group_id: GroupId) -> Result<u32, sqlx::Error> {
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) FROM members m WHERE m.group_id = $1 AND (m.user_id IS NULL OR NOT EXISTS
            (SELECT 1 FROM purchases p WHERE p.group_id = m.group_id AND p.buyer_id = m.user_id AND p.counted = 1))",
    )
    .bind(group_id.get())
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The first names of a group's object users, in the order they bought (for the group page:
/// nothing else about them is shown).
pub async fn buyer_first_names(
    conn: &mut Conn,
    group_id: GroupId,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT COALESCE(u.first_name, '') FROM purchases p LEFT JOIN users u ON u.id = p.buyer_id
         WHERE p.group_id = $1 AND p.counted = 1 ORDER BY p.id",
    )
    .bind(group_id.get())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}
