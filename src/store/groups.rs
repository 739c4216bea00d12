//! Group purchases, their invited members, and settlement records.

use super::{Backend, Conn};
use crate::domain::{GroupStatus, MemberRef, Policy};
use sqlx::Row;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: i64,
    pub key: String,
    pub sku: String,
    pub head_count: u32,
    pub organiser_id: i64,
    pub chat_id: i64,
    pub policy: Policy,
    pub status: GroupStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub closed_at: Option<i64>,
}

impl GroupRow {
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

const COLUMNS: &str = "id, group_key, sku, head_count, organiser_id, chat_id, policy, status, created_at, expires_at, closed_at";

fn decode_err(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unexpected {what} in the database").into())
}

fn from_row(r: &AnyRow) -> Result<GroupRow, sqlx::Error> {
    let policy: String = r.try_get("policy")?;
    let status: String = r.try_get("status")?;
    let head: i64 = r.try_get("head_count")?;
    Ok(GroupRow {
        id: r.try_get("id")?,
        key: r.try_get("group_key")?,
        sku: r.try_get("sku")?,
        head_count: u32::try_from(head).map_err(|_| decode_err("head count"))?,
        organiser_id: r.try_get("organiser_id")?,
        chat_id: r.try_get("chat_id")?,
        policy: Policy::parse(&policy).ok_or_else(|| decode_err("policy"))?,
        status: GroupStatus::parse(&status).ok_or_else(|| decode_err("status"))?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        closed_at: r.try_get("closed_at")?,
    })
}

pub struct NewGroup<'a> {
    pub key: &'a str,
    pub sku: &'a str,
    pub head_count: u32,
    pub organiser_id: i64,
    pub chat_id: i64,
    pub policy: Policy,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert(conn: &mut Conn, g: &NewGroup<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO group_buys (group_key, sku, head_count, organiser_id, chat_id, policy, status, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8) RETURNING id",
    )
    .bind(g.key)
    .bind(g.sku)
    .bind(i64::from(g.head_count))
    .bind(g.organiser_id)
    .bind(g.chat_id)
    .bind(g.policy.as_str())
    .bind(g.now)
    .bind(g.expires_at)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)
}

pub async fn by_key(conn: &mut Conn, key: &str) -> Result<Option<GroupRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM group_buys WHERE group_key = $1"
    )))
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_id(conn: &mut Conn, id: i64) -> Result<Option<GroupRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM group_buys WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Reads a group inside a write transaction, locking its row on PostgreSQL so purchases and
/// settlement of one group are serialised (SQLite's `BEGIN IMMEDIATE` already serialises).
pub async fn lock(
    conn: &mut Conn,
    backend: Backend,
    id: i64,
) -> Result<Option<GroupRow>, sqlx::Error> {
    let suffix = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM group_buys WHERE id = $1{suffix}"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Several groups at once, locked like [`lock`] (on PostgreSQL in id order, so two lockers
/// never wait on each other in a circle).
pub async fn lock_many(
    conn: &mut Conn,
    backend: Backend,
    ids: &[i64],
) -> Result<Vec<GroupRow>, sqlx::Error> {
    let suffix = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    };
    // Sorted across chunks too, so locks are always taken in id order.
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(super::IN_LIST) {
        let list: Vec<String> = (1..=chunk.len()).map(|k| format!("${k}")).collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM group_buys WHERE id IN ({}) ORDER BY id{suffix}",
            list.join(", ")
        )));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            out.push(from_row(&row)?);
        }
    }
    Ok(out)
}

/// Moves the open groups among `ids` to `status`; returns those it moved (the others were no
/// longer open: someone else closed them).
pub async fn close_many(
    conn: &mut Conn,
    ids: &[i64],
    status: GroupStatus,
    now: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    let mut closed = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(super::IN_LIST) {
        let list: Vec<String> = (3..chunk.len() + 3).map(|k| format!("${k}")).collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE group_buys SET status = $1, closed_at = $2 WHERE status = 'open' AND id IN ({})
             RETURNING id",
            list.join(", ")
        )))
        .bind(status.as_str())
        .bind(now);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            closed.push(row.try_get(0)?);
        }
    }
    Ok(closed)
}

