//! Settlement: what each buyer of a closed group gets back (claims 6–8, ¶0079–0088).
//!
//! Rules, in order:
//! 1. The object users are the counted purchases; the group is *filled* when they reach N.
//! 2. The rate is the tier of the buyer count if the group filled; otherwise 0 under
//!    `all_or_nothing` (¶0060) or the tier of the actual count under `partial` (¶0086).
//!    A group with an open head count (¶0144) always gets the tier of its count; a group of
//!    a product sold without discount (¶0146) always gets 0, and no region bonus.
//! 3. Each purchase earns `floor(price × rate)` (see [`Money::share`]).
//! 4. When the group earned a discount at all, buyers who share a region (see
//!    [`RegionBonus`]) each earn the bonus on top.
//! 5. When the group earned a discount at all, buyers who share a region within the
//!    operator's window (see [`RegionRate`], ¶0059) each earn its extra rate on top.
//! 6. A credit never exceeds the price of the purchase it belongs to.
//! 7. Points are credited 1 for 1 minor unit.
//! 8. A purchase reversed after settlement (an operator's `groupbuy refund`, or a refund
//!    Telegram reports) loses its own credit, taken back up to the buyer's balance at that
//!    moment ([`clawback`]): points already spent are written off, and no balance goes below
//!    zero. The other buyers keep their settled discount: the group reached its tier when it
//!    settled, and one buyer's refund does not take back what the others were given. The
//!    reversed purchase never counts toward its group again.

use super::group::{HeadCount, Policy};
use super::ids::{PurchaseId, UserId};
use super::money::{Money, Points};
use super::region::{RegionBonus, RegionCode, RegionRate, SharedRegion};
use super::tiers::{Rate, TierTable};

/// One purchase of a group being settled: its normal price, region and time of purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseLine {
    pub purchase_id: PurchaseId,
    pub buyer_id: UserId,
    pub price: Money,
    pub region: Option<RegionCode>,
    pub bought_at: i64,
}

/// What one purchase earns at settlement: its discount and region bonus, as points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub purchase_id: PurchaseId,
    pub buyer_id: UserId,
    pub discount: Money,
    /// The extra of the operator's region rate (¶0059), when the buyer qualified.
    pub region_rate: Money,
    pub region_bonus: Money,
    pub points: Points,
}

/// A settled group: whether it filled, the rate it reached and every purchase's credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub filled: bool,
    pub buyers: u32,
    pub rate: Rate,
    pub credits: Vec<Credit>,
    pub total: Points,
}

/// What a group was opened with that decides its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    pub policy: Policy,
    /// N; for an open head count, the most buyers it can take.
    pub head_count: HeadCount,
    /// An open head count (¶0144): the tier of the buyers it has, filled or not.
    pub open_count: bool,
    /// False for a product sold without a group discount (¶0146).
    pub discount: bool,
}

impl Terms {
    /// A fixed head count of a discounted product under `policy`: the classic group.
    pub fn fixed(policy: Policy, head_count: HeadCount) -> Self {
        Self {
            policy,
            head_count,
            open_count: false,
            discount: true,
        }
    }

    /// Whether `buyers` earn a discount at all (before the tier table has its say).
    pub fn earns(&self, buyers: u32) -> bool {
        self.discount
            && (buyers >= self.head_count.get()
                || self.open_count
                || self.policy == Policy::Partial)
    }
}

