//! Who may be emailed and how much: the suppression list (addresses that asked never to get
//! an invitation, campaign or reminder again, kept as keyed hashes) and the count of
//! invitation emails each organiser has had sent.

use super::Conn;
use crate::domain::{GroupId, UserId};
use sqlx::Row;

/// Adds an address (by its keyed hash) to the suppression list; true if it was not there.
pub async fn suppress(conn: &mut Conn, address_hash: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO email_suppressions (address_hash, created_at) VALUES ($1, $2) ON CONFLICT (address_hash) DO NOTHING",
    )
    .bind(address_hash)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the address with this hash must not be mailed again.
pub async fn is_suppressed(conn: &mut Conn, address_hash: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 FROM email_suppressions WHERE address_hash = $1")
        .bind(address_hash)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// Invitation emails `organiser` had sent for `group_id`, and since `since` over all groups.
pub async fn invites_sent(
    conn: &mut Conn,
    organiser: UserId,
    group_id: GroupId,
    since: i64,
) -> Result<(u32, u32), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN group_id = $2 THEN 1 ELSE 0 END), 0),
                COALESCE(SUM(CASE WHEN created_at >= $3 THEN 1 ELSE 0 END), 0)
         FROM email_invites WHERE organiser_id = $1",
    )
    .bind(organiser.get())
    .bind(group_id.get())
    .bind(since)
    .fetch_one(&mut *conn)
    .await?;
    let count = |i: usize| -> Result<u32, sqlx::Error> {
        Ok(u32::try_from(row.try_get::<i64, _>(i)?).unwrap_or(u32::MAX))
    };
    Ok((count(0)?, count(1)?))
}

/// Counts one invitation email against `organiser`.
pub async fn count_invite(
    conn: &mut Conn,
    organiser: UserId,
    group_id: GroupId,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO email_invites (organiser_id, group_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(organiser.get())
    .bind(group_id.get())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
