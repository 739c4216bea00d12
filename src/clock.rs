//! The service's one clock. Production reads the system time; tests and the playground move
//! it forward to pass an expiry without waiting. Everything that needs "now" asks this.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The service's time: the system clock plus an offset the playground can fast-forward.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Seconds added to the system time; only ever grows (time never runs backwards).
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// The plain system clock, with no offset.
    pub fn system() -> Self {
        Self::default()
    }

    /// Unix seconds.
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.offset.load(Ordering::Relaxed)
    }

    /// Moves the clock forward by `secs` seconds; a negative amount does nothing.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs.max(0), Ordering::Relaxed);
    }
}