/// Credits each purchase its tier discount plus any region bonus, capped at its price.
pub fn settle(
    terms: Terms,
    tiers: &TierTable,
    purchases: &[PurchaseLine],
    bonus: Option<&RegionBonus>,
    region_rate: Option<&RegionRate>,
) -> Outcome {
    let buyers = u32::try_from(purchases.len()).unwrap_or(u32::MAX);
    let filled = buyers >= terms.head_count.get();
    let earned_discount = terms.earns(buyers);
    let rate = if earned_discount {
        tiers.rate_for(buyers)
    } else {
        Rate::ZERO
    };
    let credits: Vec<Credit> = purchases
        .iter()
        .map(|p| {
            let discount = p.price.share(rate.basis_points());
            let region_bonus =
                shared(bonus, p, purchases, earned_discount).map_or(Money::ZERO, |b| b.amount);
            let extra = shared(region_rate, p, purchases, earned_discount)
                .map_or(Money::ZERO, |r| p.price.share(r.extra.basis_points()));
            let uncapped = discount
                .checked_add(extra)
                .and_then(|m| m.checked_add(region_bonus))
                .unwrap_or(p.price);
            let credit = uncapped.min(p.price);
            let extra = extra.min(credit.saturating_sub(discount));
            Credit {
                purchase_id: p.purchase_id,
                buyer_id: p.buyer_id,
                discount,
                region_rate: extra,
                region_bonus: credit.saturating_sub(discount).saturating_sub(extra),
                points: Points::of(credit),
            }
        })
        .collect();
    let total = Points::new(credits.iter().map(|c| c.points.value()).sum());
    Outcome {
        filled,
        buyers,
        rate,
        credits,
        total,
    }
}

/// `rule` when purchase `p` shares its region under it (rules 4 and 5), and the group earned
/// a discount at all.
fn shared<'r, S: SharedRegion>(
    rule: Option<&'r S>,
    p: &PurchaseLine,
    all: &[PurchaseLine],
    earned: bool,
) -> Option<&'r S> {
    let region = p.region.as_ref().filter(|_| earned)?;
    let all = all.iter().map(|q| (q.region.clone(), q.bought_at));
    rule.filter(|r| r.qualifies((region, p.bought_at), all))
}

