//! Who may take a seat (claims 1, 12): the store's view of a group's seats for one payer —
//! counted purchases, seats held for payments under way, seats kept for invited members —
//! judged by the pure rules of [`crate::domain::payment`]. Used by the buy buttons, the
//! group card, the pre-checkout check and the recording of a payment alike.

use super::{AppResult, Person};
use crate::domain::payment::{self, Payer, Refusal, Seats};
use crate::replies::UserError;
use crate::store::groups::GroupRow;
use crate::store::{Conn, holds, members, purchases};

/// The seats of a group as `person` sees them when paying the invoice `payload` (empty: any
/// invoice), and the person as admission cares.
pub async fn seats_for(
    conn: &mut Conn,
    group: &GroupRow,
    person: &Person,
    payload: &str,
    now: i64,
) -> AppResult<(Seats, Payer)> {
    let has_seat = purchases::has_seat(conn, group.id, person.id).await?;
    let counted = purchases::count_counted(conn, group.id).await?;
    let invited = members::for_user(conn, group.id, person.id, person.username.as_deref())
        .await?
        .is_some();
    let others = holds::others(conn, group.id, person.id, payload, now).await?;
    let reserved = purchases::count_reserved(conn, group.id).await?;
    let reserved_for_others = reserved
        .saturating_sub(u32::from(invited && !has_seat))
        .saturating_sub(others.held_by_invited);
    Ok((
        Seats {
            head_count: group.head_count.get(),
            counted,
            held_by_others: others.held,
            reserved_for_others,
        },
        Payer {
            has_seat,
            paying_elsewhere: others.mine_elsewhere,
            invited,
        },
    ))
}

/// The reply to a refused seat.
pub fn refusal(group: &GroupRow, r: Refusal) -> UserError {
    let key = group.key.clone();
    match r {
        Refusal::AlreadyBought => UserError::AlreadyBought { key },
        Refusal::AlreadyPaying => UserError::AlreadyPaying { key },
        Refusal::Full { being_paid: true } => UserError::SeatBeingPaid { key },
        Refusal::Full { being_paid: false } => UserError::GroupFull {
            key,
            seats: group.head_count.get(),
        },
        Refusal::NotInvited => UserError::NotInvited { key },
    }
}

/// Whether this person may take a seat now: not bought yet, not paying for one already, a
/// seat neither counted nor held for someone else's payment, and either invited or a seat not
/// kept for the invited.
pub async fn check_can_buy(
    conn: &mut Conn,
    group: &GroupRow,
    person: &Person,
    now: i64,
) -> AppResult<()> {
    let (seats, payer) = seats_for(conn, group, person, "", now).await?;
    payment::admit(&seats, &payer).map_err(|r| refusal(group, r).into())
}
