//! Payments Telegram confirmed, and the shipping requests they caused.

use super::Conn;
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRow {
    pub id: i64,
    pub group_id: i64,
    pub buyer_id: i64,
    pub sku: String,
    pub price: i64,
    pub points_redeemed: i64,
    pub amount_paid: i64,
    pub currency: String,
    pub charge_id: String,
    pub counted: bool,
    pub flag: Option<Flag>,
    pub region: Option<String>,
    pub receipt_token: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, group_id, buyer_id, sku, price, points_redeemed, amount_paid, currency, charge_id, counted, flag, region, receipt_token, created_at";

fn from_row(r: &AnyRow) -> Result<PurchaseRow, sqlx::Error> {
    let flag: Option<String> = r.try_get("flag")?;
    Ok(PurchaseRow {
        id: r.try_get("id")?,
        group_id: r.try_get("group_id")?,
        buyer_id: r.try_get("buyer_id")?,
        sku: r.try_get("sku")?,
        price: r.try_get("price")?,
        points_redeemed: r.try_get("points_redeemed")?,
        amount_paid: r.try_get("amount_paid")?,
        currency: r.try_get("currency")?,
        charge_id: r.try_get("charge_id")?,
        counted: r.try_get::<i64, _>("counted")? != 0,
        flag: flag.as_deref().and_then(Flag::parse),
        region: r.try_get("region")?,
        receipt_token: r.try_get("receipt_token")?,
        created_at: r.try_get("created_at")?,
    })
}

pub struct NewPurchase<'a> {
    pub group_id: i64,
    pub buyer_id: i64,
    pub sku: &'a str,
    pub price: i64,
    pub points_redeemed: i64,
    pub amount_paid: i64,
    pub currency: &'a str,
    pub charge_id: &'a str,
    pub provider_charge_id: &'a str,
    /// Takes a seat of the group (an object user of claim 1).
    pub counted: bool,
    /// Why a payment that does not count did not (none for a counted one).
    pub flag: Option<Flag>,
    pub region: Option<&'a str>,
    pub receipt_token: &'a str,
    pub now: i64,
}

/// Records a payment once per charge id; `None` when this charge was already recorded.
pub async fn insert(conn: &mut Conn, p: &NewPurchase<'_>) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO purchases (group_id, buyer_id, sku, price, points_redeemed, amount_paid, currency, charge_id,
             provider_charge_id, counted, flag, region, receipt_token, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (charge_id) DO NOTHING RETURNING id",
    )
    .bind(p.group_id)
    .bind(p.buyer_id)
    .bind(p.sku)
    .bind(p.price)
    .bind(p.points_redeemed)
    .bind(p.amount_paid)
    .bind(p.currency)
    .bind(p.charge_id)
    .bind(p.provider_charge_id)
    .bind(i64::from(p.counted))
    .bind(p.flag.map(Flag::as_str))
    .bind(p.region)
    .bind(p.receipt_token)
    .bind(p.now)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| r.try_get(0)).transpose()
}

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
pub async fn of_group(conn: &mut Conn, group_id: i64) -> Result<Vec<PurchaseRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM purchases WHERE group_id = $1 ORDER BY id"
    )))
    .bind(group_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The object users of a group: its counted purchases in the order they were made.
pub async fn counted(conn: &mut Conn, group_id: i64) -> Result<Vec<PurchaseRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM purchases WHERE group_id = $1 AND counted = 1 ORDER BY id"
    )))
    .bind(group_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The counted purchases of several groups, by group, each in id order.
pub async fn counted_many(
    conn: &mut Conn,
    group_ids: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<PurchaseRow>>, sqlx::Error> {
    let mut out: std::collections::HashMap<i64, Vec<PurchaseRow>> =
        std::collections::HashMap::new();
    for chunk in group_ids.chunks(super::IN_LIST) {
        let list: Vec<String> = (1..=chunk.len()).map(|k| format!("${k}")).collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM purchases WHERE group_id IN ({}) AND counted = 1 ORDER BY group_id, id",
            list.join(", ")
        )));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let p = from_row(&row)?;
            out.entry(p.group_id).or_default().push(p);
        }
    }
    Ok(out)
}

pub async fn count_counted(conn: &mut Conn, group_id: i64) -> Result<u32, sqlx::Error> {
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM purchases WHERE group_id = $1 AND counted = 1")
        .bind(group_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Counted seats taken by people who were not named by the organiser.
pub async fn count_open_seat_buyers(conn: &mut Conn, group_id: i64) -> Result<u32, sqlx::Error> {
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) FROM purchases p WHERE p.group_id = $1 AND p.counted = 1
            AND NOT EXISTS (SELECT 1 FROM members m WHERE m.group_id = p.group_id AND m.user_id = p.buyer_id)",
    )
    .bind(group_id)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

pub async fn has_seat(conn: &mut Conn, group_id: i64, buyer_id: i64) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT 1 FROM purchases WHERE group_id = $1 AND buyer_id = $2 AND counted = 1",
    )
    .bind(group_id)
    .bind(buyer_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

/// Releases a purchase's seat: it was refunded and never counts again. False when it did
/// not hold one.
pub async fn uncount(conn: &mut Conn, purchase_id: i64) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE purchases SET counted = 0 WHERE id = $1 AND counted = 1")
            .bind(purchase_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// Whether a shipping request went to fulfilment for this purchase.
pub async fn has_shipping_request(conn: &mut Conn, purchase_id: i64) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 FROM shipping_requests WHERE purchase_id = $1")
            .bind(purchase_id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

pub async fn insert_shipping_request(
    conn: &mut Conn,
    purchase_id: i64,
    recipient: &str,
    address: &str,
    region: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO shipping_requests (purchase_id, recipient, address, region, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (purchase_id) DO NOTHING",
    )
    .bind(purchase_id)
    .bind(recipient)
    .bind(address)
    .bind(region)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn count_shipping_requests(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) FROM shipping_requests")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)
}

/// Invited members of a group who have not yet taken their seat: seats held for them.
pub async fn count_reserved(conn: &mut Conn, group_id: i64) -> Result<u32, sqlx::Error> {
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) FROM members m WHERE m.group_id = $1 AND (m.user_id IS NULL OR NOT EXISTS
            (SELECT 1 FROM purchases p WHERE p.group_id = m.group_id AND p.buyer_id = m.user_id AND p.counted = 1))",
    )
    .bind(group_id)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The first names of a group's object users, in the order they bought (for the group page:
/// nothing else about them is shown).
pub async fn buyer_first_names(conn: &mut Conn, group_id: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT COALESCE(u.first_name, '') FROM purchases p LEFT JOIN users u ON u.id = p.buyer_id
         WHERE p.group_id = $1 AND p.counted = 1 ORDER BY p.id",
    )
    .bind(group_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}
