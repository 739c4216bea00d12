//! The inbox of Telegram updates: stored before they are acknowledged, handled from here.

use super::{Backend, Conn, instances};
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

/// Takes unhandled updates for this instance (free ones, its own, those of dead instances)
/// in id order; run inside a write transaction.
pub async fn claim(
    conn: &mut Conn,
    backend: Backend,
    me: &str,
    now: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT update_id, body, claimed_by FROM inbox WHERE handled_at IS NULL AND {claimable}
         ORDER BY update_id LIMIT $3{skip}",
        claimable = instances::CLAIMABLE,
        skip = instances::skip_locked(backend),
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(me)
        .bind(instances::live_since(now))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.try_get(0)?;
        let holder: Option<String> = r.try_get(2)?;
        if holder.as_deref() != Some(me) {
            sqlx::query("UPDATE inbox SET claimed_by = $2 WHERE update_id = $1")
                .bind(id)
                .bind(me)
                .execute(&mut *conn)
                .await?;
        }
        out.push((id, r.try_get(1)?));
    }
    Ok(out)
}

/// Marks an update handled and empties its raw body: the names, shipping addresses, deep-link
/// payloads and invoice payloads in it are not needed any more; the id stays (a week) to
/// recognise a redelivery.
pub async fn mark_handled(conn: &mut Conn, update_id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inbox SET handled_at = $2, body = '' WHERE update_id = $1")
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
