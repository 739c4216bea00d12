//! Who may pay for a seat, how a product is charged, and what becomes of a payment that
//! arrives (claims 1, 4, 12): pure rules, used by the pre-checkout check, by the recording of
//! a payment and by the refund paths alike.
//!
//! The promise to a buyer: **every payment either counts toward its group or comes back.**
//! - Approving a pre-checkout *holds* a seat for that invoice for [`SEAT_HOLD_SECS`]; a held
//!   seat is taken for everyone else, so the last seat is never charged twice.
//! - A payment whose hold is unlapsed counts however late its update is processed (a backlog,
//!   a restart): the seat was promised while the group was open, and the sweep does not settle
//!   a group while a hold on it is unlapsed.
//! - A payment that cannot count (a repeat, a closed group, a lapsed hold on a group that
//!   filled or closed meanwhile, points spent meanwhile) is recorded and refunded.

use super::catalog::{Product, ProductKind};

/// How long an approved pre-checkout holds its seat (and the points it redeems). Telegram
/// charges within seconds of the approval and delivers `successful_payment` right after; ten
/// minutes covers a restart or a backlog of updates many times over, while a buyer who
/// abandons the payment sheet keeps a seat from others (and an expired group from settling)
/// for at most that long.
pub const SEAT_HOLD_SECS: i64 = 600;

/// The currency code of Telegram Stars.
pub const STARS: &str = "XTR";

/// How an invoice for a product is charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    /// Through the payment provider, in the catalog currency's minor units; `ship` asks for
    /// the shipping address (physical goods).
    Provider { amount: i64, ship: bool },
    /// In Telegram Stars (digital goods), one price line, no points.
    Stars { stars: u32 },
}

impl Charge {}

/// Why a product cannot be sold right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSellable {
    /// Physical goods need a payment provider, and none is configured.
    NeedsProvider,
}

/// How `product` is charged when `redeem` points are used on it: physical goods through the
/// provider with the address (never in Stars), digital goods in Stars at their own Stars price
/// (points, being in the catalog currency, are not redeemed on them).
pub fn charge_for(product: &Product, redeem: i64, provider: bool) -> Result<Charge, NotSellable> {
    match (product.kind, product.stars) {
        (ProductKind::Digital, Some(stars)) => Ok(Charge::Stars { stars }),
        (kind, _) if provider => Ok(Charge::Provider {
            amount: product.price.minor() - redeem,
            ship: kind == ProductKind::Physical,
        }),
        _ => Err(NotSellable::NeedsProvider),
    }
}

/// How many points may be redeemed on a product: none on Stars; otherwise at least a tenth of
/// the price (and at least one unit) is paid in money, since providers refuse a zero charge.
pub fn max_redeemable(product: &Product, balance: i64) -> i64 {
    if product.kind == ProductKind::Digital && product.stars.is_some() {
        return 0;
    }
    let price = product.price.minor();
    let keep = (price / 10).max(1);
    balance.clamp(0, (price - keep).max(0))
}

/// The seats of a group as one payer sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seats {
    pub head_count: u32,
    /// Counted purchases.
    pub counted: u32,
    /// Unlapsed seat holds of other invoices (other payers, or this payer's other invoices
    /// are reported in [`Payer::paying_elsewhere`]).
    pub held_by_others: u32,
    /// Invited members other than this payer who have neither a seat nor a hold.
    pub reserved_for_others: u32,
}

/// The payer, as far as admission cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Payer {
    /// Already holds a counted seat in the group.
    pub has_seat: bool,
    /// Holds a seat for another of their invoices in the group (an unlapsed hold).
    pub paying_elsewhere: bool,
    /// Was named by the organiser.
    pub invited: bool,
}

/// Why a payer is not given a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    AlreadyBought,
    /// Another invoice of theirs for this group is being paid.
    AlreadyPaying,
    /// No seat left; `being_paid` when the last ones are held by payments under way.
    Full {
        being_paid: bool,
    },
    /// The free seats are kept for invited members.
    NotInvited,
}

/// Whether the payer may take a seat: not bought yet, not paying another invoice, a seat that
/// is neither counted nor held, and (unless invited) one not kept for an invited member.
pub fn admit(seats: &Seats, payer: &Payer) -> Result<(), Refusal> {
    if payer.has_seat {
        return Err(Refusal::AlreadyBought);
    }
    if payer.paying_elsewhere {
        return Err(Refusal::AlreadyPaying);
    }
    let taken = seats.counted.saturating_add(seats.held_by_others);
    if taken >= seats.head_count {
        return Err(Refusal::Full {
            being_paid: seats.held_by_others > 0 && seats.counted < seats.head_count,
        });
    }
    if !payer.invited && taken.saturating_add(seats.reserved_for_others) >= seats.head_count {
        return Err(Refusal::NotInvited);
    }
    Ok(())
}

