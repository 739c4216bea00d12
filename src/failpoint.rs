//! Failpoints for crash tests: with `GROUPBUY_FAILPOINT=<name>` in the environment, the
//! process aborts (like `kill -9`) the first time it reaches that point. Unset, a check costs
//! one comparison. Names in use: `settle_before_commit`, `after_send_before_mark_sent`.

use std::sync::OnceLock;

static ARMED: OnceLock<Option<String>> = OnceLock::new();

/// Aborts the process here if this failpoint is armed.
pub fn hit(name: &str) {
    let armed = ARMED.get_or_init(|| {
        std::env::var("GROUPBUY_FAILPOINT")
            .ok()
            .filter(|v| !v.is_empty())
    });
    if armed.as_deref() == Some(name) {
        eprintln!("groupbuy: failpoint {name} reached; aborting");
        std::process::abort();
    }
}
