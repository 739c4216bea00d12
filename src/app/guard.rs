//! The key guard: slows down anyone guessing group keys (or receipt tokens), and only them.
//!
//! Keys carry 90 random bits, so guessing cannot succeed; the guard keeps it from costing us
//! database reads and log noise. It counts *misses* (unknown or malformed keys) per client
//! in a sliding one-minute window. A client is a Telegram user, a web visitor's address (the
//! peer, or the forwarded-for address when the peer is a configured proxy), or, when the web
//! side cannot tell the address, the first two symbols of the key asked for: someone else's
//! guessing never uses up your allowance.
//!
//! In the bot ([`KeyGuard::check`]) a user with `limit` misses in the window is refused
//! ("slow down") before any lookup. On the web ([`KeyGuard::slowed`]) a client over its
//! limit is slowed, not refused: its requests are answered one at a time, each after a
//! pause, so a valid key still opens its page and a guesser gets about one answer per pause;
//! only when more than [`MAX_WAITING`] of its requests are already waiting does it get 429.
//!
//! In memory and per process: a restart forgets, which only gives a guesser one more
//! window. Pure: the caller passes the time (the service's clock, movable in tests).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The sliding window, in seconds.
pub const WINDOW_SECS: i64 = 60;

/// Clients tracked before idle ones are forgotten, so a flood of addresses cannot grow the
/// map without bound.
const MAX_CLIENTS: usize = 10_000;

/// Who is guessing: an address on the web, a Telegram user in the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// IPv4 address, or an IPv6 /64 (one subscriber's usual allocation).
    Ip(IpAddr),
    /// A Telegram user id.
    User(i64),
    /// The web side could not tell the peer's address (see [`Client::or_key_prefix`]).
    Unknown,
    /// No known address: bucketed by the first two symbols of the key it asked for, so an
    /// anonymous guesser slows only keys that start like its guesses.
    KeyPrefix([u8; 2]),
}

impl Client {
    /// The bucket of an address: IPv4-mapped IPv6 as IPv4, other IPv6 cut to its /64.
    pub fn ip(addr: IpAddr) -> Self {
        match addr.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                Client::Ip(IpAddr::V6(prefix.into()))
            }
            v4 => Client::Ip(v4),
        }
    }
}

impl Client {
    /// `Unknown` becomes the bucket of the key's prefix (letters folded to upper case, as
    /// keys are read); every other client stays as it is.
    pub fn or_key_prefix(self, key: &str) -> Self {
        if self != Client::Unknown {
            return self;
        }
        let mut prefix = [b'_'; 2];
        for (slot, b) in prefix
            .iter_mut()
            .zip(key.bytes().filter(u8::is_ascii_alphanumeric))
        {
            *slot = b.to_ascii_uppercase();
        }
        Client::KeyPrefix(prefix)
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Ip(IpAddr::V6(a)) => write!(f, "{a}/64"),
            Client::Ip(a) => write!(f, "{a}"),
            Client::User(id) => write!(f, "user {id}"),
            Client::Unknown => f.write_str("an unknown address"),
            Client::KeyPrefix(p) => write!(
                f,
                "unknown addresses asking for keys {}{}…",
                char::from(p[0]),
                char::from(p[1])
            ),
        }
    }
}

/// The client must wait this many seconds before its next key is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowDown {
    pub retry_after: i64,
}

#[derive(Debug, Default)]
struct Window {
    /// Times of the misses still inside the window, oldest first.
    misses: VecDeque<i64>,
    /// Whether this run of refusals was logged already (one warning per run, not per request).
    warned: bool,
}

impl Window {
    fn forget_before(&mut self, now: i64) {
        while self.misses.front().is_some_and(|t| *t <= now - WINDOW_SECS) {
            self.misses.pop_front();
        }
        if self.misses.is_empty() {
            self.warned = false;
        }
    }
}

/// Requests of one over-limit client waiting for their turn (more get 429 at once, so a
/// flood cannot hold connections open without bound).
pub const MAX_WAITING: usize = 4;

/// The longest pause before an over-limit client's next answer.
const MAX_PAUSE_SECS: u64 = 3;

/// One over-limit client's queue: one request at a time, each after a pause.
#[derive(Debug, Default)]
struct Gate {
    turn: tokio::sync::Mutex<()>,
    waiting: AtomicUsize,
}

/// Misses per client in the last minute.
#[derive(Debug)]
pub struct KeyGuard {
    limit: u32,
    /// Held only for a few map operations, never across an await.
    windows: Mutex<HashMap<Client, Window>>,
    /// Over-limit clients' queues; held only to find or drop a gate, never across an await.
    gates: Mutex<HashMap<Client, Arc<Gate>>>,
    /// How long an over-limit client waits per answer: a minute shared by `limit`, 1–3 s.
    pause: Duration,
}

