//! Structured logs for the operator: `key=value` fields on every line, level from `RUST_LOG`
//! (default `info`).

pub fn init() {
    init_with_default("info,sqlx=warn,teloxide=info");
}

/// As [`init`], with another level when `RUST_LOG` is unset (the playground talks to a person
/// at a terminal, not to an operator: warnings only).
pub fn init_with_default(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
