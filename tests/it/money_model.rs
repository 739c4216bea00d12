//! The money model (issue [money]): a state-machine property test against the real store.
//!
//! Each proptest case opens a fresh database (SQLite, or PostgreSQL with
//! `GROUPBUY_TEST_DB=postgres`), seeds a few buyers (some with points) and groups (head
//! counts 2–4, some expiring within minutes), then runs 150–300 random operations straight
//! through the app functions — no bot running: invoices opened, pre-checked, abandoned, paid
//! (on time, late, forwarded to someone else, twice), refunds reported by Telegram (right,
//! with a wrong amount or buyer, for an unknown charge, again), operator refunds and payouts,
//! the clock moved and the sweep run, and "crashes" (a write transaction dropped half-way).
//!
//! A model follows every answer the app gives: which charge counts, is owed back or was paid
//! back, who got which settlement credit, which points went out and came back. After EVERY
//! step [`check_invariants`] compares the store with the model and checks the promises:
//! 1. every ledger transaction sums to zero in one currency;
//! 2. each buyer's points balance equals the model's (seeds + credits − redemptions +
//!    returns − clawbacks, each compared per kind of ledger transaction) and is ≥ 0;
//! 3. every charge is exactly one of counted / refund due / refunded, as the model says;
//! 4. no group has more counted purchases than its head count;
//! 5. no group settles twice, a settled group has its one settlement and vice versa;
//!
//! and cash, sales and refunds due match the purchases and refunds. Some outcomes are also
//! predicted: a payer who already holds a seat is refunded (repeat), a payment into a
//! settled group is refunded (late), and a payment whose pre-checkout was approved minutes
//! ago (its seat hold unlapsed) counts.

use crate::db::Db;
use crate::helpers::{database_url, library_ctx};
use crate::support::{FakeBotApi, SmtpSink};
use groupbuy::app::purchase::{self, Address, Payload, Payment, Recorded};
use groupbuy::app::refund::{self, Refusal as RefundRefusal, Reported};
use groupbuy::app::{AppError, Ctx, Person, settle};
use groupbuy::domain::payment::{RefundReason, SEAT_HOLD_SECS};
use groupbuy::replies::UserError;
use groupbuy::store::{holds, ledger, purchases, updates};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestError, TestRunner};
use sqlx::Row;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Instant;

const PRICE: i64 = 34_800;
/// `payment::max_redeemable` for the camera: a tenth of the price is always paid in money.
const MAX_REDEEM: i64 = PRICE - PRICE / 10;
const CURRENCY: &str = "JPY";
const BUYERS: usize = 5;
const MAX_GROUPS: usize = 40;
/// Real time that may pass during one case, on top of the clock's advances: a prediction
/// about a hold or an expiry is only made this far from its boundary.
const MARGIN: i64 = 30;

// ---- operations ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Expiry {
    M5,
    M15,
    H1,
    D7,
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expiry::M5 => "5m",
            Expiry::M15 => "15m",
            Expiry::H1 => "1h",
            Expiry::D7 => "7d",
        })
    }
}

/// One of the remembered invoices (or payments): mostly one of the latest few, so that
/// open → pre-checkout → pay chains happen often.
#[derive(Debug, Clone, Copy)]
struct Pick {
    recent: bool,
    index: Idx,
}

/// An index into a list whose length is known only when the operation runs.
#[derive(Debug, Clone, Copy)]
struct Idx(u8);

impl Idx {
    fn index(&self, len: usize) -> usize {
        usize::from(self.0) % len
    }
}

impl Pick {
    fn of(&self, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        Some(if self.recent {
            len - 1 - self.index.index(len.min(3))
        } else {
            self.index.index(len)
        })
    }
}

/// A group for a new invoice: mostly one the model knows is still open.
#[derive(Debug, Clone, Copy)]
struct GroupPick {
    open: bool,
    index: Idx,
}

#[derive(Debug, Clone, Copy)]
enum Report {
    /// As Telegram would: the buyer, the amount, the charge.
    Correct,
    WrongAmount,
    WrongBuyer,
    UnknownCharge,
    /// The last refund update delivered again.
    SameUpdateAgain,
}

#[derive(Debug, Clone)]
enum Op {
    /// `/newgroup camera N [@buyer] EXPIRY`.
    NewGroup {
        head: u32,
        expiry: Expiry,
        invite: Option<usize>,
    },
    /// An invoice for `buyer` in a group, redeeming `redeem_pct` % of what they may redeem.
    OpenInvoice {
        buyer: usize,
        group: GroupPick,
        redeem_pct: u8,
        nonce: u8,
    },
    PreCheckout {
        inv: Pick,
    },
    /// The invoice forwarded to another buyer: their pre-checkout is refused (wrong buyer);
    /// with `pay`, a payment by them arrives anyway.
    Forward {
        inv: Pick,
        to: usize,
        pay: bool,
    },
    /// The buyer closes the payment sheet: nothing happens.
    Abandon {
        inv: Pick,
    },
    /// The invoice's buyer pays it (approved or not), after `late_by` seconds if set.
    Pay {
        inv: Pick,
        late_by: Option<i64>,
    },
    /// The normal flow: invoice, pre-checkout, and the payment if approved.
    Buy {
        buyer: usize,
        group: GroupPick,
        redeem_pct: u8,
        nonce: u8,
    },
    /// A recorded payment delivered again: the same update, or a new update, same charge.
    Duplicate {
        paid: Pick,
        same_update: bool,
    },
    TelegramRefund {
        paid: Pick,
        how: Report,
    },
    /// `groupbuy refund CHARGE` (None: a charge nobody paid).
    OperatorRefund {
        paid: Option<Pick>,
    },
    /// `groupbuy refunds done CHARGE` (None: a charge nobody paid).
    MarkPaid {
        paid: Option<Pick>,
    },
    Advance {
        secs: i64,
    },
    /// The clock moves, then the sweep runs.
    Sweep {
        secs: i64,
    },
    /// A payment's writes done by hand in a write transaction that is dropped uncommitted;
    /// with `retry`, the real payment (same update, same charge) is recorded afterwards.
    Crash {
        inv: Pick,
        retry: bool,
    },
}

#[derive(Debug, Clone)]
struct Case {
    /// Head count, expiry, invited buyer of the groups there from the start.
    groups: Vec<(u32, Expiry, Option<usize>)>,
    /// Points each buyer has from the start.
    seeds: Vec<i64>,
    /// None: nothing happens at this step. Every operation shrinks to None (and only to
    /// None: one try each), so a failing case shrinks to the operations that matter
    /// however long it was.
    ops: Vec<Option<Op>>,
}

