//! Tokens at rest are keyed hashes (64 hex digits, see `secrets`); rows written before that
//! held the plain token, and are hashed at start-up, once.

use super::Conn;
use crate::secrets::{Keyed, Purpose};
use sqlx::Row;

/// Hashes plain receipt tokens and invite codes; returns how many rows it changed.
pub async fn hash_plain(conn: &mut Conn, keyed: &Keyed) -> Result<u64, sqlx::Error> {
    let mut changed = 0;
    for (table, column, purpose) in [
        ("purchases", "receipt_token", Purpose::Receipt),
        ("members", "invite_code", Purpose::Invite),
    ] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL AND LENGTH({column}) <> 64"
        )))
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let id: i64 = r.try_get(0)?;
            let plain: String = r.try_get(1)?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET {column} = $2 WHERE id = $1"
            )))
            .bind(id)
            .bind(keyed.hash(purpose, &plain))
            .execute(&mut *conn)
            .await?;
            changed += 1;
        }
    }
    Ok(changed)
}
