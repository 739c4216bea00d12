//! One-time upgrades of rows written by earlier versions, each recorded once done.

use super::Conn;

/// Whether the upgrade `name` has been done.
pub async fn done(conn: &mut Conn, name: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT 1 FROM upgrades WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Records that the upgrade `name` is done (again is a no-op).
pub async fn mark_done(conn: &mut Conn, name: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO upgrades (name, done_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
