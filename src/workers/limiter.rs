//! Telegram's sending limits: about 30 messages a second for the bot, one a second per
//! private chat (bursts of 3 allowed), 20 a minute per group chat. A 429 pauses the chat it
//! names (`retry_after`). With paid broadcast on, a bulk notice may also go above the free
//! 30/s with `allow_paid_broadcast`, up to the paid rate (at most 1,000 a second counting
//! every send); the per-chat limits hold either way. The free window counts the sends made
//! without the flag (a paid send "ignores broadcasting limits", Bot API `sendMessage`).
//!
//! The bot-wide and group-chat limits are kept as what Telegram states — at most N sends in
//! any window — over the times the last N sends were answered: a send reaches Telegram no
//! later than its answer, however long it was held up on its way (a 20 ms margin on the time
//! it was taken still let a stalled write push one send into the next window: one 429 in a
//! 1,000-message fan-out on a busy machine). A send that goes out a little late (the worker was busy, a timer fired
//! a millisecond after it was asked to) then does not push every later send back, as it did
//! with a one-token bucket: a 1,000-message fan-out at 30/s took 6% longer than the limit.

use std::collections::{HashMap, VecDeque};

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

/// At most `max` sends in any `window` ms, and at least `gap` ms apart (nearly evenly
/// spaced, no burst): the times of the last `max` sends decide when the next may go. The gap
/// is a tenth shorter than `window / max`, so a late send is caught up on within the window.
#[derive(Debug)]
struct Window {
    sent: VecDeque<u64>,
    max: usize,
    window: u64,
    gap: u64,
    paused_until: u64,
}

impl Window {
    fn new(max: u32, window: u64) -> Self {
        let max = max.max(1) as usize;
        Self {
            sent: VecDeque::with_capacity(max),
            max,
            window,
            gap: window * 9 / (10 * max as u64),
            paused_until: 0,
        }
    }

    fn ready_at(&self, now: u64) -> u64 {
        let mut at = now.max(self.paused_until);
        if let Some(last) = self.sent.back() {
            at = at.max(last + self.gap);
        }
        if self.sent.len() >= self.max {
            at = at.max(self.sent[self.sent.len() - self.max] + self.window);
        }
        at
    }

    fn take(&mut self, now: u64) {
        self.sent.push_back(now);
        while self.sent.len() > self.max {
            self.sent.pop_front();
        }
    }

    fn idle(&self, now: u64) -> bool {
        self.paused_until <= now && self.sent.back().is_none_or(|t| t + self.window <= now)
    }

    /// The last send was answered at `now`: it reached Telegram no later, so it counts from
    /// then. A send held up on its way (a slow write before it, a busy machine) then cannot
    /// land in the same window as sends that left a whole window after it was taken.
    fn completed(&mut self, now: u64) {
        if let Some(last) = self.sent.back_mut() {
            *last = (*last).max(now);
        }
    }
}

/// The windows are this much longer than Telegram's: a send counts from when it was answered
/// (see [`Limiter::completed`]), so this only covers rounding to whole milliseconds and
/// clocks ticking apart.
const MARGIN_MS: u64 = 5;

#[derive(Debug)]
enum ChatLimit {
    Private(Bucket),
    Group(Window),
}

impl ChatLimit {
    fn ready_at(&mut self, now: u64) -> u64 {
        match self {
            ChatLimit::Private(b) => b.ready_at(now),
            ChatLimit::Group(w) => w.ready_at(now),
        }
    }

    fn take(&mut self, now: u64) {
        match self {
            ChatLimit::Private(b) => b.take(now),
            ChatLimit::Group(w) => w.take(now),
        }
    }

    fn pause(&mut self, until: u64) {
        let p = match self {
            ChatLimit::Private(b) => &mut b.paused_until,
            ChatLimit::Group(w) => &mut w.paused_until,
        };
        *p = (*p).max(until);
    }

    fn completed(&mut self, now: u64) {
        if let ChatLimit::Group(w) = self {
            w.completed(now);
        }
    }