impl Case {
    /// The case as a person reads it: the steps that do something, numbered, up to `last`.
    fn steps(&self, last: Option<usize>) -> String {
        let mut s = format!(
            "groups (head, expiry, invited): {:?}\nseeds: {:?}\n",
            self.groups, self.seeds
        );
        for (i, op) in self
            .ops
            .iter()
            .enumerate()
            .take(last.map_or(usize::MAX, |l| l + 1))
        {
            if let Some(op) = op {
                s.push_str(&format!("  step {i}: {op:?}\n"));
            }
        }
        s
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    (prop::bool::weighted(0.7), any::<u8>().prop_map(Idx))
        .prop_map(|(recent, index)| Pick { recent, index })
}

fn group_pick() -> impl Strategy<Value = GroupPick> {
    (prop::bool::weighted(0.85), any::<u8>().prop_map(Idx))
        .prop_map(|(open, index)| GroupPick { open, index })
}

fn expiry() -> impl Strategy<Value = Expiry> {
    prop_oneof![
        Just(Expiry::M5),
        Just(Expiry::M15),
        Just(Expiry::H1),
        Just(Expiry::D7)
    ]
}

fn group_spec() -> impl Strategy<Value = (u32, Expiry, Option<usize>)> {
    (2u32..=4, expiry(), prop::option::weighted(0.3, 0..BUYERS))
}

fn redeem_pct() -> impl Strategy<Value = u8> {
    prop_oneof![2 => Just(0u8), 1 => Just(100u8), 1 => 1u8..100]
}

fn secs() -> impl Strategy<Value = i64> {
    prop_oneof![Just(30i64), Just(200), Just(650), Just(1_000), Just(4_000)]
}

fn op() -> impl Strategy<Value = Op> {
    let report = prop_oneof![
        4 => Just(Report::Correct),
        1 => Just(Report::WrongAmount),
        1 => Just(Report::WrongBuyer),
        1 => Just(Report::UnknownCharge),
        1 => Just(Report::SameUpdateAgain),
    ];
    Union::new_weighted(vec![
        (
            2,
            (2u32..=4, expiry(), prop::option::weighted(0.3, 0..BUYERS))
                .prop_map(|(head, expiry, invite)| Op::NewGroup {
                    head,
                    expiry,
                    invite,
                })
                .boxed(),
        ),
        (
            6,
            (0..BUYERS, group_pick(), redeem_pct(), any::<u8>())
                .prop_map(|(buyer, group, redeem_pct, nonce)| Op::OpenInvoice {
                    buyer,
                    group,
                    redeem_pct,
                    nonce,
                })
                .boxed(),
        ),
        (6, pick().prop_map(|inv| Op::PreCheckout { inv }).boxed()),
        (
            2,
            (pick(), 0..BUYERS, any::<bool>())
                .prop_map(|(inv, to, pay)| Op::Forward { inv, to, pay })
                .boxed(),
        ),
        (1, pick().prop_map(|inv| Op::Abandon { inv }).boxed()),
        (
            7,
            (pick(), prop::option::weighted(0.25, secs()))
                .prop_map(|(inv, late_by)| Op::Pay { inv, late_by })
                .boxed(),
        ),
        (
            6,
            (0..BUYERS, group_pick(), redeem_pct(), any::<u8>())
                .prop_map(|(buyer, group, redeem_pct, nonce)| Op::Buy {
                    buyer,
                    group,
                    redeem_pct,
                    nonce,
                })
                .boxed(),
        ),
        (
            2,
            (pick(), any::<bool>())
                .prop_map(|(paid, same_update)| Op::Duplicate { paid, same_update })
                .boxed(),
        ),
        (
            3,
            (pick(), report)
                .prop_map(|(paid, how)| Op::TelegramRefund { paid, how })
                .boxed(),
        ),
        (
            3,
            prop::option::weighted(0.9, pick())
                .prop_map(|paid| Op::OperatorRefund { paid })
                .boxed(),
        ),
        (
            2,
            prop::option::weighted(0.9, pick())
                .prop_map(|paid| Op::MarkPaid { paid })
                .boxed(),
        ),
        (1, secs().prop_map(|secs| Op::Advance { secs }).boxed()),
        (2, secs().prop_map(|secs| Op::Sweep { secs }).boxed()),
        (
            1,
            (pick(), any::<bool>())
                .prop_map(|(inv, retry)| Op::Crash { inv, retry })
                .boxed(),
        ),
    ])
}

fn case(ops: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(group_spec(), 2..=3),
        prop::collection::vec(
            prop_oneof![Just(0i64), Just(0), Just(2_000), Just(20_000), Just(40_000)],
            BUYERS,
        ),
        prop::collection::vec(prop::option::weighted(0.999, op().no_shrink()), ops),
    )
        .prop_map(|(groups, seeds, ops)| Case { groups, seeds, ops })
}

// ---- the model ------------------------------------------------------------------------------

/// What became of a charge, as the app's answers said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charge {
    Counted,
    Due,
    Done,
}

#[derive(Debug, Clone)]
struct GroupM {
    id: i64,
    head: u32,
    expires_at: i64,
    settled: bool,
}

#[derive(Debug, Clone)]
struct Invoice {
    buyer: usize,
    group: usize,
    payload: String,
    total: i64,
    redeem: i64,
    /// The model clock when its pre-checkout was last approved.
    approved_at: Option<i64>,
    /// The buyer's clawbacks when it was approved (a clawback may take held points).
    clawbacks_at_approval: u32,
    /// Payments recorded for this invoice (any payer).
    payments: u32,
}

#[derive(Debug, Clone)]
struct PaidM {
    charge: String,
    update_id: i64,
    payload: String,
    payer: usize,
    group: usize,
    total: i64,
    redeem: i64,
    state: Charge,
    /// The settlement credit of this purchase (0 until its group settles).
    credit: i64,
}

/// A buyer's points, by kind of ledger transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PointsM {
    seeded: i64,
    credits: i64,
    redeemed: i64,
    returned: i64,
    clawed: i64,
}

impl PointsM {
    fn balance(&self) -> i64 {
        self.seeded + self.credits - self.redeemed + self.returned - self.clawed
    }
}

#[derive(Debug, Clone, Default)]
struct Stats {
    /// Pre-checkout refusals by the reply's code.
    refused_by: BTreeMap<&'static str, u64>,
    cases: u64,
    ops: u64,
    skipped: u64,
    invoices: u64,
    approved: u64,
    holds_refused: u64,
    wrong_buyer: u64,
    payments: u64,
    counted: u64,
    refunded_on_arrival: u64,
    reversed: u64,
    paid_out: u64,
    duplicates: u64,
    refusals: u64,
    crashes: u64,
    settlements: u64,
    predictions: u64,
    points_checks: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        for (k, v) in &o.refused_by {
            *self.refused_by.entry(k).or_default() += v;
        }
        self.cases += o.cases;
        self.ops += o.ops;
        self.skipped += o.skipped;
        self.invoices += o.invoices;
        self.approved += o.approved;
        self.holds_refused += o.holds_refused;
        self.wrong_buyer += o.wrong_buyer;
        self.payments += o.payments;
        self.counted += o.counted;
        self.refunded_on_arrival += o.refunded_on_arrival;
        self.reversed += o.reversed;
        self.paid_out += o.paid_out;
        self.duplicates += o.duplicates;
        self.refusals += o.refusals;
        self.crashes += o.crashes;
        self.settlements += o.settlements;
        self.predictions += o.predictions;
        self.points_checks += o.points_checks;
    }
}

