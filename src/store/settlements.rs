//! One row per settled group: how many bought, whether it filled, the rate and the points.

use super::{Conn, decode_err};
use crate::domain::{GroupId, Points, Rate};
use sqlx::Row;

/// How a group was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRow {
    pub group_id: GroupId,
    pub buyers: u32,
    pub filled: bool,
    pub rate: Rate,
    pub total_points: Points,
    pub created_at: i64,
}

/// Settlement rows for several groups, a few dozen per statement; returns how many were new
/// (a group already settled keeps its row: the primary key holds).
pub async fn insert(conn: &mut Conn, rows: &[SettlementRow]) -> Result<u64, sqlx::Error> {
    let mut inserted = 0;
    for chunk in rows.chunks(32) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p: Vec<String> = (1..=6).map(|k| format!("${}", i * 6 + k)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO settlements (group_id, buyers, filled, rate_bp, total_points, created_at)
             VALUES {} ON CONFLICT (group_id) DO NOTHING",
            values.join(", ")
        )));
        for s in chunk {
            query = query
                .bind(s.group_id.get())
                .bind(i64::from(s.buyers))
                .bind(i64::from(s.filled))
                .bind(i64::from(s.rate.basis_points()))
                .bind(s.total_points.value())
                .bind(s.created_at);
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// The settlement of a group, if it has been settled.
pub async fn of(conn: &mut Conn, group_id: GroupId) -> Result<Option<SettlementRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT group_id, buyers, filled, rate_bp, total_points, created_at FROM settlements WHERE group_id = $1",
    )
    .bind(group_id.get())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let bad =
            |what: &str, value: i64| decode_err("settlement of group", group_id, what, &value);
        let buyers: i64 = r.try_get("buyers")?;
        let rate: i64 = r.try_get("rate_bp")?;
        Ok(SettlementRow {
            group_id: GroupId::new(r.try_get("group_id")?),
            buyers: u32::try_from(buyers).map_err(|_| bad("buyer count", buyers))?,
            filled: r.try_get::<i64, _>("filled")? != 0,
            rate: u32::try_from(rate)
                .ok()
                .and_then(Rate::from_basis_points)
                .ok_or_else(|| bad("rate", rate))?,
            total_points: Points::new(r.try_get("total_points")?),
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}
