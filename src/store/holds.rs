//! Seats held for invoices between an approved pre-checkout and the payment (see
//! [`crate::domain::payment`]). A hold is unlapsed while `expires_at > now`.

use super::Conn;
use crate::domain::{GroupId, UserId};
use sqlx::Row;

/// Holds a seat of `group_id` for the invoice `payload` until `expires_at` (an approved
/// pre-checkout asked again keeps one hold, with the later expiry).
pub async fn hold(
    conn: &mut Conn,
    payload: &str,
    group_id: GroupId,
    buyer_id: UserId,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO seat_holds (payload, group_id, buyer_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (payload) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(payload)
    .bind(group_id.get())
    .bind(buyer_id.get())
    .bind(now)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// What a payer sees of the other holds on a group: unlapsed holds of other payers, unlapsed
/// holds of other payers who were invited (they are among the reserved seats too), and
/// whether the payer has an unlapsed hold for another of their invoices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Others {
    pub held: u32,
    pub held_by_invited: u32,
    pub mine_elsewhere: bool,
}

/// The other unlapsed holds on a group, seen from `buyer_id`'s invoice `payload`.
pub async fn others(
    conn: &mut Conn,
    group_id: GroupId,
    buyer_id: UserId,
    payload: &str,
    now: i64,
) -> Result<Others, sqlx::Error> {
    let row = sqlx::query(
        "SELECT
            CAST(COALESCE(SUM(CASE WHEN h.buyer_id <> $2 THEN 1 ELSE 0 END), 0) AS BIGINT),
            CAST(COALESCE(SUM(CASE WHEN h.buyer_id <> $2 AND EXISTS (SELECT 1 FROM members m
                 WHERE m.group_id = h.group_id AND m.user_id = h.buyer_id) THEN 1 ELSE 0 END), 0) AS BIGINT),
            CAST(COALESCE(SUM(CASE WHEN h.buyer_id = $2 THEN 1 ELSE 0 END), 0) AS BIGINT)
         FROM seat_holds h WHERE h.group_id = $1 AND h.payload <> $3 AND h.expires_at > $4",
    )
    .bind(group_id.get())
    .bind(buyer_id.get())
    .bind(payload)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let n = |i: usize| -> Result<u32, sqlx::Error> {
        Ok(u32::try_from(row.try_get::<i64, _>(i)?).unwrap_or(u32::MAX))
    };
    Ok(Others {
        held: n(0)?,
        held_by_invited: n(1)?,
        mine_elsewhere: n(2)? > 0,
    })
}

/// Whether `buyer_id` holds an unlapsed seat of the group (a payment under way).
pub async fn is_paying(
    conn: &mut Conn,
    group_id: GroupId,
    buyer_id: UserId,
    now: i64,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "SELECT 1 FROM seat_holds WHERE group_id = $1 AND buyer_id = $2 AND expires_at > $3",
    )
    .bind(group_id.get())
    .bind(buyer_id.get())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// Whether the invoice `payload` holds an unlapsed seat.
pub async fn is_unlapsed(conn: &mut Conn, payload: &str, now: i64) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 FROM seat_holds WHERE payload = $1 AND expires_at > $2")
            .bind(payload)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// The payment of `payload` used (or can no longer use) its hold.
pub async fn release(conn: &mut Conn, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM seat_holds WHERE payload = $1")
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A payer's payment counted: their other holds on the group (for other invoices) free their
/// seats, and the points those invoices held are released too. A payment of one of those
/// invoices arriving later is a repeat, and refunded.
pub async fn release_others_of(
    conn: &mut Conn,
    group_id: GroupId,
    buyer_id: UserId,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM point_holds WHERE payload IN
            (SELECT payload FROM seat_holds WHERE group_id = $1 AND buyer_id = $2)",
    )
    .bind(group_id.get())
    .bind(buyer_id.get())
    .execute(&mut *conn)
    .await?;
    Ok(
        sqlx::query("DELETE FROM seat_holds WHERE group_id = $1 AND buyer_id = $2")
            .bind(group_id.get())
            .bind(buyer_id.get())
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

/// Forgets holds that lapsed before `before`.
pub async fn prune(conn: &mut Conn, before: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM seat_holds WHERE expires_at <= $1")
        .bind(before)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}