#[derive(Debug, Default)]
struct Model {
    /// Seconds the clock was advanced.
    offset: i64,
    groups: Vec<GroupM>,
    invoices: Vec<Invoice>,
    paid: Vec<PaidM>,
    points: Vec<PointsM>,
    clawbacks: Vec<u32>,
    next_update: i64,
    next_charge: u64,
    last_report_update: Option<i64>,
    stats: Stats,
}

impl Model {
    fn update_id(&mut self) -> i64 {
        self.next_update += 1;
        self.next_update
    }

    fn charge_id(&mut self, prefix: &str) -> String {
        self.next_charge += 1;
        format!("{prefix}-{}", self.next_charge)
    }

    fn has_seat(&self, group: usize, payer: usize) -> bool {
        self.paid
            .iter()
            .any(|p| p.group == group && p.payer == payer && p.state == Charge::Counted)
    }

    /// A counted purchase stops counting: its points come back, and if its group settled,
    /// its credit is taken back as far as the balance allows. Returns the clawback.
    fn uncount(&mut self, i: usize, to: Charge) -> i64 {
        let (payer, redeem, credit, group) = {
            let p = &self.paid[i];
            (p.payer, p.redeem, p.credit, p.group)
        };
        self.paid[i].state = to;
        self.points[payer].returned += redeem;
        let mut clawed = 0;
        if self.groups[group].settled {
            clawed = credit.clamp(0, self.points[payer].balance().max(0));
            self.points[payer].clawed += clawed;
            if clawed > 0 {
                self.clawbacks[payer] += 1;
            }
        }
        clawed
    }
}

/// The discount of the example configuration's tiers, in basis points, for `buyers`.
fn rate_bp(buyers: usize) -> i64 {
    match buyers {
        0 | 1 => 0,
        2 => 300,
        3 => 500,
        _ => 1_000,
    }
}

// ---- running a case -----------------------------------------------------------------------

type R<T> = Result<T, TestCaseError>;

trait OrFail<T> {
    fn or_fail(self, what: &str) -> R<T>;
}

impl<T, E: fmt::Debug> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: &str) -> R<T> {
        self.map_err(|e| TestCaseError::fail(format!("{what}: {e:?}")))
    }
}

fn fail<T>(why: String) -> R<T> {
    Err(TestCaseError::fail(why))
}

struct World {
    ctx: Ctx,
    buyers: Vec<Person>,
    organiser: Person,
    m: Model,
}

fn tokyo_address() -> Address {
    Address {
        country_code: "JP".into(),
        state: "Tokyo".into(),
        city: "Chiyoda".into(),
        street_line1: "1-1 Marunouchi".into(),
        street_line2: String::new(),
        post_code: "100-0001".into(),
    }
}

/// Counts of every table a use case writes, to see that something changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot(Vec<i64>);

async fn snapshot(ctx: &Ctx) -> R<Snapshot> {
    let row = sqlx::query(
        "SELECT
            CAST((SELECT COUNT(*) FROM purchases) AS BIGINT),
            CAST((SELECT COUNT(*) FROM purchases WHERE counted = 1) AS BIGINT),
            CAST((SELECT COUNT(*) FROM ledger) AS BIGINT),
            CAST((SELECT COALESCE(SUM(ABS(amount)), 0) FROM ledger) AS BIGINT),
            CAST((SELECT COUNT(*) FROM refunds) AS BIGINT),
            CAST((SELECT COUNT(*) FROM refunds WHERE status = 'done') AS BIGINT),
            CAST((SELECT COUNT(*) FROM settlements) AS BIGINT),
            CAST((SELECT COUNT(*) FROM group_buys WHERE status = 'open') AS BIGINT),
            CAST((SELECT COUNT(*) FROM seat_holds) AS BIGINT),
            CAST((SELECT COUNT(*) FROM point_holds) AS BIGINT),
            CAST((SELECT COUNT(*) FROM shipping_requests) AS BIGINT),
            CAST((SELECT COUNT(*) FROM outbox) AS BIGINT)",
    )
    .fetch_one(ctx.store.pool())
    .await
    .or_fail("snapshot")?;
    let mut v = Vec::with_capacity(12);
    for i in 0..12 {
        v.push(row.try_get::<i64, _>(i).or_fail("snapshot column")?);
    }
    Ok(Snapshot(v))
}

impl World {
    async fn setup(ctx: Ctx, case: &Case) -> R<Self> {
        let buyers: Vec<Person> = (0..BUYERS)
            .map(|i| Person {
                id: groupbuy::domain::UserId::new(60_001 + i as i64),
                username: Some(format!("buyer_{i}")),
                first_name: format!("Buyer{i}"),
            })
            .collect();
        let organiser = Person {
            id: groupbuy::domain::UserId::new(3_001),
            username: Some("olga_org".into()),
            first_name: "Olga".into(),
        };
        for n in 1..=5u32 {
            let configured = i64::from(ctx.config.tiers.rate_for(n).basis_points());
            prop_assert_eq!(
                configured,
                rate_bp(n as usize),
                "the model's tiers are the configuration's"
            );
        }
        for p in buyers.iter().chain([&organiser]) {
            groupbuy::app::access::touch(&ctx, p, true)
                .await
                .or_fail("touch")?;
        }
        let mut m = Model {
            points: vec![PointsM::default(); BUYERS],
            clawbacks: vec![0; BUYERS],
            next_update: 1_000_000,
            ..Model::default()
        };
        let mut tx = ctx.store.write().await.or_fail("begin seeding")?;
        let now = ctx.now();
        for (i, &seed) in case.seeds.iter().enumerate() {
            if seed == 0 {
                continue;
            }
            let txn = format!("seed:{}", buyers[i].id);
            ledger::post(
                &mut tx,
                &ledger::Refs {
                    txn: &txn,
                    currency: CURRENCY,
                    group_id: None,
                    purchase_id: None,
                    memo: "Points from earlier groups",
                    now,
                },
                &[
                    ledger::Entry::discounts(seed),
                    ledger::Entry::points(buyers[i].id, -seed),
                ],
            )
            .await
            .or_fail("seed points")?;
            m.points[i].seeded = seed;
        }
        tx.commit().await.or_fail("commit seeding")?;
        let mut w = World {
            ctx,
            buyers,
            organiser,
            m,
        };
        for &(head, expiry, invite) in &case.groups {
            w.new_group(head, expiry, invite).await?;
        }
        Ok(w)
    }