impl KeyGuard {
    /// At most `limit` misses a minute per client are answered.
    pub fn new(limit: u32) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            windows: Mutex::default(),
            gates: Mutex::default(),
            pause: Duration::from_secs((60 / u64::from(limit)).clamp(1, MAX_PAUSE_SECS)),
        }
    }

    /// The same guard with another pause (tests).
    #[cfg(test)]
    pub fn with_pause(mut self, pause: Duration) -> Self {
        self.pause = pause;
        self
    }

    /// Runs `lookup` for a web `client`. Under its limit: at once. Over it: after the
    /// client's earlier requests and a pause, so the client is slowed but a valid key is
    /// still answered; Err only when [`MAX_WAITING`] of its requests already wait. A miss
    /// (`is_miss`) counts against the client either way. `now` is read after any wait.
    pub async fn slowed<T, E>(
        &self,
        client: Client,
        now: impl Fn() -> i64,
        lookup: impl Future<Output = Result<T, E>>,
        is_miss: impl FnOnce(&E) -> bool,
    ) -> Result<Result<T, E>, SlowDown> {
        if let Err(slow) = self.admit(client, now()) {
            let gate = self.gate(client);
            if gate.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
                gate.waiting.fetch_sub(1, Ordering::SeqCst);
                return Err(slow);
            }
            let turn = gate.turn.lock().await;
            tokio::time::sleep(self.pause).await;
            gate.waiting.fetch_sub(1, Ordering::SeqCst);
            let result = lookup.await;
            drop(turn);
            if result.as_ref().is_err_and(is_miss) {
                self.miss(client, now());
            }
            return Ok(result);
        }
        let result = lookup.await;
        if result.as_ref().is_err_and(is_miss) {
            self.miss(client, now());
        }
        Ok(result)
    }

    /// The queue of `client`, made on first use; idle queues are dropped as others are made.
    fn gate(&self, client: Client) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        if gates.len() >= MAX_CLIENTS && !gates.contains_key(&client) {
            gates.retain(|_, g| Arc::strong_count(g) > 1);
        }
        gates.entry(client).or_default().clone()
    }

    /// Err when `client` used up its misses for this window; logs the first refusal of a run.
    pub fn admit(&self, client: Client, now: i64) -> Result<(), SlowDown> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = windows.get_mut(&client) else {
            return Ok(());
        };
        w.forget_before(now);
        if w.misses.len() < self.limit as usize {
            return Ok(());
        }
        let retry_after = w
            .misses
            .front()
            .map_or(WINDOW_SECS, |t| t + WINDOW_SECS - now);
        if !w.warned {
            w.warned = true;
            tracing::warn!(
                %client,
                limit = self.limit,
                retry_after,
                "key guessing slowed down: too many unknown keys in a minute"
            );
        }
        Err(SlowDown { retry_after })
    }

    /// Records an unknown or malformed key from `client`.
    pub fn miss(&self, client: Client, now: i64) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_CLIENTS && !windows.contains_key(&client) {
            windows.retain(|_, w| {
                w.forget_before(now);
                !w.misses.is_empty()
            });
        }
        let w = windows.entry(client).or_default();
        w.forget_before(now);
        w.misses.push_back(now);
    }

    /// Runs `lookup` for `client` unless the client is refused; an error `is_miss` picks out
    /// (an unknown or malformed key) counts against it.
    pub async fn check<T, E>(
        &self,
        client: Client,
        now: i64,
        lookup: impl Future<Output = Result<T, E>>,
        is_miss: impl FnOnce(&E) -> bool,
    ) -> Result<Result<T, E>, SlowDown> {
        self.admit(client, now)?;
        let result = lookup.await;
        if result.as_ref().is_err_and(is_miss) {
            self.miss(client, now);
        }
        Ok(result)
    }

    /// Clients currently tracked (for tests).
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.windows.lock().map_or(0, |w| w.len())
    }
}