/// Moves an open group to `status`; false if it was no longer open (someone else closed it).
pub async fn close(
    conn: &mut Conn,
    id: i64,
    status: GroupStatus,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE group_buys SET status = $2, closed_at = $3 WHERE id = $1 AND status = 'open'",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Open groups that are expired or filled and so must be settled, oldest first — but not an
/// unfilled group while a seat of it is held for a payment under way (it may still count),
/// nor one set aside after a failed settlement until its retry time.
pub async fn due(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT g.id FROM (
            SELECT g.id, g.expires_at, g.head_count,
                   (SELECT COUNT(*) FROM purchases p WHERE p.group_id = g.id AND p.counted = 1) AS bought
              FROM group_buys g
             WHERE g.status = 'open' AND (g.settle_retry_at IS NULL OR g.settle_retry_at <= $1)
         ) g
         WHERE g.bought >= g.head_count
            OR (g.expires_at <= $1 AND NOT EXISTS
                (SELECT 1 FROM seat_holds h WHERE h.group_id = g.id AND h.expires_at > $1))
         ORDER BY g.expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

/// Sets a group whose settlement failed aside until `retry_at`, with the reason.
pub async fn set_aside(
    conn: &mut Conn,
    id: i64,
    error: &str,
    retry_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE group_buys SET settle_error = $2, settle_retry_at = $3 WHERE id = $1")
        .bind(id)
        .bind(error)
        .bind(retry_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A group set aside after a failed settlement, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub id: i64,
    pub key: String,
    pub error: String,
    pub retry_at: i64,
}

/// Open groups whose settlement failed, most recent retry first.
pub async fn set_aside_list(conn: &mut Conn, limit: i64) -> Result<Vec<SetAside>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, group_key, settle_error, settle_retry_at FROM group_buys
          WHERE status = 'open' AND settle_error IS NOT NULL ORDER BY settle_retry_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SetAside {
                id: r.try_get(0)?,
                key: r.try_get(1)?,
                error: r.try_get(2)?,
                retry_at: r.try_get::<Option<i64>, _>(3)?.unwrap_or_default(),
            })
        })
        .collect()
}

/// Which of `ids` have a seat held for a payment under way at `now`.
pub async fn with_unlapsed_holds(
    conn: &mut Conn,
    ids: &[i64],
    now: i64,
) -> Result<std::collections::HashSet<i64>, sqlx::Error> {
    let mut out = std::collections::HashSet::new();
    for chunk in ids.chunks(super::IN_LIST) {
        let list: Vec<String> = (2..chunk.len() + 2).map(|k| format!("${k}")).collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT group_id FROM seat_holds WHERE expires_at > $1 AND group_id IN ({})",
            list.join(", ")
        )))
        .bind(now);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            out.insert(row.try_get(0)?);
        }
    }
    Ok(out)
}

/// When the sweep next has work: the earliest expiry among open groups, a held seat of an
/// expired one lapsing, or a set-aside group's retry, whichever comes first after `now`.
pub async fn next_expiry(conn: &mut Conn, now: i64) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT MIN(t) FROM (
            SELECT CASE WHEN settle_retry_at > expires_at THEN settle_retry_at ELSE expires_at END AS t
              FROM group_buys WHERE status = 'open'
            UNION ALL
            SELECT h.expires_at AS t FROM seat_holds h WHERE h.expires_at > $1
         ) AS due WHERE t > $1",
    )
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    row.try_get(0)
}

/// Groups a user organised, was invited to, or bought in; newest first.
pub async fn for_user(
    conn: &mut Conn,
    user_id: i64,
    limit: i64,
) -> Result<Vec<GroupRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM group_buys WHERE organiser_id = $1
            OR id IN (SELECT group_id FROM members WHERE user_id = $1)
            OR id IN (SELECT group_id FROM purchases WHERE buyer_id = $1)
         ORDER BY created_at DESC, id DESC LIMIT $2"
    )))
    .bind(user_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub id: i64,
    pub group_id: i64,
    pub member: MemberRef,
    pub invite_code: Option<String>,
    pub user_id: Option<i64>,
    pub prompted_at: Option<i64>,
}

const MEMBER_COLUMNS: &str = "id, group_id, kind, value, invite_code, user_id, prompted_at";