    fn idle(&mut self, now: u64) -> bool {
        match self {
            ChatLimit::Private(b) => {
                b.refill(now);
                b.tokens >= b.capacity && b.paused_until <= now
            }
            ChatLimit::Group(w) => w.idle(now),
        }
    }
}

/// How a send goes: within the free bot-wide rate, or above it with `allow_paid_broadcast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Free,
    Paid,
}

#[derive(Debug)]
pub struct Limiter {
    /// Sends without `allow_paid_broadcast`.
    global: Window,
    /// Every send, at the paid rate; only with paid broadcast on.
    paid: Option<Window>,
    chats: HashMap<i64, ChatLimit>,
}

impl Limiter {
    /// `per_second` is this instance's share of the bot's ~30 messages a second (with N
    /// instances on one database, give each 30 / N).
    pub fn with_rate(_now: u64, per_second: u32) -> Self {
        Self {
            global: Window::new(per_second, 1_000 + MARGIN_MS),
            paid: None,
            chats: HashMap::new(),
        }
    }

    /// Paid broadcast on: bulk notices may go at up to `per_second` in all (see [`Lane`]).
    pub fn with_paid_rate(mut self, per_second: u32) -> Self {
        self.paid = Some(Window::new(per_second, 1_000 + MARGIN_MS));
        self
    }

    fn paid_ready_at(&self, now: u64) -> u64 {
        self.paid.as_ref().map_or(now, |w| w.ready_at(now))
    }

    fn chat(&mut self, chat_id: i64, now: u64) -> &mut ChatLimit {
        self.chats.entry(chat_id).or_insert_with(|| {
            if chat_id < 0 {
                // Group chats: 20 a minute, evenly spaced.
                ChatLimit::Group(Window::new(20, 60_000 + MARGIN_MS))
            } else {
                ChatLimit::Private(Bucket::new(3.0, 1.0, now))
            }
        })
    }

    /// When a message to this chat may go within the free rate; `now` when it may go at once.
    pub fn ready_at(&mut self, chat_id: i64, now: u64) -> u64 {
        let chat = self.chat(chat_id, now).ready_at(now);
        chat.max(self.global.ready_at(now))
            .max(self.paid_ready_at(now))
    }

    /// When a bulk notice to this chat may go, and how: free when the free rate allows it as
    /// soon, otherwise paid (with paid broadcast on).
    pub fn bulk_ready_at(&mut self, chat_id: i64, now: u64) -> (u64, Lane) {
        let free = self.ready_at(chat_id, now);
        if self.paid.is_none() || free <= now {
            return (free, Lane::Free);
        }
        let paid = self
            .chat(chat_id, now)
            .ready_at(now)
            .max(self.paid_ready_at(now));
        if paid < free {
            (paid, Lane::Paid)
        } else {
            (free, Lane::Free)
        }
    }

    /// When this chat's own limit lets a message go (the bot-wide pace aside).
    pub fn chat_ready_at(&mut self, chat_id: i64, now: u64) -> u64 {
        self.chat(chat_id, now).ready_at(now)
    }

    /// Records a send in `lane` (call only when `bulk_ready_at` said now for it).
    pub fn take_in(&mut self, chat_id: i64, now: u64, lane: Lane) {
        self.chat(chat_id, now).take(now);
        if lane == Lane::Free {
            self.global.take(now);
        }
        if let Some(w) = self.paid.as_mut() {
            w.take(now);
        }
    }

    /// The send last taken for this chat in `lane` was answered at `now` (whatever the
    /// answer): the windows count it from then, not from when it was taken. With this, what
    /// Telegram sees keeps to the limits however long a send spent between taking and arrival.
    pub fn completed_in(&mut self, chat_id: i64, now: u64, lane: Lane) {
        if let Some(c) = self.chats.get_mut(&chat_id) {
            c.completed(now);
        }
        if lane == Lane::Free {
            self.global.completed(now);
        }
        if let Some(w) = self.paid.as_mut() {
            w.completed(now);
        }
    }