    async fn new_group(&mut self, head: u32, expiry: Expiry, invite: Option<usize>) -> R<()> {
        if self.m.groups.len() >= MAX_GROUPS {
            self.m.stats.skipped += 1;
            return Ok(());
        }
        let invite = invite
            .map(|b| {
                format!(
                    " @{}",
                    self.buyers[b].username.as_deref().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let args = format!("camera {head}{invite} {expiry}");
        let uid = self.m.update_id();
        let created = groupbuy::app::new_group::create(
            &self.ctx,
            uid,
            &self.organiser,
            self.organiser.id.get(),
            &args,
        )
        .await
        .or_fail("new group")?;
        let Some(created) = created else {
            return fail(format!(
                "/newgroup {args} with a fresh update id was a duplicate"
            ));
        };
        let mut conn = self.ctx.store.read().await.or_fail("conn")?;
        let row = groupbuy::store::groups::by_id(&mut conn, created.group_id)
            .await
            .or_fail("group")?
            .ok_or_else(|| TestCaseError::fail("the new group is missing"))?;
        self.m.groups.push(GroupM {
            id: row.id.get(),
            head: row.head_count.get(),
            expires_at: row.expires_at,
            settled: false,
        });
        Ok(())
    }

    fn open_invoice(
        &mut self,
        buyer: usize,
        group: &GroupPick,
        redeem_pct: u8,
        nonce: u8,
    ) -> Option<usize> {
        if self.m.groups.is_empty() {
            return None;
        }
        let open: Vec<usize> = (0..self.m.groups.len())
            .filter(|&g| !self.m.groups[g].settled)
            .collect();
        let g = if group.open && !open.is_empty() {
            open[group.index.index(open.len())]
        } else {
            group.index.index(self.m.groups.len())
        };
        let usable = self.m.points[buyer].balance().clamp(0, MAX_REDEEM);
        let redeem = usable * i64::from(redeem_pct) / 100;
        let n = self.m.invoices.len();
        let payload = Payload {
            group_id: groupbuy::domain::GroupId::new(self.m.groups[g].id),
            buyer_id: self.buyers[buyer].id,
            price: groupbuy::domain::Money::from_minor(PRICE).expect("price"),
            redeem: groupbuy::domain::Points::new(redeem),
            sku: groupbuy::domain::Sku::parse("camera").expect("sku"),
            nonce: format!("{:06x}{nonce:02x}", n % 0x100_0000),
        }
        .encode();
        self.m.invoices.push(Invoice {
            buyer,
            group: g,
            payload,
            total: PRICE - redeem,
            redeem,
            approved_at: None,
            clawbacks_at_approval: 0,
            payments: 0,
        });
        self.m.stats.invoices += 1;
        Some(n)
    }

    /// The invoice's buyer asks for the pre-checkout; true when approved.
    async fn pre_checkout(&mut self, i: usize) -> R<bool> {
        let inv = self.m.invoices[i].clone();
        let group = self.m.groups[inv.group].clone();
        let person = self.buyers[inv.buyer].clone();
        let r = purchase::pre_checkout(&self.ctx, &person, CURRENCY, inv.total, &inv.payload).await;
        let open = !group.settled && self.ctx.now() < group.expires_at - MARGIN;
        if group.settled {
            self.m.stats.predictions += 1;
            prop_assert!(
                matches!(r, Err(AppError::User(UserError::Settled { .. }))),
                "pre-checkout in a settled group: {r:?}"
            );
        } else if open && self.m.has_seat(inv.group, inv.buyer) {
            self.m.stats.predictions += 1;
            prop_assert!(
                matches!(r, Err(AppError::User(UserError::AlreadyBought { .. }))),
                "pre-checkout of a buyer with a seat: {r:?}"
            );
        }
        match r {
            Ok(()) => {
                let inv = &mut self.m.invoices[i];
                inv.approved_at = Some(self.m.offset);
                inv.clawbacks_at_approval = self.m.clawbacks[inv.buyer];
                self.m.stats.approved += 1;
                Ok(true)
            }
            Err(AppError::User(e)) => {
                self.m.stats.holds_refused += 1;
                *self.m.stats.refused_by.entry(e.code()).or_default() += 1;
                Ok(false)
            }
            Err(e) => fail(format!("pre-checkout failed: {e:?}")),
        }
    }

    /// `payer` pays invoice `i` (update and charge given, for the crash retry).
    async fn pay(&mut self, i: usize, payer: usize, update_id: i64, charge: String) -> R<()> {
        let inv = self.m.invoices[i].clone();
        let group = self.m.groups[inv.group].clone();
        let hold_unlapsed = inv
            .approved_at
            .is_some_and(|t| self.m.offset - t <= SEAT_HOLD_SECS - MARGIN);
        // What the rules promise, where the model knows enough to say.
        let expect: Option<Option<RefundReason>> = if self.m.has_seat(inv.group, payer) {
            Some(Some(RefundReason::Repeat))
        } else if group.settled {
            Some(Some(RefundReason::Late))
        } else if payer == inv.buyer
            && inv.payments == 0
            && hold_unlapsed
            && self.m.clawbacks[payer] == inv.clawbacks_at_approval
        {
            Some(None)
        } else {
            None
        };
        let person = self.buyers[payer].clone();
        let payment = Payment {
            currency: CURRENCY.into(),
            total: inv.total,
            payload: inv.payload.clone(),
            charge_id: charge.clone(),
            provider_charge_id: format!("prov-{charge}"),
            recipient: Some(person.first_name.clone()),
            address: Some(tokyo_address()),
        };
        let r = purchase::record(&self.ctx, update_id, &person, &payment)
            .await
            .or_fail("record a payment")?;
        let Recorded::New { refunded, .. } = r else {
            return fail(format!(
                "a new charge {charge} (update {update_id}) was taken for a duplicate"
            ));
        };
        if let Some(expected) = expect {
            self.m.stats.predictions += 1;
            prop_assert_eq!(
                refunded,
                expected,
                "payment of invoice {} ({:?}) by buyer {} (approved at {:?}, clock +{}): verdict",
                i,
                inv,
                payer,
                inv.approved_at,
                self.m.offset
            );
        }
        self.m.stats.payments += 1;
        self.m.invoices[i].payments += 1;
        self.m.points[payer].redeemed += inv.redeem;
        let state = match refunded {
            None => {
                self.m.stats.counted += 1;
                Charge::Counted
            }
            Some(_) => {
                self.m.stats.refunded_on_arrival += 1;
                self.m.points[payer].returned += inv.redeem;
                Charge::Due
            }
        };
        self.m.paid.push(PaidM {
            charge,
            update_id,
            payload: inv.payload,
            payer,
            group: inv.group,
            total: inv.total,
            redeem: inv.redeem,
            state,
            credit: 0,
        });
        Ok(())
    }

    fn advance(&mut self, secs: i64) {
        self.ctx.clock.advance(secs);
        self.m.offset += secs;
    }

    async fn apply(&mut self, op: &Op) -> R<()> {
        self.m.stats.ops += 1;
        let invoices = self.m.invoices.len();
        let paid = self.m.paid.len();
        match op {
            Op::NewGroup {
                head,
                expiry,
                invite,
            } => self.new_group(*head, *expiry, *invite).await?,
            Op::OpenInvoice {
                buyer,
                group,
                redeem_pct,
                nonce,
            } => {
                if self
                    .open_invoice(*buyer, group, *redeem_pct, *nonce)
                    .is_none()
                {
                    self.m.stats.skipped += 1;
                }
            }
            Op::PreCheckout { inv } => match inv.of(invoices) {
                Some(i) => {
                    self.pre_checkout(i).await?;
                }
                None => self.m.stats.skipped += 1,
            },
            Op::Forward { inv, to, pay } => match inv.of(invoices) {
                Some(i) => {
                    let owner = self.m.invoices[i].buyer;
                    let other = (owner + 1 + to % (BUYERS - 1)) % BUYERS;
                    let inv = self.m.invoices[i].clone();
                    let r = purchase::pre_checkout(
                        &self.ctx,
                        &self.buyers[other],
                        CURRENCY,
                        inv.total,
                        &inv.payload,
                    )
                    .await;
                    self.m.stats.predictions += 1;
                    prop_assert!(
                        matches!(r, Err(AppError::User(UserError::WrongBuyer))),
                        "pre-checkout of a forwarded invoice: {r:?}"
                    );
                    self.m.stats.wrong_buyer += 1;
                    if *pay {
                        let (uid, charge) = (self.m.update_id(), self.m.charge_id("fwd"));
                        self.pay(i, other, uid, charge).await?;
                    }
                }
                None => self.m.stats.skipped += 1,
            },
            Op::Abandon { inv } => {
                if inv.of(invoices).is_none() {
                    self.m.stats.skipped += 1;
                }
            }
            Op::Pay { inv, late_by } => match inv.of(invoices) {
                Some(i) => {
                    if let Some(s) = late_by {
                        self.advance(*s);
                    }
                    let (uid, charge) = (self.m.update_id(), self.m.charge_id("tg"));
                    let buyer = self.m.invoices[i].buyer;
                    self.pay(i, buyer, uid, charge).await?;
                }
                None => self.m.stats.skipped += 1,
            },
            Op::Buy {
                buyer,
                group,
                redeem_pct,
                nonce,
            } => match self.open_invoice(*buyer, group, *redeem_pct, *nonce) {
                Some(i) => {
                    if self.pre_checkout(i).await? {
                        let (uid, charge) = (self.m.update_id(), self.m.charge_id("tg"));
                        self.pay(i, *buyer, uid, charge).await?;
                    }
                }
                None => self.m.stats.skipped += 1,
            },
            Op::Duplicate {
                paid: p,
                same_update,
            } => match p.of(paid) {
                Some(i) => {
                    let p = self.m.paid[i].clone();
                    let uid = if *same_update {
                        p.update_id
                    } else {
                        self.m.update_id()
                    };
                    let before = snapshot(&self.ctx).await?;
                    let payment = Payment {
                        currency: CURRENCY.into(),
                        total: p.total,
                        payload: p.payload.clone(),
                        charge_id: p.charge.clone(),
                        provider_charge_id: format!("prov-{}", p.charge),
                        recipient: None,
                        address: Some(tokyo_address()),
                    };
                    let r = purchase::record(&self.ctx, uid, &self.buyers[p.payer], &payment)
                        .await
                        .or_fail("record a duplicate")?;
                    prop_assert_eq!(r, Recorded::Duplicate, "charge {} again", p.charge);
                    prop_assert_eq!(
                        snapshot(&self.ctx).await?,
                        before,
                        "a duplicate changed something"
                    );
                    self.m.stats.duplicates += 1;
                }
                None => self.m.stats.skipped += 1,
            },
            Op::TelegramRefund { paid: p, how } => self.telegram_refund(p.of(paid), *how).await?,
            Op::OperatorRefund { paid: p } => self.operator_refund(p.map(|p| p.of(paid))).await?,
            Op::MarkPaid { paid: p } => self.mark_paid(p.map(|p| p.of(paid))).await?,
            Op::Advance { secs } => self.advance(*secs),
            Op::Sweep { secs } => {
                self.advance(*secs);
                settle::sweep(&self.ctx).await.or_fail("sweep")?;
            }
            Op::Crash { inv, retry } => match inv.of(invoices) {
                Some(i) => self.crash(i, *retry).await?,
                None => self.m.stats.skipped += 1,
            },
        }
        Ok(())
    }

    async fn telegram_refund(&mut self, i: Option<usize>, how: Report) -> R<()> {
        let ctx = self.ctx.clone();
        if let Report::UnknownCharge = how {
            let before = snapshot(&ctx).await?;
            let uid = self.m.update_id();
            let charge = self.m.charge_id("nobody-paid");
            let r = refund::reported(&ctx, uid, self.buyers[0].id, CURRENCY, PRICE, &charge)
                .await
                .or_fail("reported refund")?;
            prop_assert!(
                matches!(r, Err(RefundRefusal::UnknownCharge(_))),
                "unknown charge: {r:?}"
            );
            prop_assert_eq!(
                snapshot(&ctx).await?,
                before,
                "an unknown charge's refund changed something"
            );
            self.m.stats.refusals += 1;
            return Ok(());
        }
        if let Report::SameUpdateAgain = how {
            let Some(uid) = self.m.last_report_update else {
                self.m.stats.skipped += 1;
                return Ok(());
            };
            let before = snapshot(&ctx).await?;
            let r = refund::reported(&ctx, uid, self.buyers[0].id, CURRENCY, PRICE, "whatever")
                .await
                .or_fail("reported refund")?;
            prop_assert_eq!(r, Ok(Reported::Duplicate), "the same refund update again");
            prop_assert_eq!(
                snapshot(&ctx).await?,
                before,
                "a redelivered refund update changed something"
            );
            self.m.stats.duplicates += 1;
            return Ok(());
        }
        let Some(i) = i else {
            self.m.stats.skipped += 1;
            return Ok(());
        };
        let p = self.m.paid[i].clone();
        let uid = self.m.update_id();
        self.m.last_report_update = Some(uid);
        let (buyer, total) = match how {
            Report::WrongAmount => (self.buyers[p.payer].id, p.total + 1),
            Report::WrongBuyer => (self.buyers[(p.payer + 1) % BUYERS].id, p.total),
            _ => (self.buyers[p.payer].id, p.total),
        };
        let before = snapshot(&ctx).await?;
        let r = refund::reported(&ctx, uid, buyer, CURRENCY, total, &p.charge)
            .await
            .or_fail("reported refund")?;
        if matches!(how, Report::WrongAmount | Report::WrongBuyer) {
            prop_assert!(
                matches!(r, Err(RefundRefusal::Mismatch { .. })),
                "a mismatched refund: {r:?}"
            );
            prop_assert_eq!(
                snapshot(&ctx).await?,
                before,
                "a mismatched refund changed something"
            );
            self.m.stats.refusals += 1;
            return Ok(());
        }
        match p.state {
            Charge::Counted => {
                prop_assert_eq!(
                    r,
                    Ok(Reported::Reversed),
                    "Telegram refunded counted charge {}",
                    p.charge
                );
                self.m.uncount(i, Charge::Done);
                self.m.stats.reversed += 1;
                self.m.stats.paid_out += 1;
            }
            Charge::Due => {
                prop_assert_eq!(
                    r,
                    Ok(Reported::Confirmed),
                    "Telegram refunded due charge {}",
                    p.charge
                );
                self.m.paid[i].state = Charge::Done;
                self.m.stats.paid_out += 1;
            }
            Charge::Done => {
                prop_assert_eq!(
                    r,
                    Ok(Reported::Duplicate),
                    "Telegram refunded charge {} again",
                    p.charge
                );
                prop_assert_eq!(
                    snapshot(&ctx).await?,
                    before,
                    "a second refund changed something"
                );
                self.m.stats.duplicates += 1;
            }
        }
        Ok(())
    }

    async fn operator_refund(&mut self, i: Option<Option<usize>>) -> R<()> {
        let ctx = self.ctx.clone();
        let before = snapshot(&ctx).await?;
        let Some(i) = i else {
            let charge = self.m.charge_id("nobody-paid");
            let r = refund::reverse(&ctx, &charge).await.or_fail("reverse")?;
            prop_assert!(
                matches!(r, Err(RefundRefusal::UnknownCharge(_))),
                "unknown charge: {r:?}"
            );
            prop_assert_eq!(
                snapshot(&ctx).await?,
                before,
                "reversing an unknown charge changed something"
            );
            self.m.stats.refusals += 1;
            return Ok(());
        };
        let Some(i) = i else {
            self.m.stats.skipped += 1;
            return Ok(());
        };
        let p = self.m.paid[i].clone();
        let r = refund::reverse(&ctx, &p.charge).await.or_fail("reverse")?;
        match p.state {
            Charge::Counted => {
                let done = match r {
                    Ok(done) => done,
                    Err(e) => return fail(format!("reversing counted charge {}: {e:?}", p.charge)),
                };
                let clawed = self.m.uncount(i, Charge::Due);
                prop_assert_eq!(
                    done.clawed_back,
                    clawed,
                    "points taken back reversing {}",
                    p.charge
                );
                self.m.stats.reversed += 1;
            }
            Charge::Due => {
                prop_assert!(
                    matches!(r, Err(RefundRefusal::AlreadyDue(_))),
                    "reversing due {}: {r:?}",
                    p.charge
                );
                prop_assert_eq!(
                    snapshot(&ctx).await?,
                    before,
                    "a second reversal changed something"
                );
                self.m.stats.refusals += 1;
            }
            Charge::Done => {
                prop_assert!(
                    matches!(r, Err(RefundRefusal::AlreadyRefunded { .. })),
                    "reversing refunded {}: {r:?}",
                    p.charge
                );
                prop_assert_eq!(
                    snapshot(&ctx).await?,
                    before,
                    "reversing a refunded charge changed something"
                );
                self.m.stats.refusals += 1;
            }
        }
        Ok(())
    }

    async fn mark_paid(&mut self, i: Option<Option<usize>>) -> R<()> {
        let ctx = self.ctx.clone();
        let before = snapshot(&ctx).await?;
        let Some(i) = i else {
            let charge = self.m.charge_id("nobody-paid");
            let r = refund::mark_paid(&ctx, &charge)
                .await
                .or_fail("mark paid")?;
            prop_assert!(
                matches!(r, Err(RefundRefusal::UnknownCharge(_))),
                "unknown charge: {r:?}"
            );
            prop_assert_eq!(
                snapshot(&ctx).await?,
                before,
                "paying out an unknown charge changed something"
            );
            self.m.stats.refusals += 1;
            return Ok(());
        };
        let Some(i) = i else {
            self.m.stats.skipped += 1;
            return Ok(());
        };
        let p = self.m.paid[i].clone();
        let r = refund::mark_paid(&ctx, &p.charge)
            .await
            .or_fail("mark paid")?;
        match p.state {
            Charge::Due => {
                prop_assert!(r.is_ok(), "paying out due {}: {r:?}", p.charge);
                self.m.paid[i].state = Charge::Done;
                self.m.stats.paid_out += 1;
            }
            Charge::Done | Charge::Counted => {
                prop_assert!(r.is_err(), "paying out {} ({:?}): {r:?}", p.charge, p.state);
                prop_assert_eq!(
                    snapshot(&ctx).await?,
                    before,
                    "a refused payout changed something"
                );
                self.m.stats.refusals += 1;
            }
        }
        Ok(())
    }

    /// Half of a payment's writes in a write transaction, dropped without commit.
    async fn crash(&mut self, i: usize, retry: bool) -> R<()> {
        let ctx = self.ctx.clone();
        let inv = self.m.invoices[i].clone();
        let group = self.m.groups[inv.group].clone();
        let buyer_id = self.buyers[inv.buyer].id;
        let (uid, charge) = (self.m.update_id(), self.m.charge_id("crash"));
        let before = snapshot(&ctx).await?;
        {
            let mut tx = ctx.store.write().await.or_fail("begin")?;
            let now = ctx.now();
            prop_assert!(
                updates::claim(&mut tx, uid, now).await.or_fail("claim")?,
                "fresh update id"
            );
            let new = purchases::NewPurchase {
                group_id: groupbuy::domain::GroupId::new(group.id),
                buyer_id,
                sku: &groupbuy::domain::Sku::parse("camera").or_fail("sku")?,
                price: groupbuy::domain::Money::from_minor(PRICE).or_fail("price")?,
                points_redeemed: groupbuy::domain::Points::new(inv.redeem),
                amount_paid: groupbuy::domain::Money::from_minor(inv.total).or_fail("total")?,
                currency: groupbuy::domain::Currency::parse(CURRENCY).or_fail("currency")?,
                charge_id: &charge,
                provider_charge_id: "prov-crash",
                counted: !self.m.has_seat(inv.group, inv.buyer),
                flag: None,
                region: None,
                receipt_token: &format!("crash-token-{charge}"),
                now,
            };
            let purchase_id = purchases::insert(&mut tx, &new)
                .await
                .or_fail("insert purchase")?
                .ok_or_else(|| TestCaseError::fail("a fresh charge id was taken"))?;
            let txn = format!("purchase:{charge}");
            ledger::post(
                &mut tx,
                &ledger::Refs {
                    txn: &txn,
                    currency: CURRENCY,
                    group_id: Some(groupbuy::domain::GroupId::new(group.id)),
                    purchase_id: Some(purchase_id),
                    memo: "crash",
                    now,
                },
                &[
                    ledger::Entry::cash(inv.total),
                    ledger::Entry::points(buyer_id, inv.redeem),
                    ledger::Entry::sales(-(inv.total + inv.redeem)),
                ],
            )
            .await
            .or_fail("post")?;
            holds::release(&mut tx, &inv.payload)
                .await
                .or_fail("release hold")?;
            ledger::release_hold(&mut tx, &inv.payload)
                .await
                .or_fail("release points hold")?;
            sqlx::query("UPDATE group_buys SET status = 'settled', closed_at = $2 WHERE id = $1")
                .bind(group.id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .or_fail("close group")?;
            // The process dies here: the transaction is dropped, never committed.
            drop(tx);
        }
        prop_assert_eq!(
            snapshot(&ctx).await?,
            before,
            "an uncommitted transaction left something"
        );
        self.m.stats.crashes += 1;
        if retry {
            // Telegram delivers the payment again after the restart: it is new to the store.
            let buyer = inv.buyer;
            self.pay(i, buyer, uid, charge).await?;
        }
        Ok(())
    }

    /// Settlements that appeared: the model computes what each should have been from the
    /// purchases it knows to count, and credits the buyers.
    async fn observe_settlements(&mut self) -> R<()> {
        let rows = sqlx::query(
            "SELECT group_id, buyers, filled, total_points FROM settlements ORDER BY group_id",
        )
        .fetch_all(self.ctx.store.pool())
        .await
        .or_fail("settlements")?;
        for row in rows {
            let group_id: i64 = row.try_get(0).or_fail("group_id")?;
            let Some(g) = self.m.groups.iter().position(|g| g.id == group_id) else {
                return fail(format!("a settlement for unknown group {group_id}"));
            };
            if self.m.groups[g].settled {
                continue;
            }
            let buyers: i64 = row.try_get(1).or_fail("buyers")?;
            let filled: i64 = row.try_get(2).or_fail("filled")?;
            let total: i64 = row.try_get(3).or_fail("total_points")?;
            let counted: Vec<usize> = (0..self.m.paid.len())
                .filter(|&i| self.m.paid[i].group == g && self.m.paid[i].state == Charge::Counted)
                .collect();
            let n = counted.len();
            let full = n >= self.m.groups[g].head as usize;
            // All or nothing: the tier of the buyers if the group filled, else nothing.
            let credit = if full { PRICE * rate_bp(n) / 10_000 } else { 0 };
            prop_assert_eq!(
                buyers,
                n as i64,
                "buyers in the settlement of group {}",
                group_id
            );
            prop_assert_eq!(filled != 0, full, "settlement of group {} filled", group_id);
            prop_assert_eq!(
                total,
                credit * n as i64,
                "points of the settlement of group {}",
                group_id
            );
            for i in counted {
                self.m.paid[i].credit = credit;
                let payer = self.m.paid[i].payer;
                self.m.points[payer].credits += credit;
            }
            self.m.groups[g].settled = true;
            self.m.stats.settlements += 1;
        }
        Ok(())
    }
}

/// The store against the model and the promises; see the module documentation.
async fn check_invariants(w: &mut World) -> R<()> {
    let ctx = &w.ctx;
    let m = &w.m;
    let mut conn = ctx.store.read().await.or_fail("conn")?;

    // 1. Every ledger transaction balances, in one currency.
    let (total, unbalanced) = ledger::audit(&mut conn).await.or_fail("audit")?;
    prop_assert_eq!(unbalanced, 0, "unbalanced ledger transactions");
    prop_assert_eq!(total, 0, "the ledger sums to zero");

    // 2. Points: each buyer's balance, and each kind of entry, as the model says.
    for (i, b) in w.buyers.iter().enumerate() {
        let balance = ledger::balance(&mut conn, b.id)
            .await
            .or_fail("balance")?
            .value();
        let rows = sqlx::query("SELECT txn, amount FROM ledger WHERE account = $1")
            .bind(format!("points:{}", b.id))
            .fetch_all(&mut *conn)
            .await
            .or_fail("points entries")?;
        let mut seen = PointsM::default();
        for r in rows {
            let txn: String = r.try_get(0).or_fail("txn")?;
            let amount: i64 = r.try_get(1).or_fail("amount")?;
            match txn.split(':').next().unwrap_or_default() {
                "seed" => seen.seeded -= amount,
                "settle" => seen.credits -= amount,
                "purchase" => seen.redeemed += amount,
                "refund" => seen.returned -= amount,
                "reverse" => seen.clawed += amount,
                other => return fail(format!("points entry of an unknown kind {other:?} ({txn})")),
            }
        }
        // Within a transaction a redemption and its return cancel: compare net per purchase
        // kind through the totals, and the kinds one by one.
        prop_assert_eq!(seen, m.points[i], "points of buyer {} by kind", i);
        prop_assert_eq!(
            balance,
            m.points[i].balance(),
            "points balance of buyer {}",
            i
        );
        prop_assert!(
            balance >= 0,
            "buyer {} has a negative balance {}",
            i,
            balance
        );
    }
    w.m.stats.points_checks += BUYERS as u64;
    let m = &w.m;

    // 3. Every charge is exactly one of counted, refund due, refunded — the model's.
    let rows = sqlx::query(
        "SELECT p.charge_id, p.counted, p.group_id, p.buyer_id, p.amount_paid, p.points_redeemed,
                r.status, r.amount
           FROM purchases p LEFT JOIN refunds r ON r.charge_id = p.charge_id",
    )
    .fetch_all(&mut *conn)
    .await
    .or_fail("purchases")?;
    prop_assert_eq!(rows.len(), m.paid.len(), "purchases recorded");
    let mut stored: BTreeMap<String, Charge> = BTreeMap::new();
    let (mut cash, mut due, mut sales) = (0i64, 0i64, 0i64);
    for r in &rows {
        let charge: String = r.try_get(0).or_fail("charge_id")?;
        let counted: i64 = r.try_get(1).or_fail("counted")?;
        let group_id: i64 = r.try_get(2).or_fail("group_id")?;
        let buyer_id: i64 = r.try_get(3).or_fail("buyer_id")?;
        let paid: i64 = r.try_get(4).or_fail("amount_paid")?;
        let redeemed: i64 = r.try_get(5).or_fail("points_redeemed")?;
        let status: Option<String> = r.try_get(6).or_fail("status")?;
        let refund: Option<i64> = r.try_get(7).or_fail("refund amount")?;
        let state = match (counted, status.as_deref()) {
            (1, None) => Charge::Counted,
            (0, Some("due")) => Charge::Due,
            (0, Some("done")) => Charge::Done,
            other => {
                return fail(format!(
                    "charge {charge} is {other:?}: not one of counted, due, refunded"
                ));
            }
        };
        if let Some(amount) = refund {
            prop_assert_eq!(amount, paid, "refund of {} is what was paid", charge);
        }
        let Some(p) = m.paid.iter().find(|p| p.charge == charge) else {
            return fail(format!("charge {charge} is not one the model paid"));
        };
        prop_assert_eq!(group_id, m.groups[p.group].id, "group of {}", charge);
        prop_assert_eq!(buyer_id, w.buyers[p.payer].id.get(), "buyer of {}", charge);
        prop_assert_eq!(
            (paid, redeemed),
            (p.total, p.redeem),
            "amounts of {}",
            charge
        );
        cash += paid;
        match state {
            Charge::Counted => sales -= paid + redeemed,
            Charge::Due => due -= paid,
            Charge::Done => cash -= paid,
        }
        stored.insert(charge, state);
    }
    for p in &m.paid {
        prop_assert_eq!(
            stored.get(&p.charge),
            Some(&p.state),
            "state of charge {}",
            p.charge
        );
    }
    for (account, want) in [("cash", cash), ("refunds_due", due), ("sales", sales)] {
        let got = ledger::account_sum_in(&mut conn, account, CURRENCY)
            .await
            .or_fail("account")?;
        prop_assert_eq!(got, want, "the {} account", account);
    }

    // 4 and 5. Seats within the head count; one settlement per settled group, none else.
    let rows = sqlx::query(
        "SELECT g.id, g.head_count, g.status,
                CAST((SELECT COUNT(*) FROM purchases p WHERE p.group_id = g.id AND p.counted = 1) AS BIGINT),
                CAST((SELECT COUNT(*) FROM settlements s WHERE s.group_id = g.id) AS BIGINT)
           FROM group_buys g",
    )
    .fetch_all(&mut *conn)
    .await
    .or_fail("groups")?;
    prop_assert_eq!(rows.len(), m.groups.len(), "groups");
    for r in &rows {
        let id: i64 = r.try_get(0).or_fail("id")?;
        let head: i64 = r.try_get(1).or_fail("head_count")?;
        let status: String = r.try_get(2).or_fail("status")?;
        let counted: i64 = r.try_get(3).or_fail("counted")?;
        let settlements: i64 = r.try_get(4).or_fail("settlements")?;
        prop_assert!(
            counted <= head,
            "group {} has {} counted purchases for {} seats",
            id,
            counted,
            head
        );
        prop_assert!(
            settlements <= 1,
            "group {} settled {} times",
            id,
            settlements
        );
        prop_assert_eq!(
            status == "settled",
            settlements == 1,
            "group {} is {} with {} settlements",
            id,
            status,
            settlements
        );
        let model = m.groups.iter().find(|g| g.id == id).map(|g| g.settled);
        prop_assert_eq!(
            model,
            Some(settlements == 1),
            "the model knows whether group {} settled",
            id
        );
    }
    Ok(())
}

async fn run_case(case: Case) -> R<Stats> {
    let fake = FakeBotApi::start().await;
    let smtp = SmtpSink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = database_url(Db::from_env(), dir.path()).await;
    let ctx = library_ctx(&fake, &smtp, &db).await;
    let mut w = World::setup(ctx, &case).await?;
    w.observe_settlements().await?;
    check_invariants(&mut w).await?;
    for (step, op) in case.ops.iter().enumerate() {
        let Some(op) = op else { continue };
        let at = |e: TestCaseError| TestCaseError::fail(format!("step {step} {op:?}: {e}"));
        w.apply(op).await.map_err(at)?;
        w.observe_settlements().await.map_err(at)?;
        check_invariants(&mut w).await.map_err(at)?;
    }
    w.m.stats.cases = 1;
    Ok(w.m.stats.clone())
}

/// The strongest test in the project: thousands of random operations on the money, each
/// followed by the invariants. `GROUPBUY_MODEL_CASES` overrides the number of cases.
#[test]
fn money_model() {
    let db = Db::from_env();
    let cases = std::env::var("GROUPBUY_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(match db {
            Db::Sqlite => 12,
            Db::Postgres => 6,
        });
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 1_500,
        max_shrink_time: 300_000,
        ..ProptestConfig::default()
    };
    let totals = Mutex::new(Stats::default());
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(150..=300), |case| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let stats = rt.block_on(run_case(case))?;
        totals.lock().expect("totals").add(&stats);
        Ok(())
    });
    match result {
        Ok(()) => {
            let t = totals.lock().expect("totals");
            // Straight to the terminal: libtest captures `eprintln!` of a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "money model ({db:?}): {} cases, {} operations ({} skipped) in {:.1} s; {} invoices, {} approved, {} holds refused, {} forwarded refused; {} payments: {} counted, {} refunded on arrival; {} reversed, {} paid out, {} duplicates, {} refusals; {} crashes; {} settlements; {} predictions, {} points checks; refusals {:?}",
                t.cases,
                t.ops,
                t.skipped,
                started.elapsed().as_secs_f64(),
                t.invoices,
                t.approved,
                t.holds_refused,
                t.wrong_buyer,
                t.payments,
                t.counted,
                t.refunded_on_arrival,
                t.reversed,
                t.paid_out,
                t.duplicates,
                t.refusals,
                t.crashes,
                t.settlements,
                t.predictions,
                t.points_checks,
                t.refused_by,
            );
        }
        Err(TestError::Fail(why, case)) => {
            // The steps after the failing one did not run: leave them out.
            let last = why
                .message()
                .strip_prefix("step ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok());
            panic!(
                "the money model failed: {why}\nminimal failing case:\n{}",
                case.steps(last)
            )
        }
        Err(TestError::Abort(why)) => panic!("the money model gave up: {why}"),
    }
}

