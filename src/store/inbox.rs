//! The inbox of Telegram updates: stored before they are acknowledged, handled from here.

use super::Conn;
use sqlx::Row;

/// Stores an update; false if this update id is already here (a redelivery).
pub async fn accept(
    conn: &mut Conn,
    update_id: i64,
    body: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO inbox (update_id, body, received_at) VALUES ($1, $2, $3) ON CONFLICT (update_id) DO NOTHING",
    )
    .bind(update_id)
    .bind(body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Updates not handled yet, in id order.
pub async fn pending(conn: &mut Conn, limit: i64) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT update_id, body FROM inbox WHERE handled_at IS NULL ORDER BY update_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

pub async fn mark_handled(conn: &mut Conn, update_id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inbox SET handled_at = $2 WHERE update_id = $1")
        .bind(update_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forgets handled updates received before `before`.
pub async fn prune(conn: &mut Conn, before: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM inbox WHERE handled_at IS NOT NULL AND received_at < $1")
            .bind(before)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

pub async fn count_pending(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) FROM inbox WHERE handled_at IS NULL")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)
}
