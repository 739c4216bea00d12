//! Telegram updates already handled: Telegram may deliver one twice (getUpdates retries,
//! webhook redeliveries), and ids are not always increasing, so remember ids, not a maximum.

use super::Conn;

/// Claims an update inside the transaction that applies its effects; false if it was handled.
pub async fn claim(conn: &mut Conn, update_id: i64, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO processed_updates (update_id, processed_at) VALUES ($1, $2) ON CONFLICT (update_id) DO NOTHING",
    )
    .bind(update_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets update ids claimed before `before`: after a week without updates Telegram may
/// start ids afresh at a random value, which must not collide with old claims.
pub async fn prune(conn: &mut Conn, before: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM processed_updates WHERE processed_at < $1")
            .bind(before)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}
