//! Instance-wide mutual exclusion for work only one instance may do at a time (long polling,
//! the settlement sweep). PostgreSQL: a session advisory lock on a connection taken out of
//! the pool, so the lock dies with the process or the connection. SQLite: one instance by
//! design, so the lock is always granted.

use super::{Backend, Store};
use sqlx::{AnyConnection, Connection};

/// Advisory lock keys (arbitrary, fixed).
pub const POLLING: i64 = 0x6762_706f_6c6c; // "gbpoll"
pub const SWEEP: i64 = 0x6762_7377_6570; // "gbswep"

/// A held lock; release it with [`Held::release`] (dropping it closes its connection, which
/// releases it too).
pub struct Held {
    conn: Option<AnyConnection>,
    key: i64,
}

/// Takes the lock if it is free.
pub async fn try_take(store: &Store, key: i64) -> Result<Option<Held>, sqlx::Error> {
    if store.backend() == Backend::Sqlite {
        return Ok(Some(Held { conn: None, key }));
    }
    let mut conn = store.pool().acquire().await?.detach();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut conn)
        .await?;
    if got {
        Ok(Some(Held {
            conn: Some(conn),
            key,
        }))
    } else {
        let _ = conn.close().await;
        Ok(None)
    }
}

impl Held {
    /// Whether the lock is still ours (its connection is alive).
    pub async fn still_held(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(c) => c.ping().await.is_ok(),
        }
    }

    pub async fn release(mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.key)
                .execute(&mut c)
                .await;
            let _ = c.close().await;
        }
    }
}