fn member_from_row(r: &AnyRow) -> Result<MemberRow, sqlx::Error> {
    let kind: String = r.try_get("kind")?;
    let value: String = r.try_get("value")?;
    Ok(MemberRow {
        id: r.try_get("id")?,
        group_id: r.try_get("group_id")?,
        member: MemberRef::from_row(&kind, &value).ok_or_else(|| decode_err("member"))?,
        invite_code: r.try_get("invite_code")?,
        user_id: r.try_get("user_id")?,
        prompted_at: r.try_get("prompted_at")?,
    })
}

pub async fn insert_member(
    conn: &mut Conn,
    group_id: i64,
    member: &MemberRef,
    invite_code: Option<&str>,
    user_id: Option<i64>,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO members (group_id, kind, value, invite_code, user_id) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(group_id)
    .bind(member.kind())
    .bind(member.value())
    .bind(invite_code)
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)
}

pub async fn members_of(conn: &mut Conn, group_id: i64) -> Result<Vec<MemberRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE group_id = $1 ORDER BY id"
    )))
    .bind(group_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(member_from_row).collect()
}

/// Members of open, unexpired groups who are this Telegram user (by id or username) and have
/// not been prompted yet: the claim-11 "upon access" prompts.
pub async fn unprompted_for(
    conn: &mut Conn,
    user_id: i64,
    username: Option<&str>,
    now: i64,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM members m WHERE m.prompted_at IS NULL
            AND (m.user_id = $3 OR (m.user_id IS NULL AND ((m.kind = 'user_id' AND m.value = $1) OR (m.kind = 'username' AND m.value = $2))))
            AND m.group_id IN (SELECT id FROM group_buys WHERE status = 'open' AND expires_at > $4)
         ORDER BY m.id"
    )))
    .bind(user_id.to_string())
    .bind(username.map(str::to_ascii_lowercase).unwrap_or_default())
    .bind(user_id)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(member_from_row).collect()
}

pub async fn member_by_invite(
    conn: &mut Conn,
    code: &str,
) -> Result<Option<MemberRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE invite_code = $1"
    )))
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// The member row of a group that is this Telegram user, if they were invited.
pub async fn member_for_user(
    conn: &mut Conn,
    group_id: i64,
    user_id: i64,
    username: Option<&str>,
) -> Result<Option<MemberRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE group_id = $1
            AND (user_id = $2 OR (user_id IS NULL AND ((kind = 'user_id' AND value = $3) OR (kind = 'username' AND value = $4))))
         ORDER BY id LIMIT 1"
    )))
    .bind(group_id)
    .bind(user_id)
    .bind(user_id.to_string())
    .bind(username.map(str::to_ascii_lowercase).unwrap_or_default())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// Binds a member row to the Telegram user it turned out to be.
pub async fn bind_member(conn: &mut Conn, member_id: i64, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE members SET user_id = $2 WHERE id = $1")
        .bind(member_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn mark_prompted(conn: &mut Conn, member_id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE members SET prompted_at = $2 WHERE id = $1 AND prompted_at IS NULL")
        .bind(member_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRow {
    pub group_id: i64,
    pub buyers: i64,
    pub filled: bool,
    pub rate_bp: i64,
    pub total_points: i64,
    pub created_at: i64,
}

/// Settlement rows for several groups, a few dozen per statement; returns how many were new
/// (a group already settled keeps its row: the primary key holds).
pub async fn insert_settlements(
    conn: &mut Conn,
    rows: &[SettlementRow],
) -> Result<u64, sqlx::Error> {
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
                .bind(s.group_id)
                .bind(s.buyers)
                .bind(i64::from(s.filled))
                .bind(s.rate_bp)
                .bind(s.total_points)
                .bind(s.created_at);
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

pub async fn settlement(
    conn: &mut Conn,
    group_id: i64,
) -> Result<Option<SettlementRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT group_id, buyers, filled, rate_bp, total_points, created_at FROM settlements WHERE group_id = $1",
    )
    .bind(group_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(SettlementRow {
            group_id: r.try_get("group_id")?,
            buyers: r.try_get("buyers")?,
            filled: r.try_get::<i64, _>("filled")? != 0,
            rate_bp: r.try_get("rate_bp")?,
            total_points: r.try_get("total_points")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}
