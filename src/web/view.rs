//! What the group page and the receipt share: finding a group by a key from a URL, and
//! saying in words where the group is in its life.

use super::error::WebError;
use crate::app::Ctx;
use crate::domain::{Expiry, GroupKey, GroupStatus, Rate};
use crate::replies::{duration, when};
use crate::store::Conn;
use crate::store::groups::{self, GroupRow};
use crate::store::settlements;

/// The group of a key from a URL. Malformed and unknown keys are the same [`WebError::NotFound`].
pub async fn group_by_key(conn: &mut Conn, raw: &str) -> Result<GroupRow, WebError> {
    let key = GroupKey::parse(raw).map_err(|_| WebError::NotFound)?;
    groups::by_key(conn, &key).await?.ok_or(WebError::NotFound)
}

/// "2026-11-24T09:00:00Z", for `<time datetime=…>`.
pub fn iso(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Where a group is, in a headline and one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// Taking purchases now.
    pub open: bool,
    pub headline: String,
    pub detail: String,
}

pub async fn phase(
    ctx: &Ctx,
    conn: &mut Conn,
    g: &GroupRow,
    bought: u32,
) -> Result<Phase, WebError> {
    let now = ctx.now();
    let seats = if g.open_count {
        format!("{bought} buyers")
    } else {
        format!("{bought} of {} seats taken", g.head_count)
    };
    let (open, headline, detail) = match g.status {
        GroupStatus::Open if g.expiry() == Expiry::Never => (
            true,
            "Open".to_string(),
            crate::replies::group::NO_EXPIRY.to_string(),
        ),
        GroupStatus::Open if !g.is_expired(now) => (
            true,
            "Open".to_string(),
            format!(
                "Open until {} ({} left).",
                when(g.expires_at),
                duration(g.expires_at - now)
            ),
        ),
        GroupStatus::Open => (
            false,
            "This group purchase has expired".into(),
            format!(
                "It expired on {} with {seats}. Its buyers are being told the outcome.",
                when(g.expires_at)
            ),
        ),
        GroupStatus::Settled => (
            false,
            "This group purchase has closed".into(),
            settled_detail(conn, g).await?,
        ),
        GroupStatus::Cancelled => (
            false,
            "This group purchase was cancelled".into(),
            "Its organiser withdrew it before anyone bought.".into(),
        ),
    };
    Ok(Phase {
        open,
        headline,
        detail,
    })
}

async fn settled_detail(conn: &mut Conn, g: &GroupRow) -> Result<String, WebError> {
    let Some(s) = settlements::of(conn, g.id).await? else {
        return Ok("It has closed.".into());
    };
    let rate = s.rate;
    let head = if g.open_count {
        format!(
            "It closed on {} with {} buyers",
            when(s.created_at),
            s.buyers
        )
    } else {
        format!(
            "It closed on {} with {} of {} seats taken",
            when(s.created_at),
            s.buyers,
            g.head_count
        )
    };
    Ok(if rate > Rate::ZERO {
        format!("{head}: {rate} of the price came back to each buyer as points.")
    } else {
        format!("{head}, too few for a discount.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_795_510_800), "2026-11-24T09:00:00Z");
    }
}
