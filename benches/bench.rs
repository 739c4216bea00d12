//! The benchmark harness: drives the real service against the Bot API fake and a loopback
//! SMTP server and prints one table; each figure comes with a reference measured in the
//! same run. `cargo bench --bench bench` (all), or `cargo bench --bench bench -- purchase
//! fanout flood sweep email footprint` (some). See BENCHMARKS.md.

#[path = "../tests/it/support/mod.rs"]
mod support;

#[path = "bench/commits.rs"]
mod commits;
#[path = "bench/common.rs"]
mod common;
#[path = "bench/email.rs"]
mod email;
#[path = "bench/fanout.rs"]
mod fanout;
#[path = "bench/flood.rs"]
mod flood;
#[path = "bench/purchase.rs"]
mod purchase;
#[path = "bench/sweep.rs"]
mod sweep;

use std::time::Instant;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// One line of the table.
pub struct Row {
    pub what: String,
    pub target: String,
    pub figure: String,
    pub reference: String,
    pub ratio: String,
    pub pass: Option<bool>,
}

impl Row {
    pub fn new(
        what: String,
        target: &str,
        figure: String,
        reference: String,
        ratio: f64,
        pass: bool,
    ) -> Row {
        Row {
            what,
            target: target.into(),
            figure,
            reference,
            ratio: if ratio.is_finite() {
                format!("{ratio:.2}")
            } else {
                "—".into()
            },
            pass: Some(pass),
        }
    }

    pub fn info(what: String, figure: String, reference: String) -> Row {
        Row {
            what,
            target: "—".into(),
            figure,
            reference,
            ratio: "—".into(),
            pass: None,
        }
    }
}

fn print_table(rows: &[Row]) {
    // In the order (scenarios run in another order to keep the run short).
    let mut rows: Vec<&Row> = rows.iter().collect();
    rows.sort_by_key(|r| {
        r.what
            .chars()
            .next()
            .and_then(|c| c.to_digit(10))
            .unwrap_or(9)
    });
    println!();
    println!("| measure | target | figure | reference (same run) | ratio | result |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let result = match r.pass {
            Some(true) => "pass",
            Some(false) => "MISS",
            None => "—",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.what, r.target, r.figure, r.reference, r.ratio, result
        );
    }
    println!();
}

fn main() {
    // Only the purchase use case's span and event are observed (see `commits`); the service's
    // own warnings still reach stderr.
    let observe = tracing_subscriber::filter::Targets::new()
        .with_target("groupbuy::app::purchase", tracing::Level::INFO);
    let logs =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,sqlx=error"));
    tracing_subscriber::registry()
        .with(commits::CommitLayer.with_filter(observe))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(logs),
        )
        .init();

    // `cargo bench` passes `--bench`; anything else names the scenarios to run.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let mut rows = Vec::new();
    println!("machine: {}", common::machine());
    rows.push(Row::info(
        "0. (context) one durable 4 KiB write on the disk under target/ (write + fdatasync, median of 300)".into(),
        common::ms(common::fsync_probe()),
        "—".into(),
    ));
    rt.block_on(async {
        for kind in [common::Kind::Sqlite, common::Kind::Postgres] {
            let only = format!("purchase:{}", kind.name().to_lowercase());
            if run("purchase") || run(&only) {
                let r = purchase::run(kind).await;
                eprintln!(
                    "[bench] purchase {} done at {:.0} s",
                    kind.name(),
                    started.elapsed().as_secs_f64()
                );
                rows.extend(r);
            }
        }
        if run("fanout") {
            rows.extend(fanout::run().await);
            eprintln!(
                "[bench] fan-out done at {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        if run("flood") {
            rows.extend(flood::run().await);
            eprintln!(
                "[bench] flood done at {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        if run("email") {
            rows.extend(email::run().await);
            eprintln!(
                "[bench] email done at {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        if run("sweep") {
            rows.extend(sweep::run().await);
            eprintln!(
                "[bench] sweep and footprint done at {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    });
    print_table(&rows);
    println!("whole run: {:.0} s", started.elapsed().as_secs_f64());
}
