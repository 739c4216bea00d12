//! The operator's export of purchases (`groupbuy export`), read a page of ids at a time so
//! any number of groups exports in constant memory.

use super::{Conn, decode_err};
use crate::domain::{Currency, GroupKey, GroupStatus, Money, Points, RegionCode, Sku, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Which purchases: those of one group, or of the groups opened since a time.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub key: Option<GroupKey>,
    pub opened_since: i64,
}

/// One purchase as the export lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub purchase_id: i64,
    pub group_key: GroupKey,
    pub group_status: GroupStatus,
    pub buyer_id: UserId,
    /// The buyer's first name ('' when unknown or forgotten).
    pub buyer: String,
    pub sku: Sku,
    pub price: Money,
    pub currency: Currency,
    pub paid: Money,
    pub points_redeemed: Points,
    /// What settlement credited for it (0 before settlement or below the first tier).
    pub points_credited: Points,
    /// It took a seat of its group (a refunded or late payment does not).
    pub counted: bool,
    /// A shipping request went to fulfilment.
    pub shipped: bool,
    pub region: Option<RegionCode>,
    pub bought_at: i64,
}

fn from_row(r: &AnyRow) -> Result<ExportRow, sqlx::Error> {
    let id: i64 = r.try_get("id")?;
    let bad = |what: &str, value: &dyn std::fmt::Display| decode_err("purchase", id, what, value);
    let key: String = r.try_get("group_key")?;
    let status: String = r.try_get("status")?;
    let sku: String = r.try_get("sku")?;
    let price: i64 = r.try_get("price")?;
    let paid: i64 = r.try_get("amount_paid")?;
    let currency: String = r.try_get("currency")?;
    let region: Option<String> = r.try_get("region")?;
    Ok(ExportRow {
        purchase_id: id,
        group_key: GroupKey::parse(&key).map_err(|_| bad("group key", &key))?,
        group_status: GroupStatus::parse(&status).ok_or_else(|| bad("group status", &status))?,
        buyer_id: UserId::new(r.try_get("buyer_id")?),
        buyer: r.try_get("buyer")?,
        sku: Sku::parse(&sku).map_err(|_| bad("product code", &sku))?,
        price: Money::from_minor(price).map_err(|_| bad("price", &price))?,
        currency: Currency::parse(&currency).map_err(|_| bad("currency", &currency))?,
        paid: Money::from_minor(paid).map_err(|_| bad("amount paid", &paid))?,
        points_redeemed: Points::new(r.try_get("points_redeemed")?),
        points_credited: Points::new(r.try_get("credited")?),
        counted: r.try_get::<i64, _>("counted")? != 0,
        shipped: r.try_get::<i64, _>("shipped")? != 0,
        region: region.as_deref().map(RegionCode::from_stored),
        bought_at: r.try_get("created_at")?,
    })
}

/// Up to `limit` purchases the filter selects with ids after `after`, in id order.
pub async fn page(
    conn: &mut Conn,
    filter: &Filter,
    after: i64,
    limit: i64,
) -> Result<Vec<ExportRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, g.group_key, g.status, p.buyer_id, COALESCE(u.first_name, '') AS buyer, p.sku,
                p.price, p.currency, p.amount_paid, p.points_redeemed, p.counted, p.region, p.created_at,
                CAST(COALESCE((SELECT -SUM(l.amount) FROM ledger l WHERE l.purchase_id = p.id
                    AND l.txn LIKE 'settle:%' AND l.account LIKE 'points:%'), 0) AS BIGINT) AS credited,
                CAST(CASE WHEN EXISTS (SELECT 1 FROM shipping_requests s WHERE s.purchase_id = p.id)
                    THEN 1 ELSE 0 END AS BIGINT) AS shipped
           FROM purchases p JOIN group_buys g ON g.id = p.group_id LEFT JOIN users u ON u.id = p.buyer_id
          WHERE p.id > $1 AND ($2 = '' OR g.group_key = $2) AND g.created_at >= $3
          ORDER BY p.id LIMIT $4",
    )
    .bind(after)
    .bind(filter.key.as_ref().map_or("", GroupKey::as_str))
    .bind(filter.opened_since)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}