    /// Telegram said 429: nothing to this chat (or to anyone, when `chat_id` is None) until then.
    pub fn pause(&mut self, chat_id: Option<i64>, until: u64) {
        match chat_id {
            Some(c) => self.chat(c, until).pause(until),
            None => {
                self.global.paused_until = self.global.paused_until.max(until);
                if let Some(w) = self.paid.as_mut() {
                    w.paused_until = w.paused_until.max(until);
                }
            }
        }
    }

    /// Forgets idle chats so the map stays small.
    pub fn trim(&mut self, now: u64) {
        self.chats.retain(|_, c| !c.idle(now));
    }
}

/// The free lane's shorthands, used by the tests of the windows.
#[cfg(test)]
impl Limiter {
    fn new(now: u64) -> Self {
        Self::with_rate(now, 30)
    }

    fn take(&mut self, chat_id: i64, now: u64) {
        self.take_in(chat_id, now, Lane::Free);
    }

    fn completed(&mut self, chat_id: i64, now: u64) {
        self.completed_in(chat_id, now, Lane::Free);
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
            assert!(n <= 30, "{n} sends in the second from {window_start} ms");
        }
        assert!(sent.len() >= 140, "only {} sent in 5 s", sent.len());
    }

    #[test]
    fn a_late_send_does_not_push_the_later_ones_back() {
        // A worker that always sends 2 ms after it may: 300 messages to 300 chats take ten
        // windows of 1,020 ms (plus the lateness once per window), not 300 late gaps.
        let mut l = Limiter::new(0);
        let mut now = 0;
        for chat in 1..=300 {
            now = l.ready_at(chat, now) + 2;
            l.take(chat, now);
        }
        assert!(now <= 9 * 1_022 + 30 * 33, "the 300th went at {now} ms");
        let sent = simulate(&(1..=300).collect::<Vec<_>>(), 10_000);
        assert!(sent.len() >= 290, "{} in 10 s", sent.len());
    }

    #[test]
    fn a_send_counts_from_when_it_was_answered() {
        // Taken at 0 but answered at 500 (held up on its way): the next 29 sends may follow
        // it, but the 31st not within a window of the answer.
        let mut l = Limiter::new(0);
        l.take(1, 0);
        l.completed(1, 500);
        assert!(l.ready_at(2, 0) >= 500);
        let mut now = 500;
        for chat in 2..=30 {
            now = l.ready_at(chat, now);
            l.take(chat, now);
            l.completed(chat, now);
        }
        assert!(l.ready_at(31, now) >= 500 + 1_000 + MARGIN_MS);
        // A group chat's window too.
        l.take(-5, 5_000);
        l.completed(-5, 5_300);
        assert!(l.chat_ready_at(-5, 5_000) >= 5_300);
    }

    #[test]
    fn paid_broadcast_goes_above_thirty_a_second_and_keeps_the_chat_limits() {
        let mut l = Limiter::new(0).with_paid_rate(1_000);
        let mut sent = Vec::new();
        for now in 0..1_000 {
            for chat in 1..=2_000 {
                let (at, lane) = l.bulk_ready_at(chat, now);
                if at <= now {
                    l.take_in(chat, now, lane);
                    sent.push((now, chat, lane));
                }
            }
        }
        let free = sent.iter().filter(|s| s.2 == Lane::Free).count();
        assert!(free <= 30, "{free} free sends in the first second");
        assert!(
            sent.len() >= 900 && sent.len() <= 1_000,
            "{} sends in a second",
            sent.len()
        );
        // Three to one private chat at most (its burst), whatever the lane.
        let to_one = sent.iter().filter(|s| s.1 == 1).count();
        assert!(to_one <= 3, "{to_one}");
        // Without paid broadcast a bulk notice waits for the free rate.
        let mut l = Limiter::new(0);
        for chat in 1..=30 {
            l.take(chat, 0);
        }
        assert_eq!(l.bulk_ready_at(31, 0).1, Lane::Free);
        assert!(l.bulk_ready_at(31, 0).0 >= 1_000);
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
