//! The catalog as stored: loaded from the config file at start-up and by `catalog import`.

use super::Conn;
use crate::domain::{Money, Product, Sku};
use sqlx::Row;
use sqlx::any::AnyRow;

fn from_row(r: &AnyRow) -> Result<Product, sqlx::Error> {
    let sku: String = r.try_get("sku")?;
    let price: i64 = r.try_get("price")?;
    Ok(Product {
        sku: Sku::parse(&sku).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        name: r.try_get("name")?,
        price: Money::from_minor(price).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
    })
}

/// Adds or updates each product; products not listed stay as they are.
pub async fn upsert(conn: &mut Conn, products: &[Product], now: i64) -> Result<u64, sqlx::Error> {
    let mut n = 0;
    for p in products {
        n += sqlx::query(
            "INSERT INTO products (sku, name, price, active, updated_at) VALUES ($1, $2, $3, 1, $4)
             ON CONFLICT (sku) DO UPDATE SET name = excluded.name, price = excluded.price,
                 active = 1, updated_at = excluded.updated_at",
        )
        .bind(p.sku.as_str())
        .bind(&p.name)
        .bind(p.price.minor())
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(n)
}

pub async fn get(conn: &mut Conn, sku: &Sku) -> Result<Option<Product>, sqlx::Error> {
    let row = sqlx::query("SELECT sku, name, price FROM products WHERE sku = $1 AND active = 1")
        .bind(sku.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut Conn) -> Result<Vec<Product>, sqlx::Error> {
    let rows = sqlx::query("SELECT sku, name, price FROM products WHERE active = 1 ORDER BY sku")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}
