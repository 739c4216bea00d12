//! Telegram's sending limits as token buckets: about 30 messages a second for the bot, one
//! a second per private chat (bursts of 3 allowed), 20 a minute per group chat. A 429 pauses
//! the chat it names (`retry_after`).

use std::collections::HashMap;

/// Times are in milliseconds of the caller's monotonic clock.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    per_ms: f64,
    at: u64,
    paused_until: u64,
}

impl Bucket {
    fn new(capacity: f64, per_sec: f64, now: u64) -> Self {
        Self {
            tokens: capacity,
            capacity,
            per_ms: per_sec / 1000.0,
            at: now,
            paused_until: 0,
        }
    }

    fn refill(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.at) as f64;
        self.tokens = (self.tokens + elapsed * self.per_ms).min(self.capacity);
        self.at = now;
    }

    /// When one token will be available (now if it already is).
    fn ready_at(&mut self, now: u64) -> u64 {
        self.refill(now);
        let when = if self.tokens >= 1.0 {
            now
        } else {
            now + ((1.0 - self.tokens) / self.per_ms).ceil() as u64
        };
        when.max(self.paused_until)
    }

    fn take(&mut self, now: u64) {
        self.refill(now);
        self.tokens -= 1.0;
    }
}

#[derive(Debug)]
pub struct Limiter {
    global: Bucket,
    chats: HashMap<i64, Bucket>,
}

impl Limiter {
    pub fn new(now: u64) -> Self {
        Self::with_rate(now, 30)
    }

    /// `per_second` is this instance's share of the bot's ~30 messages a second (with N
    /// instances on one database, give each 30 / N).
    pub fn with_rate(now: u64, per_second: u32) -> Self {
        // Evenly spaced (no burst), so no one-second window ever holds more than the rate.
        Self {
            global: Bucket::new(1.0, f64::from(per_second.max(1)), now),
            chats: HashMap::new(),
        }
    }

    fn chat(&mut self, chat_id: i64, now: u64) -> &mut Bucket {
        self.chats.entry(chat_id).or_insert_with(|| {
            if chat_id < 0 {
                // Group chats: 20 a minute, no burst.
                Bucket::new(1.0, 20.0 / 60.0, now)
            } else {
                Bucket::new(3.0, 1.0, now)
            }
        })
    }

    /// When a message to this chat may go; `now` when it may go at once.
    pub fn ready_at(&mut self, chat_id: i64, now: u64) -> u64 {
        let chat = self.chat(chat_id, now).ready_at(now);
        chat.max(self.global.ready_at(now))
    }

    /// Records a send (call only when `ready_at` said now).
    pub fn take(&mut self, chat_id: i64, now: u64) {
        self.chat(chat_id, now).take(now);
        self.global.take(now);
    }

    /// Telegram said 429: nothing to this chat (or to anyone, when `chat_id` is None) until then.
    pub fn pause(&mut self, chat_id: Option<i64>, until: u64) {
        match chat_id {
            Some(c) => {
                let b = self.chat(c, until);
                b.paused_until = b.paused_until.max(until);
            }
            None => self.global.paused_until = self.global.paused_until.max(until),
        }
    }

    /// Forgets idle chats so the map stays small.
    pub fn trim(&mut self, now: u64) {
        self.chats.retain(|_, b| {
            b.refill(now);
            b.tokens < b.capacity || b.paused_until > now
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends as fast as allowed for `ms` milliseconds to the given chats round-robin.
    fn simulate(chats: &[i64], ms: u64) -> Vec<(u64, i64)> {
        let mut l = Limiter::new(0);
        let mut sent = Vec::new();
        let mut now = 0;
        while now < ms {
            for &c in chats {
                if l.ready_at(c, now) <= now {
                    l.take(c, now);
                    sent.push((now, c));
                }
            }
            now += 1;
        }
        sent
    }

    #[test]
    fn private_chat_gets_a_burst_of_three_then_one_a_second() {
        let sent = simulate(&[42], 10_000);
        // A burst of 3 (spaced only by the bot-wide 30/s), then one per second: 3 + 9 in 10 s.
        assert_eq!(sent.len(), 12);
        assert_eq!(sent.iter().filter(|(t, _)| *t < 100).count(), 3);
        for pair in sent[3..].windows(2) {
            assert!(pair[1].0 - pair[0].0 >= 999, "{pair:?}");
        }
    }

    #[test]
    fn group_chat_gets_twenty_a_minute() {
        let sent = simulate(&[-100], 60_000);
        assert_eq!(sent.len(), 20);
    }

    #[test]
    fn never_more_than_thirty_in_any_second() {
        let chats: Vec<i64> = (1..=200).collect();
        let sent = simulate(&chats, 5_000);
        for window_start in (0..4_000).step_by(50) {
            let n = sent
                .iter()
                .filter(|(t, _)| *t >= window_start && *t < window_start + 1_000)
                .count();
            assert!(n <= 31, "{n} sends in the second from {window_start} ms");
        }
        assert!(sent.len() >= 140, "only {} sent in 5 s", sent.len());
    }

    #[test]
    fn a_pause_holds_the_chat() {
        let mut l = Limiter::new(0);
        l.pause(Some(7), 2_000);
        assert_eq!(l.ready_at(7, 0), 2_000);
        assert_eq!(l.ready_at(8, 0), 0);
        l.pause(None, 5_000);
        assert_eq!(l.ready_at(8, 0), 5_000);
    }
}
