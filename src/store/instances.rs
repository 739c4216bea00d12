//! The running instances of the service on this database, for claiming work.
//!
//! Each instance has a random id, registers at start and heartbeats every
//! [`HEARTBEAT_SECS`]. Inbox and outbox rows it takes carry its id in `claimed_by`; a row
//! claimed by an instance that has not heartbeated for [`DEAD_AFTER_SECS`] can be taken by
//! another. On SQLite there is one instance by design, so a new one forgets the others at
//! once (a restart takes over immediately).

use super::{Backend, Conn};

pub const HEARTBEAT_SECS: u64 = 5;
pub const DEAD_AFTER_SECS: i64 = 20;

/// The earliest heartbeat of a live instance, given now.
pub fn live_since(now: i64) -> i64 {
    now - DEAD_AFTER_SECS
}

pub async fn register(
    conn: &mut Conn,
    backend: Backend,
    id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        sqlx::query("DELETE FROM instances")
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn heartbeat(conn: &mut Conn, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE instances SET heartbeat_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A clean stop: release what this instance claimed but did not start, and leave.
pub async fn retire(conn: &mut Conn, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET claimed_by = NULL WHERE claimed_by = $1 AND sending_since IS NULL",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE inbox SET claimed_by = NULL WHERE claimed_by = $1 AND handled_at IS NULL")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM instances WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Drops instances dead for a long time (a day), so the table stays small.
pub async fn forget_dead(conn: &mut Conn, now: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
        .bind(now - 86_400)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// The claim condition on a table with `claimed_by`: free, mine, or held by the dead.
pub const CLAIMABLE: &str = "(claimed_by IS NULL OR claimed_by = $1 OR claimed_by NOT IN (SELECT id FROM instances WHERE heartbeat_at > $2))";

/// `FOR UPDATE SKIP LOCKED` where concurrent claimers exist (PostgreSQL).
pub fn skip_locked(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
    }
}
