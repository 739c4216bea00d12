//! Telegram's sending limits, as the emulator enforces them when asked to.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Telegram's sending limits as the fake enforces them (opt-in): at most 30 messages in any
/// second for the bot, one a second per private chat with bursts of 3 (a bucket of 3 that
/// refills at 1/s), at most 20 in any minute per group chat. A send with
/// `allow_paid_broadcast` ("Pass True to allow up to 1000 messages per second, ignoring
/// broadcasting limits for a fee of 0.1 Telegram Stars per message", Bot API `sendMessage`)
/// is not held to the 30 a second and does not count in it; every send counts in the 1,000
/// a second. A send that would break a limit is answered 429 with `retry_after` (whole
/// seconds, at least 1) and not counted as sent.
#[derive(Default)]
pub(crate) struct Limits {
    /// Accepted sends without `allow_paid_broadcast` of the last second, oldest first.
    bot: VecDeque<Instant>,
    /// Every accepted send of the last second, oldest first.
    all: VecDeque<Instant>,
    /// Private chats: (tokens, when last refilled).
    private: HashMap<i64, (f64, Instant)>,
    /// Group chats: accepted sends of the last minute, oldest first.
    groups: HashMap<i64, VecDeque<Instant>>,
}

impl Limits {
    const BOT_PER_SEC: usize = 30;
    const PAID_PER_SEC: usize = 1_000;
    const GROUP_PER_MIN: usize = 20;
    const PRIVATE_BURST: f64 = 3.0;

    /// Methods that send a message and so count against the limits.
    pub(crate) fn counts(method: &str) -> bool {
        (method.starts_with("send") && method != "sendChatAction")
            || matches!(method, "copyMessage" | "forwardMessage")
    }

    /// Records the send at `at`, or returns how long to wait when it would break a limit.
    pub(crate) fn admit(
        &mut self,
        chat: Option<i64>,
        paid: bool,
        at: Instant,
    ) -> Result<(), Duration> {
        let sec = Duration::from_secs(1);
        let min = Duration::from_secs(60);
        for window in [&mut self.bot, &mut self.all] {
            while window.front().is_some_and(|t| at.duration_since(*t) >= sec) {
                window.pop_front();
            }
        }
        let mut wait = Duration::ZERO;
        if !paid && self.bot.len() >= Self::BOT_PER_SEC {
            wait = wait.max(sec.saturating_sub(at.duration_since(self.bot[0])));
        }
        if self.all.len() >= Self::PAID_PER_SEC {
            wait = wait.max(sec.saturating_sub(at.duration_since(self.all[0])));
        }
        match chat {
            Some(c) if c > 0 => {
                let (tokens, last) = self.private.entry(c).or_insert((Self::PRIVATE_BURST, at));
                *tokens =
                    (*tokens + at.duration_since(*last).as_secs_f64()).min(Self::PRIVATE_BURST);
                *last = at;
                if *tokens < 1.0 {
                    wait = wait.max(Duration::from_secs_f64(1.0 - *tokens));
                }
            }
            Some(c) if c < 0 => {
                let sent = self.groups.entry(c).or_default();
                while sent.front().is_some_and(|t| at.duration_since(*t) >= min) {
                    sent.pop_front();
                }
                if sent.len() >= Self::GROUP_PER_MIN {
                    wait = wait.max(min.saturating_sub(at.duration_since(sent[0])));
                }
            }
            _ => {}
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        if !paid {
            self.bot.push_back(at);
        }
        self.all.push_back(at);
        match chat {
            Some(c) if c > 0 => {
                if let Some((tokens, _)) = self.private.get_mut(&c) {
                    *tokens -= 1.0;
                }
            }
            Some(c) if c < 0 => self.groups.entry(c).or_default().push_back(at),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;
    use std::time::{Duration, Instant};

    #[test]
    fn paid_sends_go_above_thirty_up_to_a_thousand_a_second() {
        let mut l = Limits::default();
        let t0 = Instant::now();
        for chat in 1..=30 {
            assert!(l.admit(Some(chat), false, t0).is_ok());
        }
        assert!(l.admit(Some(31), false, t0).is_err(), "the 31st free send");
        for chat in 31..=1_000 {
            assert!(l.admit(Some(chat), true, t0).is_ok(), "paid send {chat}");
        }
        assert!(l.admit(Some(1_001), true, t0).is_err(), "the 1,001st send");
        let later = t0 + Duration::from_secs(1);
        assert!(l.admit(Some(1_001), true, later).is_ok());
        assert!(l.admit(Some(1_002), false, later).is_ok());
    }
}