/// Points taken back from a buyer whose settled purchase is reversed (rule 7): the credit,
/// up to what the buyer still has.
pub fn clawback(credit: Points, balance: Points) -> Points {
    Points::new(credit.value().clamp(0, balance.value().max(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tiers::Tier;
    use proptest::prelude::*;

    #[test]
    fn shared_regions_within_the_window_get_the_higher_rate() {
        let rr = RegionRate {
            extra: Rate::from_basis_points(200).expect("in range"),
            min_buyers: 2,
            window_secs: 3_600,
        };
        let ps = [
            line(1, 34_800, Some("JP-TOKYO"), 0),
            line(2, 34_800, Some("JP-TOKYO"), 600),
            line(3, 34_800, Some("JP-OSAKA"), 900),
            line(4, 34_800, Some("JP-TOKYO"), 90_000),
        ];
        let out = settle(
            Terms::fixed(Policy::AllOrNothing, n(4)),
            &table(),
            &ps,
            None,
            Some(&rr),
        );
        let pts: Vec<i64> = out.credits.iter().map(|c| c.points.value()).collect();
        // 10 % = 3,480; the two Tokyo buyers an hour apart get 2 % (696) more.
        assert_eq!(pts, vec![4_176, 4_176, 3_480, 3_480]);
        // Not filled under all or nothing: no discount, no extra either.
        let none = settle(
            Terms::fixed(Policy::AllOrNothing, n(5)),
            &table(),
            &ps,
            None,
            Some(&rr),
        );
        assert_eq!(none.total, Points::ZERO);
    }

    fn table() -> TierTable {
        let t = |m, bp| Tier {
            members: m,
            rate: Rate::from_basis_points(bp).expect("in range"),
        };
        TierTable::new(vec![t(1, 0), t(2, 300), t(3, 500), t(4, 1_000)]).expect("valid")
    }

    fn line(id: i64, price: i64, region: Option<&str>, at: i64) -> PurchaseLine {
        PurchaseLine {
            purchase_id: PurchaseId::new(id),
            buyer_id: UserId::new(100 + id),
            price: Money::from_minor(price).expect("positive"),
            region: region.map(RegionCode::from_stored),
            bought_at: at,
        }
    }

    fn n(v: u32) -> HeadCount {
        HeadCount::new(i64::from(v), 1_000).expect("in range")
    }

    #[test]
    fn full_group_of_three_gets_five_percent() {
        let ps = [
            line(1, 34_800, None, 0),
            line(2, 34_800, None, 1),
            line(3, 29_800, None, 2),
        ];
        let out = settle(
            Terms::fixed(Policy::AllOrNothing, n(3)),
            &table(),
            &ps,
            None,
            None,
        );
        assert!(out.filled);
        assert_eq!(out.rate.to_string(), "5%");
        let pts: Vec<i64> = out.credits.iter().map(|c| c.points.value()).collect();
        assert_eq!(pts, vec![1_740, 1_740, 1_490]);
        assert_eq!(out.total.value(), 4_970);
    }

    #[test]
    fn unfilled_group_depends_on_policy() {
        let ps = [line(1, 34_800, None, 0), line(2, 34_800, None, 1)];
        let none = settle(
            Terms::fixed(Policy::AllOrNothing, n(3)),
            &table(),
            &ps,
            None,
            None,
        );
        assert!(!none.filled);
        assert_eq!(none.total, Points::ZERO);
        let partial = settle(
            Terms::fixed(Policy::Partial, n(3)),
            &table(),
            &ps,
            None,
            None,
        );
        assert_eq!(partial.rate.to_string(), "3%");
        assert_eq!(partial.total.value(), 2 * 1_044);
    }

    #[test]
    fn region_bonus_for_shared_regions_only() {
        let bonus = RegionBonus {
            amount: Money::from_minor(500).expect("positive"),
            min_buyers: 2,
            window_secs: 0,
        };
        let ps = [
            line(1, 34_800, Some("JP-TOKYO"), 0),
            line(2, 34_800, Some("JP-TOKYO"), 5),
            line(3, 34_800, Some("JP-OSAKA"), 9),
        ];
        let out = settle(
            Terms::fixed(Policy::AllOrNothing, n(3)),
            &table(),
            &ps,
            Some(&bonus),
            None,
        );
        let pts: Vec<i64> = out.credits.iter().map(|c| c.points.value()).collect();
        assert_eq!(pts, vec![2_240, 2_240, 1_740]);
        // No discount earned, no bonus either.
        let unfilled = settle(
            Terms::fixed(Policy::AllOrNothing, n(4)),
            &table(),
            &ps,
            Some(&bonus),
            None,
        );
        assert_eq!(unfilled.total, Points::ZERO);
    }

    fn arb_lines() -> impl Strategy<Value = Vec<PurchaseLine>> {
        proptest::collection::vec(
            (0i64..5_000_000, proptest::option::of(0u8..3), 0i64..100_000),
            0..40,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (price, region, at))| {
                    let region = region.map(|r| format!("JP-R{r}"));
                    line(i as i64, price, region.as_deref(), at)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn a_credit_never_exceeds_what_was_paid(
            ps in arb_lines(), head in 2u32..50, partial in any::<bool>(),
            bonus_amount in 0i64..10_000, window in 0i64..50_000,
        ) {
            let policy = if partial { Policy::Partial } else { Policy::AllOrNothing };
            let bonus = RegionBonus { amount: Money::from_minor(bonus_amount).expect("positive"), min_buyers: 2, window_secs: window };
            let out = settle(Terms::fixed(policy, n(head)), &table(), &ps, Some(&bonus), None);
            for (c, p) in out.credits.iter().zip(&ps) {
                prop_assert!(c.points.value() <= p.price.minor());
                prop_assert!(c.points.value() >= 0);
            }
            prop_assert_eq!(out.total.value(), out.credits.iter().map(|c| c.points.value()).sum::<i64>());
        }

        #[test]
        fn points_are_the_sum_of_price_times_rate_rounded_down(ps in arb_lines(), head in 2u32..50, partial in any::<bool>()) {
            let policy = if partial { Policy::Partial } else { Policy::AllOrNothing };
            let out = settle(Terms::fixed(policy, n(head)), &table(), &ps, None, None);
            let bp = i128::from(out.rate.basis_points());
            let expected: i128 = ps.iter().map(|p| i128::from(p.price.minor()) * bp / 10_000).sum();
            prop_assert_eq!(i128::from(out.total.value()), expected);
        }

        #[test]
        fn all_or_nothing_pays_nothing_when_not_filled(ps in arb_lines(), extra in 1u32..20) {
            let head = u32::try_from(ps.len()).expect("small") + extra;
            let bonus = RegionBonus { amount: Money::from_minor(700).expect("positive"), min_buyers: 2, window_secs: 0 };
            let out = settle(Terms::fixed(Policy::AllOrNothing, n(head.max(2))), &table(), &ps, Some(&bonus), None);
            prop_assert!(!out.filled);
            prop_assert_eq!(out.total, Points::ZERO);
        }

        #[test]
        fn more_buyers_never_lowers_the_rate(ps in arb_lines(), head in 2u32..50) {
            let out_all = settle(Terms::fixed(Policy::Partial, n(head)), &table(), &ps, None, None);
            if !ps.is_empty() {
                let fewer = settle(Terms::fixed(Policy::Partial, n(head)), &table(), &ps[..ps.len() - 1], None, None);
                prop_assert!(fewer.rate <= out_all.rate);
            }
        }
    }

    proptest! {
        #[test]
        fn a_product_without_discount_credits_nothing(ps in arb_lines(), head in 2u32..50, partial in any::<bool>(), open in any::<bool>()) {
            let policy = if partial { Policy::Partial } else { Policy::AllOrNothing };
            let bonus = RegionBonus { amount: Money::from_minor(700).expect("positive"), min_buyers: 2, window_secs: 0 };
            let terms = Terms { policy, head_count: n(head), open_count: open, discount: false };
            let out = settle(terms, &table(), &ps, Some(&bonus), None);
            prop_assert_eq!(out.rate, Rate::ZERO);
            prop_assert_eq!(out.total, Points::ZERO);
            prop_assert!(out.credits.iter().all(|c| c.points == Points::ZERO && c.region_bonus == Money::ZERO));
        }

        #[test]
        fn an_open_head_count_gets_the_tier_of_its_buyers(ps in arb_lines(), cap in 2u32..50) {
            let terms = Terms { policy: Policy::AllOrNothing, head_count: n(cap), open_count: true, discount: true };
            let out = settle(terms, &table(), &ps, None, None);
            prop_assert_eq!(out.rate, table().rate_for(u32::try_from(ps.len()).expect("small")));
        }
    }

    proptest! {
        #[test]
        fn a_region_rate_adds_its_extra_and_never_exceeds_the_price(
            ps in arb_lines(), head in 2u32..50, extra_bp in 0u32..=10_000, window in 0i64..50_000,
        ) {
            let rr = RegionRate { extra: Rate::from_basis_points(extra_bp).expect("in range"), min_buyers: 2, window_secs: window };
            let terms = Terms { policy: Policy::Partial, head_count: n(head), open_count: false, discount: true };
            let plain = settle(terms, &table(), &ps, None, None);
            let raised = settle(terms, &table(), &ps, None, Some(&rr));
            for ((a, b), p) in plain.credits.iter().zip(&raised.credits).zip(&ps) {
                prop_assert!(b.points >= a.points);
                prop_assert!(b.points.value() <= p.price.minor());
                prop_assert_eq!(b.points.value(), b.discount.minor() + b.region_rate.minor() + b.region_bonus.minor());
            }
            prop_assert_eq!(plain.rate, raised.rate);
        }
    }

    proptest! {
        /// Taking back a reversed purchase's credit never drives a balance below zero and
        /// never takes more than the credit.
        #[test]
        fn a_clawback_never_overdraws(credit in 0i64..1_000_000, balance in -1_000i64..1_000_000) {
            let taken = clawback(Points::new(credit), Points::new(balance)).value();
            prop_assert!(taken >= 0 && taken <= credit);
            prop_assert!(balance.max(0) - taken >= 0);
            if balance >= credit { prop_assert_eq!(taken, credit); }
        }
    }
}
