//! Group purchases, their invited members, and settlement records.

use super::{Backend, Conn, decode_err};
use crate::domain::settlement::Terms;
use crate::domain::{Expiry, GroupId, GroupKey, GroupStatus, HeadCount, Policy, Sku, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: GroupId,
    pub key: GroupKey,
    pub sku: Sku,
    pub head_count: HeadCount,
    pub organiser_id: UserId,
    /// The chat `/newgroup` was typed in (a Telegram chat id).
    pub chat_id: i64,
    pub policy: Policy,
    pub status: GroupStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub closed_at: Option<i64>,
    /// False when its product was sold without a group discount (¶0146).
    pub discount: bool,
    /// An open head count (¶0144): `head_count` is then the most it can take.
    pub open_count: bool,
}

impl GroupRow {
    /// Whether the group's expiry has passed at `now` (never, for a group without one).
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }

    /// Its expiry, or none (¶0145).
    pub fn expiry(&self) -> Expiry {
        Expiry::from_stored(self.expires_at)
    }

    /// What decides its settlement.
    pub fn terms(&self) -> Terms {
        Terms {
            policy: self.policy,
            head_count: self.head_count,
            open_count: self.open_count,
            discount: self.discount,
        }
    }
}

const COLUMNS: &str = "id, group_key, sku, head_count, organiser_id, chat_id, policy, status, created_at, expires_at, closed_at, discount, open_count";

/// A stored 0/1 flag; anything else is a decode error.
fn flag(id: i64, what: &str, v: i64) -> Result<bool, sqlx::Error> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(decode_err("group", id, what, &v)),
    }
}

fn from_row(r: &AnyRow) -> Result<GroupRow, sqlx::Error> {
    let id: i64 = r.try_get("id")?;
    let bad = |what: &str, value: &dyn std::fmt::Display| decode_err("group", id, what, value);
    let key: String = r.try_get("group_key")?;
    let sku: String = r.try_get("sku")?;
    let head: i64 = r.try_get("head_count")?;
    let policy: String = r.try_get("policy")?;
    let status: String = r.try_get("status")?;
    Ok(GroupRow {
        id: GroupId::new(id),
        key: GroupKey::parse(&key).map_err(|_| bad("key", &key))?,
        sku: Sku::parse(&sku).map_err(|_| bad("product code", &sku))?,
        head_count: HeadCount::stored(head).map_err(|_| bad("head count", &head))?,
        organiser_id: UserId::new(r.try_get("organiser_id")?),
        chat_id: r.try_get("chat_id")?,
        policy: Policy::parse(&policy).ok_or_else(|| bad("policy", &policy))?,
        status: GroupStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        closed_at: r.try_get("closed_at")?,
        discount: flag(id, "discount flag", r.try_get("discount")?)?,
        open_count: flag(id, "open head count flag", r.try_get("open_count")?)?,
    })
}

/// A group about to be opened.
pub struct NewGroup<'a> {
    pub key: &'a GroupKey,
    pub sku: &'a Sku,
    pub head_count: HeadCount,
    pub organiser_id: UserId,
    pub chat_id: i64,
    pub policy: Policy,
    pub now: i64,
    pub expiry: Expiry,
    pub discount: bool,
    pub open_count: bool,
}

/// Opens a group; returns its id.
pub async fn insert(conn: &mut Conn, g: &NewGroup<'_>) -> Result<GroupId, sqlx::Error> {
    sqlx::query(
        "INSERT INTO group_buys (group_key, sku, head_count, organiser_id, chat_id, policy, status, created_at, expires_at, discount, open_count)
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10) RETURNING id",
    )
    .bind(g.key.as_str())
    .bind(g.sku.as_str())
    .bind(i64::from(g.head_count.get()))
    .bind(g.organiser_id.get())
    .bind(g.chat_id)
    .bind(g.policy.as_str())
    .bind(g.now)
    .bind(g.expiry.stored())
    .bind(i64::from(g.discount))
    .bind(i64::from(g.open_count))
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)
    .map(GroupId::new)
}

/// The group with this key.
pub async fn by_key(conn: &mut Conn, key: &GroupKey) -> Result<Option<GroupRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM group_buys WHERE group_key = $1"
    )))
    .bind(key.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The group with this id.
pub async fn by_id(conn: &mut Conn, id: GroupId) -> Result<Option<GroupRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM group_buys WHERE id = $1"
    )))
    .bind(id.get())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Reads a group inside a write transaction, locking its row on PostgreSQL so purchases and
