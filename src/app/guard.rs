//! The key guard: slows down anyone guessing group keys (or receipt tokens).
//!
//! Keys carry 90 random bits, so guessing cannot succeed; the guard keeps it from costing us
//! database reads and log noise. It counts *misses* (unknown or malformed keys) per client
//! in a sliding one-minute window. A client with `limit` misses in the window is refused
//! (429 on the web, "slow down" in the bot) before any lookup, so a refusal says nothing
//! about whether the key it carried exists. Refusals are not counted: a client that keeps
//! guessing gets at most `limit` answers a minute.
//!
//! In memory and per process: a restart forgets, which only gives a guesser one more
//! window. Pure: the caller passes the time (the service's clock, movable in tests).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;

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
    /// The web side could not tell the peer's address: every such request shares one bucket.
    Unknown,
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

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Ip(IpAddr::V6(a)) => write!(f, "{a}/64"),
            Client::Ip(a) => write!(f, "{a}"),
            Client::User(id) => write!(f, "user {id}"),
            Client::Unknown => f.write_str("an unknown address"),
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

/// Misses per client in the last minute.
#[derive(Debug)]
pub struct KeyGuard {
    limit: u32,
    /// Held only for a few map operations, never across an await.
    windows: Mutex<HashMap<Client, Window>>,
}

impl KeyGuard {
    /// At most `limit` misses a minute per client are answered.
    pub fn new(limit: u32) -> Self {
        Self {
            limit: limit.max(1),
            windows: Mutex::default(),
        }
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