/// The state of the seat hold an arriving payment's invoice was given at pre-checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Unlapsed,
    /// Lapsed, or never made (a hold is pruned some time after it lapses).
    None,
}

/// Why a payment does not count and is refunded. Stored with the refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundReason {
    /// The group had expired, settled or been cancelled, and no unlapsed hold kept a seat.
    Late,
    /// Every seat was taken when the payment arrived (its hold had lapsed).
    Full,
    /// The payer already held a seat in the group.
    Repeat,
    /// The points the invoice redeemed were spent meanwhile.
    Points,
    /// The group was cancelled.
    Closed,
    /// An operator's `groupbuy refund`, or a refund Telegram reported.
    Reversed,
}

impl RefundReason {
    /// The stored form, e.g. `late` or `reversed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Late => "late",
            Self::Full => "full",
            Self::Repeat => "repeat",
            Self::Points => "points",
            Self::Closed => "closed",
            Self::Reversed => "reversed",
        }
    }

    /// Reads the stored form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Late,
            Self::Full,
            Self::Repeat,
            Self::Points,
            Self::Closed,
            Self::Reversed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// The group a payment arrives for, as it stands when the payment is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Open { expired: bool },
    Settled,
    Cancelled,
}

/// What becomes of an arriving payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Count,
    Refund(RefundReason),
}

impl Verdict {
    /// Why the payment is refunded; None when it counts.
    pub fn refund_reason(self) -> Option<RefundReason> {
        match self {
            Verdict::Count => None,
            Verdict::Refund(reason) => Some(reason),
        }
    }
}

/// Judges a payment as it is recorded. `points_short`: the invoice redeems more points than
/// the payer has left after every other unlapsed hold.
pub fn judge(
    group: GroupState,
    hold: Hold,
    seats: &Seats,
    payer: &Payer,
    points_short: bool,
) -> Verdict {
    use RefundReason as R;
    if payer.has_seat {
        return Verdict::Refund(R::Repeat);
    }
    let expired = match group {
        GroupState::Cancelled => return Verdict::Refund(R::Closed),
        GroupState::Settled => return Verdict::Refund(R::Late),
        GroupState::Open { expired } => expired,
    };
    if points_short {
        return Verdict::Refund(R::Points);
    }
    match hold {
        // The seat was kept for this invoice: it counts, expired or not (the check against N
        // guards against a hold granted on a stale count).
        Hold::Unlapsed if seats.counted.saturating_add(seats.held_by_others) < seats.head_count => {
            Verdict::Count
        }
        Hold::Unlapsed => Verdict::Refund(R::Full),
        Hold::None if expired => Verdict::Refund(R::Late),
        Hold::None => match admit(
            seats,
            &Payer {
                paying_elsewhere: false,
                ..*payer
            },
        ) {
            Ok(()) => Verdict::Count,
            Err(Refusal::AlreadyBought) => Verdict::Refund(R::Repeat),
            Err(_) => Verdict::Refund(R::Full),
        },
    }
}

/// How a refund is paid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundMethod {
    /// `refundStarPayment`, automatically and in full.
    Stars,
    /// The Bot API cannot refund provider payments: the operator refunds through the
    /// provider's dashboard and closes it with `groupbuy refunds done CHARGE_ID`.
    Provider,
}

impl RefundMethod {
    /// Stars for a payment in `XTR`, the provider for any other currency.
    pub fn for_currency(currency: &str) -> Self {
        if currency == STARS {
            Self::Stars
        } else {
            Self::Provider
        }
    }

