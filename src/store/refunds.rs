//! Money owed back: one row per charge that does not (or no longer) count. Stars refunds are
//! paid by the refund worker through `refundStarPayment`; provider refunds by the operator,
//! who closes them with `groupbuy refunds done CHARGE_ID`.

use super::{Conn, decode_err};
use crate::domain::payment::{RefundMethod, RefundReason};
use crate::domain::{Currency, Money, PurchaseId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One charge owed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRow {
    pub charge_id: String,
    pub purchase_id: PurchaseId,
    pub user_id: UserId,
    pub amount: Money,
    pub currency: Currency,
    pub method: RefundMethod,
    pub reason: RefundReason,
    pub done: bool,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub done_at: Option<i64>,
}

const COLUMNS: &str = "charge_id, purchase_id, user_id, amount, currency, method, reason, status, attempts, last_error, created_at, done_at";

fn from_row(r: &AnyRow) -> Result<RefundRow, sqlx::Error> {
    let charge_id: String = r.try_get("charge_id")?;
    let bad_value =
        |what: &str, value: &dyn std::fmt::Display| decode_err("refund", &charge_id, what, value);
    let method: String = r.try_get("method")?;
    let reason: String = r.try_get("reason")?;
    let status: String = r.try_get("status")?;
    let amount: i64 = r.try_get("amount")?;
    let currency: String = r.try_get("currency")?;
    Ok(RefundRow {
        charge_id: charge_id.clone(),
        purchase_id: PurchaseId::new(r.try_get("purchase_id")?),
        user_id: UserId::new(r.try_get("user_id")?),
        amount: Money::from_minor(amount).map_err(|_| bad_value("amount", &amount))?,
        currency: Currency::parse(&currency).map_err(|_| bad_value("currency", &currency))?,
        method: RefundMethod::parse(&method).ok_or_else(|| bad_value("method", &method))?,
        reason: RefundReason::parse(&reason).ok_or_else(|| bad_value("reason", &reason))?,
        done: match status.as_str() {
            "due" => false,
            "done" => true,
            _ => return Err(bad_value("status", &status)),
        },
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        done_at: r.try_get("done_at")?,
    })
}

pub struct NewRefund<'a> {
    pub charge_id: &'a str,
    pub purchase_id: PurchaseId,
    pub user_id: UserId,
    pub amount: Money,
    pub currency: Currency,
    pub method: RefundMethod,
    pub reason: RefundReason,
    pub now: i64,
}

/// Opens the refund of a charge; false when that charge already has one.
pub async fn insert(conn: &mut Conn, r: &NewRefund<'_>) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO refunds (charge_id, purchase_id, user_id, amount, currency, method, reason, status, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'due', $8, $8) ON CONFLICT (charge_id) DO NOTHING",
    )
    .bind(r.charge_id)
    .bind(r.purchase_id.get())
    .bind(r.user_id.get())
    .bind(r.amount.minor())
    .bind(r.currency.code())
    .bind(r.method.as_str())
    .bind(r.reason.as_str())
    .bind(r.now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

pub async fn get(conn: &mut Conn, charge_id: &str) -> Result<Option<RefundRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM refunds WHERE charge_id = $1"
    )))
    .bind(charge_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Stars refunds the worker should try now, oldest first.
pub async fn due_stars(
    conn: &mut Conn,
    now: i64,
    limit: i64,
) -> Result<Vec<RefundRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM refunds WHERE status = 'due' AND method = 'stars' AND next_attempt_at <= $1
         ORDER BY next_attempt_at, charge_id LIMIT $2"
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// When the worker next has a Stars refund to try.
pub async fn next_stars_at(conn: &mut Conn) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(
        "SELECT MIN(next_attempt_at) FROM refunds WHERE status = 'due' AND method = 'stars'",
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)
}

/// Closes a due refund: the money went back. False when it was not due (already done).
pub async fn mark_done(conn: &mut Conn, charge_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE refunds SET status = 'done', done_at = $2, last_error = NULL WHERE charge_id = $1 AND status = 'due'",
    )
    .bind(charge_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// A Stars refund attempt failed: try again at `at`.
pub async fn retry_later(
    conn: &mut Conn,
    charge_id: &str,
    error: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refunds SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3
         WHERE charge_id = $1 AND status = 'due'",
    )
    .bind(charge_id)
    .bind(error)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Refunds for the operator, oldest first: the due ones, or all.
pub async fn list(conn: &mut Conn, all: bool, limit: i64) -> Result<Vec<RefundRow>, sqlx::Error> {
    let filter = if all { "" } else { "WHERE status = 'due'" };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM refunds {filter} ORDER BY created_at, charge_id LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}