impl From<SlowDown> for crate::app::AppError {
    fn from(_: SlowDown) -> Self {
        crate::replies::UserError::SlowDown.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Client = Client::User(1);
    const BOB: Client = Client::User(2);

    fn misses(guard: &KeyGuard, client: Client, n: u32, now: i64) {
        for _ in 0..n {
            guard.miss(client, now);
        }
    }

    #[test]
    fn refuses_after_the_limit_within_a_minute() {
        let g = KeyGuard::new(3);
        misses(&g, ALICE, 2, 1_000);
        assert_eq!(g.admit(ALICE, 1_000), Ok(()));
        g.miss(ALICE, 1_010);
        assert_eq!(g.admit(ALICE, 1_020), Err(SlowDown { retry_after: 40 }));
        assert_eq!(g.admit(ALICE, 1_059), Err(SlowDown { retry_after: 1 }));
        // The first two misses leave the window; one remains.
        assert_eq!(g.admit(ALICE, 1_060), Ok(()));
    }

    #[test]
    fn the_window_slides() {
        let g = KeyGuard::new(2);
        g.miss(ALICE, 0);
        g.miss(ALICE, 30);
        assert!(g.admit(ALICE, 59).is_err());
        assert!(
            g.admit(ALICE, 60).is_ok(),
            "the miss at 0 has left the window"
        );
        g.miss(ALICE, 60);
        assert_eq!(g.admit(ALICE, 61), Err(SlowDown { retry_after: 29 }));
    }

    #[test]
    fn clients_are_counted_apart() {
        let g = KeyGuard::new(1);
        g.miss(ALICE, 0);
        assert!(g.admit(ALICE, 1).is_err());
        assert!(g.admit(BOB, 1).is_ok());
        assert!(g.admit(Client::Unknown, 1).is_ok());
    }

    #[tokio::test]
    async fn check_counts_only_misses_and_refuses_before_looking_up() {
        let g = KeyGuard::new(1);
        let found = g
            .check(ALICE, 0, async { Ok::<_, &str>(1) }, |_| true)
            .await;
        assert_eq!(found, Ok(Ok(1)));
        let expired = g.check(ALICE, 0, async { Err::<i32, _>("expired") }, |e| {
            *e == "unknown"
        });
        assert_eq!(expired.await, Ok(Err("expired")), "a known key is no miss");
        let unknown = g.check(ALICE, 0, async { Err::<i32, _>("unknown") }, |e| {
            *e == "unknown"
        });
        assert_eq!(unknown.await, Ok(Err("unknown")));
        let refused = g.check(ALICE, 1, async { panic!("looked up") }, |_: &&str| true);
        assert_eq!(
            refused.await,
            Err::<Result<i32, &str>, _>(SlowDown { retry_after: 59 })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn over_the_limit_a_client_is_slowed_not_refused_and_others_are_not_slowed() {
        let g = KeyGuard::new(2);
        let miss = || async { Err::<&str, &str>("unknown") };
        for _ in 0..2 {
            let r = g.slowed(ALICE, || 0, miss(), |_| true).await;
            assert_eq!(r, Ok(Err("unknown")));
        }
        // Alice is over her limit: her valid key is still answered, after a pause.
        let t0 = tokio::time::Instant::now();
        let hit = g
            .slowed(ALICE, || 0, async { Ok::<_, &str>("page") }, |_| true)
            .await;
        assert_eq!(hit, Ok(Ok("page")));
        assert_eq!(
            t0.elapsed(),
            Duration::from_secs(3),
            "60 s / 2 misses, capped at 3 s"
        );
        // Bob, and an anonymous visitor, are answered at once.
        let t1 = tokio::time::Instant::now();
        let bob = g
            .slowed(BOB, || 0, async { Ok::<_, &str>("page") }, |_| true)
            .await;
        assert_eq!(bob, Ok(Ok("page")));
        let anon = Client::Unknown.or_key_prefix("AB23456789");
        let a = g
            .slowed(anon, || 0, async { Ok::<_, &str>("page") }, |_| true)
            .await;
        assert_eq!(a, Ok(Ok("page")));
        assert_eq!(t1.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_from_one_client_gets_429_beyond_the_queue() {
        let g = Arc::new(KeyGuard::new(1).with_pause(Duration::from_secs(1)));
        g.miss(ALICE, 0);
        let mut waiting = Vec::new();
        for _ in 0..MAX_WAITING {
            let g = g.clone();
            waiting.push(tokio::spawn(async move {
                g.slowed(ALICE, || 0, async { Ok::<_, ()>(()) }, |_| true)
                    .await
            }));
        }
        tokio::task::yield_now().await;
        let over = g
            .slowed(ALICE, || 0, async { Ok::<_, ()>(()) }, |_| true)
            .await;
        assert!(
            over.is_err(),
            "the fifth waiting request is refused at once"
        );
        for w in waiting {
            assert_eq!(w.await.expect("joined"), Ok(Ok(())));
        }
    }

    #[test]
    fn unknown_addresses_are_bucketed_by_key_prefix() {
        let g = KeyGuard::new(1);
        let guesser = Client::Unknown.or_key_prefix("zz3456789");
        g.miss(guesser, 0);
        assert!(g.admit(Client::Unknown.or_key_prefix("ZZ999"), 1).is_err());
        assert!(
            g.admit(Client::Unknown.or_key_prefix("AB3456789"), 1)
                .is_ok()
        );
        assert_eq!(ALICE.or_key_prefix("ZZ"), ALICE);
        assert_eq!(Client::Unknown.or_key_prefix(""), Client::KeyPrefix(*b"__"));
    }

    #[test]
    fn a_limit_of_zero_still_answers_one() {
        let g = KeyGuard::new(0);
        assert!(g.admit(ALICE, 0).is_ok());
        g.miss(ALICE, 0);
        assert!(g.admit(ALICE, 0).is_err());
    }

    #[test]
    fn ipv6_is_bucketed_by_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(Client::ip(a), Client::ip(b));
        assert_ne!(Client::ip(a), Client::ip(c));
        assert_eq!(Client::ip(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(
            Client::ip(mapped),
            Client::Ip("192.0.2.7".parse().expect("ip"))
        );
    }

    #[test]
    fn idle_clients_are_forgotten_when_the_map_is_full() {
        let g = KeyGuard::new(5);
        for i in 0..MAX_CLIENTS as i64 {
            g.miss(Client::User(i), 0);
        }
        assert_eq!(g.tracked(), MAX_CLIENTS);
        g.miss(Client::User(-1), WINDOW_SECS);
        assert_eq!(g.tracked(), 1, "only the newcomer is left");
    }
}