/// Runs one hand-written case, as the property test would.
fn replay(case: Case) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run_case(case)) {
        panic!("{e}");
    }
}

/// Found by the model: a payment that counts without an unlapsed hold (its update was
/// delayed past the hold) left the payer's other hold on the group in place, so a third
/// buyer's approved, unlapsed hold was refused its seat (refunded as `full`) although the
/// group had a free seat for it. A counted payment now releases the payer's other holds.
#[test]
fn a_delayed_payment_does_not_take_an_approved_buyers_seat() {
    let p = |i: u8| Pick {
        recent: false,
        index: Idx(i),
    };
    let g = GroupPick {
        open: true,
        index: Idx(0),
    };
    let case = Case {
        groups: vec![(2, Expiry::D7, None)],
        seeds: vec![0; BUYERS],
        ops: vec![
            // Buyer 0's invoice B is approved and charged; the payment update is delayed
            // past the hold (a backlog, a restart).
            Some(Op::OpenInvoice {
                buyer: 0,
                group: g,
                redeem_pct: 0,
                nonce: 1,
            }),
            Some(Op::PreCheckout { inv: p(0) }),
            Some(Op::Advance { secs: 650 }),
            // Meanwhile buyer 0 tries again (invoice A) and buyer 1 is approved too.
            Some(Op::OpenInvoice {
                buyer: 0,
                group: g,
                redeem_pct: 0,
                nonce: 2,
            }),
            Some(Op::PreCheckout { inv: p(1) }),
            Some(Op::OpenInvoice {
                buyer: 1,
                group: g,
                redeem_pct: 0,
                nonce: 3,
            }),
            Some(Op::PreCheckout { inv: p(2) }),
            // B's delayed payment arrives and counts; then buyer 1 pays within their hold.
            Some(Op::Pay {
                inv: p(0),
                late_by: None,
            }),
            Some(Op::Pay {
                inv: p(2),
                late_by: None,
            }),
        ],
    };
    replay(case);
}