    /// The stored form: `stars` or `provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stars => "stars",
            Self::Provider => "provider",
        }
    }

    /// Reads the stored form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stars" => Some(Self::Stars),
            "provider" => Some(Self::Provider),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Money, Sku};
    use proptest::prelude::*;

    fn product(kind: ProductKind, stars: Option<u32>) -> Product {
        Product {
            sku: Sku::parse("camera").expect("valid"),
            name: "Camera".into(),
            price: Money::from_minor(34_800).expect("positive"),
            kind,
            stars,
            discount: true,
        }
    }

    #[test]
    fn physical_goods_need_the_provider_and_never_go_in_stars() {
        let p = product(ProductKind::Physical, None);
        assert_eq!(
            charge_for(&p, 1_000, true),
            Ok(Charge::Provider {
                amount: 33_800,
                ship: true
            })
        );
        assert_eq!(charge_for(&p, 0, false), Err(NotSellable::NeedsProvider));
        let d = product(ProductKind::Digital, Some(120));
        assert_eq!(charge_for(&d, 0, true), Ok(Charge::Stars { stars: 120 }));
        assert_eq!(charge_for(&d, 0, false), Ok(Charge::Stars { stars: 120 }));
        assert_eq!(max_redeemable(&d, 10_000), 0);
        assert_eq!(max_redeemable(&p, 1_740), 1_740);
        assert_eq!(max_redeemable(&p, 100_000), 31_320);
        assert_eq!(max_redeemable(&p, -5), 0);
    }

    #[test]
    fn the_last_seat_goes_to_one_payer() {
        let seats = Seats {
            head_count: 2,
            counted: 1,
            held_by_others: 1,
            reserved_for_others: 0,
        };
        assert_eq!(
            admit(&seats, &Payer::default()),
            Err(Refusal::Full { being_paid: true })
        );
        let free = Seats {
            held_by_others: 0,
            ..seats
        };
        assert_eq!(admit(&free, &Payer::default()), Ok(()));
        let kept = Seats {
            reserved_for_others: 1,
            ..free
        };
        assert_eq!(admit(&kept, &Payer::default()), Err(Refusal::NotInvited));
        let invited = Payer {
            invited: true,
            ..Payer::default()
        };
        assert_eq!(admit(&kept, &invited), Ok(()));
    }

    #[test]
    fn a_held_seat_counts_however_late_and_a_lapsed_one_does_not() {
        let seats = Seats {
            head_count: 2,
            counted: 1,
            ..Seats::default()
        };
        let open_expired = GroupState::Open { expired: true };
        let p = Payer::default();
        assert_eq!(
            judge(open_expired, Hold::Unlapsed, &seats, &p, false),
            Verdict::Count
        );
        assert_eq!(
            judge(open_expired, Hold::None, &seats, &p, false),
            Verdict::Refund(RefundReason::Late)
        );
        assert_eq!(
            judge(GroupState::Settled, Hold::Unlapsed, &seats, &p, false),
            Verdict::Refund(RefundReason::Late)
        );
        assert_eq!(
            judge(GroupState::Cancelled, Hold::Unlapsed, &seats, &p, false),
            Verdict::Refund(RefundReason::Closed)
        );
        let mine = Payer {
            has_seat: true,
            ..p
        };
        assert_eq!(
            judge(
                GroupState::Open { expired: false },
                Hold::Unlapsed,
                &seats,
                &mine,
                false
            ),
            Verdict::Refund(RefundReason::Repeat)
        );
        assert_eq!(
            judge(
                GroupState::Open { expired: false },
                Hold::Unlapsed,
                &seats,
                &p,
                true
            ),
            Verdict::Refund(RefundReason::Points)
        );
    }

    fn seats() -> impl Strategy<Value = Seats> {
        (2u32..8, 0u32..9, 0u32..9, 0u32..9).prop_map(|(n, c, h, r)| Seats {
            head_count: n,
            counted: c.min(n),
            held_by_others: h,
            reserved_for_others: r,
        })
    }

    fn payer() -> impl Strategy<Value = Payer> {
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(s, e, i)| Payer {
            has_seat: s,
            paying_elsewhere: e,
            invited: i,
        })
    }

    proptest! {
        /// Admission never promises a seat beyond N, counting the seats being paid for.
        #[test]
        fn admission_never_oversells(s in seats(), p in payer()) {
            if admit(&s, &p).is_ok() {
                prop_assert!(s.counted + s.held_by_others < s.head_count);
                prop_assert!(!p.has_seat && !p.paying_elsewhere);
                if !p.invited {
                    prop_assert!(s.counted + s.held_by_others + s.reserved_for_others < s.head_count);
                }
            }
        }

        /// A payment counts only into a free seat of an open group, and never twice per payer.
        #[test]
        fn a_payment_counts_only_into_a_free_seat(
            s in seats(), p in payer(), expired in any::<bool>(), held in any::<bool>(),
            short in any::<bool>(), state in 0u8..3,
        ) {
            let group = match state {
                0 => GroupState::Open { expired },
                1 => GroupState::Settled,
                _ => GroupState::Cancelled,
            };
            let hold = if held { Hold::Unlapsed } else { Hold::None };
            if judge(group, hold, &s, &p, short) == Verdict::Count {
                let open = matches!(group, GroupState::Open { .. });
                prop_assert!(open);
                prop_assert!(s.counted < s.head_count);
                prop_assert!(!p.has_seat && !short);
                prop_assert!(held || !expired);
            }
        }
    }
}
