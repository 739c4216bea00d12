//! Buying circles: the same people who bought together, how often, for how much, when last,
//! and what (claim 13, Fig. 7). Kept up to date in the settlement transaction.

use super::{Conn, decode_err};
use crate::domain::circle::CircleKey;
use crate::domain::{GroupId, Money, Sku, UserId};
use sqlx::Row;

/// One circle as a member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleRow {
    pub id: i64,
    pub size: u32,
    /// Groups the circle filled or settled together.
    pub times_bought: u32,
    /// The normal prices of its purchases, in the catalog currency.
    pub total_spent: Money,
    pub last_bought_at: i64,
    /// The product it bought most (ties: the first in code order).
    pub top_product: Option<Sku>,
}

/// A settled group's buyers, as one more time their circle bought together.
pub struct Bought<'a> {
    pub group_id: GroupId,
    pub circle: &'a CircleKey,
    pub spent: Money,
    /// Each product and how many of it the group bought.
    pub products: &'a [(Sku, u32)],
    pub now: i64,
}

/// Counts one more purchase together for the circle (created the first time), its members
/// and products, and ties the group to it.
pub async fn record(conn: &mut Conn, b: &Bought<'_>) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query(
        "INSERT INTO circles (members_key, size, times_bought, total_spent, last_bought_at, created_at)
         VALUES ($1, $2, 1, $3, $4, $4)
         ON CONFLICT (members_key) DO UPDATE SET times_bought = circles.times_bought + 1,
             total_spent = circles.total_spent + excluded.total_spent,
             last_bought_at = excluded.last_bought_at
         RETURNING id",
    )
    .bind(b.circle.to_string())
    .bind(b.circle.size() as i64)
    .bind(b.spent.minor())
    .bind(b.now)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    for m in b.circle.members() {
        sqlx::query(
            "INSERT INTO circle_members (circle_id, user_id) VALUES ($1, $2)
             ON CONFLICT (circle_id, user_id) DO NOTHING",
        )
        .bind(id)
        .bind(m.get())
        .execute(&mut *conn)
        .await?;
    }
    for (sku, n) in b.products {
        sqlx::query(
            "INSERT INTO circle_products (circle_id, sku, bought) VALUES ($1, $2, $3)
             ON CONFLICT (circle_id, sku) DO UPDATE SET bought = circle_products.bought + excluded.bought",
        )
        .bind(id)
        .bind(sku.as_str())
        .bind(i64::from(*n))
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("UPDATE group_buys SET circle_id = $2 WHERE id = $1")
        .bind(b.group_id.get())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

/// The circles `user` belongs to, most recently active first.
pub async fn of_user(
    conn: &mut Conn,
    user: UserId,
    limit: i64,
) -> Result<Vec<CircleRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.id, c.size, c.times_bought, c.total_spent, c.last_bought_at,
                (SELECT p.sku FROM circle_products p WHERE p.circle_id = c.id
                  ORDER BY p.bought DESC, p.sku LIMIT 1) AS top_sku
           FROM circles c JOIN circle_members m ON m.circle_id = c.id
          WHERE m.user_id = $1
          ORDER BY c.last_bought_at DESC, c.id DESC LIMIT $2",
    )
    .bind(user.get())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            let bad =
                |what: &str, value: &dyn std::fmt::Display| decode_err("circle", id, what, value);
            let count = |col: &str| -> Result<u32, sqlx::Error> {
                let n: i64 = r.try_get(col)?;
                u32::try_from(n).map_err(|_| bad(col, &n))
            };
            let spent: i64 = r.try_get("total_spent")?;
            let top: Option<String> = r.try_get("top_sku")?;
            Ok(CircleRow {
                id,
                size: count("size")?,
                times_bought: count("times_bought")?,
                total_spent: Money::from_minor(spent).map_err(|_| bad("total spent", &spent))?,
                last_bought_at: r.try_get("last_bought_at")?,
                top_product: match top {
                    Some(s) => Some(Sku::parse(&s).map_err(|_| bad("product code", &s))?),
                    None => None,
                },
            })
        })
        .collect()
}