/// settlement of one group are serialised (SQLite's `BEGIN IMMEDIATE` already serialises).
pub async fn lock(
    conn: &mut Conn,
    backend: Backend,
    id: GroupId,
) -> Result<Option<GroupRow>, sqlx::Error> {
    let suffix = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM group_buys WHERE id = $1{suffix}"
    )))
    .bind(id.get())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Several groups at once, locked like [`lock`] (on PostgreSQL in id order, so two lockers
/// never wait on each other in a circle).
pub async fn lock_many(
    conn: &mut Conn,
    backend: Backend,
    ids: &[GroupId],
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
            query = query.bind(id.get());
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
    ids: &[GroupId],
    status: GroupStatus,
    now: i64,
) -> Result<Vec<GroupId>, sqlx::Error> {
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
            query = query.bind(id.get());
        }
        for row in query.fetch_all(&mut *conn).await? {
            closed.push(GroupId::new(row.try_get(0)?));
        }
    }
    Ok(closed)
}

/// Moves an open group to `status`; false if it was no longer open (someone else closed it).
pub async fn close(
    conn: &mut Conn,
    id: GroupId,
    status: GroupStatus,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE group_buys SET status = $2, closed_at = $3 WHERE id = $1 AND status = 'open'",
    )
    .bind(id.get())
    .bind(status.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves an open group's expiry (`/extend`); false if it was no longer open.
pub async fn set_expiry(
    conn: &mut Conn,
    id: GroupId,
    expires_at: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE group_buys SET expires_at = $2 WHERE id = $1 AND status = 'open'")
            .bind(id.get())
            .bind(expires_at)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Open groups that are expired or filled and so must be settled, oldest first — but not an
/// unfilled group while a seat of it is held for a payment under way (it may still count),
/// nor one set aside after a failed settlement until its retry time.
pub async fn due(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<GroupId>, sqlx::Error> {
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
    rows.iter()
        .map(|r| r.try_get(0).map(GroupId::new))
        .collect()
}

/// Sets a group whose settlement failed aside until `retry_at`, with the reason.
pub async fn set_aside(
    conn: &mut Conn,
    id: GroupId,
    error: &str,
    retry_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE group_buys SET settle_error = $2, settle_retry_at = $3 WHERE id = $1")
        .bind(id.get())
        .bind(error)
        .bind(retry_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A group set aside after a failed settlement, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub id: GroupId,
    pub key: GroupKey,
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
            let id: i64 = r.try_get(0)?;
            let key: String = r.try_get(1)?;
            let retry_at: Option<i64> = r.try_get(3)?;
            Ok(SetAside {
                id: GroupId::new(id),
                key: GroupKey::parse(&key).map_err(|_| decode_err("group", id, "key", &key))?,
                error: r.try_get(2)?,
                // set_aside writes both columns together.
                retry_at: retry_at.ok_or_else(|| decode_err("group", id, "retry time", &"none"))?,
            })
        })
        .collect()
}

/// Which of `ids` have a seat held for a payment under way at `now`.
pub async fn with_unlapsed_holds(
    conn: &mut Conn,
    ids: &[GroupId],
    now: i64,
) -> Result<std::collections::HashSet<GroupId>, sqlx::Error> {
    let mut out = std::collections::HashSet::new();
    for chunk in ids.chunks(super::IN_LIST) {
        let list: Vec<String> = (2..chunk.len() + 2).map(|k| format!("${k}")).collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT group_id FROM seat_holds WHERE expires_at > $1 AND group_id IN ({})",
            list.join(", ")
        )))
        .bind(now);
        for id in chunk {
            query = query.bind(id.get());
        }
        for row in query.fetch_all(&mut *conn).await? {
            out.insert(GroupId::new(row.try_get(0)?));
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
    user_id: UserId,
    limit: i64,
) -> Result<Vec<GroupRow>, sqlx::Error> {
    for_user_from(conn, user_id, 0, limit).await
}

/// [`for_user`] from the `offset`-th group on (`/mygroups`' pages).
pub async fn for_user_from(
    conn: &mut Conn,
    user_id: UserId,
    offset: i64,
    limit: i64,
) -> Result<Vec<GroupRow>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM group_buys WHERE organiser_id = $1
            OR id IN (SELECT group_id FROM members WHERE user_id = $1)
            OR id IN (SELECT group_id FROM purchases WHERE buyer_id = $1)
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(user_id.get())
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Records that `id` repeats the group `of` (`/regroup`).
pub async fn mark_regroup(conn: &mut Conn, id: GroupId, of: GroupId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE group_buys SET regroup_of = $2 WHERE id = $1")
        .bind(id.get())
        .bind(of.get())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The repeat of group `of` that is still open and unexpired at `now`, if any.
pub async fn open_regroup_of(
    conn: &mut Conn,
    of: GroupId,
    now: i64,
) -> Result<Option<GroupRow>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM group_buys WHERE regroup_of = $1 AND status = 'open' AND expires_at > $2
         ORDER BY id DESC LIMIT 1"
    )))
    .bind(of.get())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}
