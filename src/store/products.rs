//! The catalog as stored: loaded from the config file at start-up and by `catalog import`.

use super::Conn;
use crate::domain::{Money, Product, ProductKind, Sku};
use sqlx::Row;
use sqlx::any::AnyRow;

fn from_row(r: &AnyRow) -> Result<Product, sqlx::Error> {
    let sku: String = r.try_get("sku")?;
    let price: i64 = r.try_get("price")?;
    let kind: String = r.try_get("kind")?;
    let stars: Option<i64> = r.try_get("stars")?;
    let decode = |what: &str| sqlx::Error::Decode(format!("product {sku}: bad {what}").into());
    Ok(Product {
        sku: Sku::parse(&sku).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        name: r.try_get("name")?,
        price: Money::from_minor(price).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        kind: ProductKind::parse(&kind).ok_or_else(|| decode("kind"))?,
        stars: stars
            .map(|n| u32::try_from(n).map_err(|_| decode("stars")))
            .transpose()?,
        discount: match r.try_get::<i64, _>("discount")? {
            0 => false,
            1 => true,
            _ => return Err(decode("discount flag")),
        },
    })
}

/// Adds or updates each product; products not listed stay as they are.
pub async fn upsert(conn: &mut Conn, products: &[Product], now: i64) -> Result<u64, sqlx::Error> {
    let mut n = 0;
    for p in products {
        n += sqlx::query(
            "INSERT INTO products (sku, name, price, kind, stars, active, updated_at, discount) VALUES ($1, $2, $3, $4, $5, 1, $6, $7)
             ON CONFLICT (sku) DO UPDATE SET name = excluded.name, price = excluded.price,
                 kind = excluded.kind, stars = excluded.stars, active = 1, updated_at = excluded.updated_at,
                 discount = excluded.discount",
        )
        .bind(p.sku.as_str())
        .bind(&p.name)
        .bind(p.price.minor())
        .bind(p.kind.as_str())
        .bind(p.stars.map(i64::from))
        .bind(now)
        .bind(i64::from(p.discount))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(n)
}

const COLUMNS: &str = "sku, name, price, kind, stars, discount";

/// A product on sale now.
pub async fn get(conn: &mut Conn, sku: &Sku) -> Result<Option<Product>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM products WHERE sku = $1 AND active = 1"
    )))
    .bind(sku.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A product whether or not it is still on sale: groups and purchases of a product taken out
/// of the catalog still settle and still name it.
pub async fn get_any(conn: &mut Conn, sku: &str) -> Result<Option<Product>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM products WHERE sku = $1"
    )))
    .bind(sku)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The products on sale, by code.
pub async fn list(conn: &mut Conn) -> Result<Vec<Product>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM products WHERE active = 1 ORDER BY sku"
    )))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Takes a product off sale; false when no product on sale has that code.
pub async fn take_off_sale(conn: &mut Conn, sku: &Sku, now: i64) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query(
            "UPDATE products SET active = 0, updated_at = $2 WHERE sku = $1 AND active = 1",
        )
        .bind(sku.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1,
    )
}
