//! What every scenario needs: databases, configuration, the service in-process or as a
//! `groupbuy` subprocess, seeding through the library, and small measuring tools.

use crate::support::{FakeBotApi, SmtpSink};
use groupbuy::app::{Ctx, Person};
use groupbuy::clock::Clock;
use groupbuy::config::Config;
use groupbuy::domain::Policy;
use groupbuy::domain::group_key::GroupKey;
use groupbuy::shutdown::{self, Trigger};
use groupbuy::startup::App;
use groupbuy::store::{groups, users};
use sqlx::Connection;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const EXAMPLE_TOML: &str = include_str!("../../groupbuy.example.toml");
pub const PRICE: i64 = 34_800;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "SQLite",
            Kind::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh, empty database: an SQLite file in a temporary directory, or a new database on
/// the local PostgreSQL server (dropped again by [`Db::drop_pg`]).
pub struct Db {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

pub fn pg_base_url() -> String {
    std::env::var("GROUPBUY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

impl Db {
    pub async fn fresh(kind: Kind) -> Db {
        // On the same disk as the working tree (not a tmpfs), so commits pay a real fsync.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
        std::fs::create_dir_all(&root).expect("target/bench-tmp");
        let dir = tempfile::tempdir_in(root).expect("temp dir");
        match kind {
            Kind::Sqlite => Db {
                url: format!("sqlite://{}", dir.path().join("groupbuy.db").display()),
                dir,
                pg_name: None,
            },
            Kind::Postgres => {
                let base = pg_base_url();
                let mut admin = sqlx::postgres::PgConnection::connect(&base)
                    .await
                    .unwrap_or_else(|e| panic!("the PostgreSQL rows need a server at {base}: {e}"));
                let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
                if n == 0 {
                    crate::support::pg::drop_stale(&mut admin, "gb_bench").await;
                }
                let (name, url) =
                    crate::support::pg::create(&mut admin, &base, "gb_bench", n).await;
                Db {
                    url,
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    pub async fn drop_pg(&self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut admin) = sqlx::postgres::PgConnection::connect(&pg_base_url()).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

/// The environment `groupbuy` gets in every scenario (as in the integration tests).
pub fn env_for(fake: &FakeBotApi, smtp: &SmtpSink, db_url: &str) -> Vec<(String, String)> {
    [
        ("GROUPBUY_TELEGRAM_TOKEN", fake.token().to_string()),
        ("GROUPBUY_TELEGRAM_API_URL", fake.api_url().to_string()),
        ("GROUPBUY_DATABASE_URL", db_url.to_string()),
        ("GROUPBUY_SMTP_URL", smtp.url()),
        ("GROUPBUY_MAIL_FROM", "groupbuy <shop@example.com>".into()),
        ("GROUPBUY_FULFILMENT_EMAIL", "warehouse@example.com".into()),
        ("GROUPBUY_PUBLIC_URL", "https://shop.example.com".into()),
        (
            "GROUPBUY_PAYMENT_PROVIDER_TOKEN",
            "TEST-PROVIDER-TOKEN".into(),
        ),
        ("GROUPBUY_HTTP_ADDR", "127.0.0.1:0".into()),
        ("GROUPBUY_ADMIN_ADDR", "127.0.0.1:0".into()),
        (
            "GROUPBUY_SERVER_SECRET",
            "bench-server-secret-0123456789-abcdefghijkl".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn config_for(
    fake: &FakeBotApi,
    smtp: &SmtpSink,
    db_url: &str,
    extra: &[(&str, &str)],
) -> Config {
    let mut env: HashMap<String, String> = env_for(fake, smtp, db_url).into_iter().collect();
    for (k, v) in extra {
        // An empty value leaves the setting out.
        if v.is_empty() {
            env.remove(*k);
        } else {
            env.insert((*k).to_string(), (*v).to_string());
        }
    }
    Config::from_sources(Some(EXAMPLE_TOML), &env).expect("bench configuration is valid")
}

/// The library on a database, without the service (for seeding and reference loops).
pub async fn library(config: Config) -> Ctx {
    let clock = Clock::system();
    let store = groupbuy::startup::open_store(&config, &clock)
        .await
        .expect("store opens");
    Ctx::new(store, Arc::new(config), clock, "groupbuy_test_bot")
}

/// `groupbuy serve` in this process: the unchanged service (as the integration tests run it).
pub struct Service {
    pub ctx: Ctx,
    trigger: Option<Trigger>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Service {
    pub async fn start(config: Config) -> Service {
        let app = App::build(config, Clock::system())
            .await
            .expect("the service builds");
        let ctx = app.ctx().clone();
        let (trigger, shutdown) = shutdown::channel();
        let handle = tokio::spawn(app.run(shutdown));
        Service {
            ctx,
            trigger: Some(trigger),
            handle: Some(handle),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(t) = self.trigger.take() {
            t.trigger();
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(60), h).await;
        }
    }
}

/// `groupbuy <args>` as a subprocess against the fake and the sink.
pub fn groupbuy(
    args: &[&str],
    fake: &FakeBotApi,
    smtp: &SmtpSink,
    db_url: &str,
    log: &std::path::Path,
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_groupbuy"));
    cmd.arg("--config")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/groupbuy.example.toml"
        ))
        .args(args)
        .envs(env_for(fake, smtp, db_url))
        .env_remove("GROUPBUY_FAILPOINT")
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(
            std::fs::File::create(log).expect("log file for the subprocess"),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(log.with_extension("err")).expect("log file"),
        ));
    cmd
}

/// (VmRSS, VmHWM) of a live process, in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Waits for a child to exit, sampling its peak RSS (VmHWM) on the way; returns the exit
/// status and the largest VmHWM seen, in KiB.
pub fn wait_sampling(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, u64) {
    let deadline = Instant::now() + limit;
    let mut peak = 0;
    loop {
        if let Some((_, hwm)) = rss_kib(child.id()) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            return (status, peak);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().expect("wait");
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub async fn count(ctx: &Ctx, sql: &'static str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(ctx.store.pool())
        .await
        .expect("query")
        .try_get(0)
        .expect("integer")
}

pub fn person(id: i64) -> Person {
    Person {
        id: groupbuy::domain::UserId::new(id),
        username: None,
        first_name: format!("Buyer{id}"),
    }
}

/// Opens `n` groups for `head_count` buyers each through the store, in one transaction;
/// organisers are `organiser_base + i % 10`, in their private chats or in `chat`.
pub async fn open_groups(
    ctx: &Ctx,
    n: usize,
    head_count: u32,
    policy: Policy,
    expires_in: i64,
    chat: Option<i64>,
) -> Vec<i64> {
    let now = ctx.now();
    let mut tx = ctx.store.write().await.expect("write");
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let organiser = 9_000 + (i % 10) as i64;
        let organiser_id = groupbuy::domain::UserId::new(organiser);
        users::seen(
            &mut tx,
            organiser_id,
            None,
            &format!("Org{organiser}"),
            true,
            now,
        )
        .await
        .expect("organiser");
        let key = GroupKey::generate().expect("key");
        let id = groups::insert(
            &mut tx,
            &groups::NewGroup {
                key: &key,
                sku: &groupbuy::domain::Sku::parse("camera").expect("sku"),
                head_count: groupbuy::domain::HeadCount::new(i64::from(head_count), u32::MAX)
                    .expect("head count"),
                organiser_id,
                chat_id: chat.unwrap_or(organiser),
                policy,
                now,
                expiry: groupbuy::domain::Expiry::At(now + expires_in),
                discount: true,
                open_count: false,
            },
        )
        .await
        .expect("group");
        ids.push(id.get());
    }
    tx.commit().await.expect("commit");
    ids
}

/// A payment as the `successful_payment` handler builds it.
pub fn payment(group_id: i64, buyer: i64, charge: &str) -> groupbuy::app::purchase::Payment {
    use groupbuy::app::purchase::{Address, Payload, Payment};
    Payment {
        currency: "JPY".into(),
        total: PRICE,
        payload: Payload {
            group_id: groupbuy::domain::GroupId::new(group_id),
            buyer_id: groupbuy::domain::UserId::new(buyer),
            price: groupbuy::domain::Money::from_minor(PRICE).expect("price"),
            redeem: groupbuy::domain::Points::new(0),
            sku: groupbuy::domain::Sku::parse("camera").expect("sku"),
            nonce: String::new(),
        }
        .encode(),
        charge_id: charge.into(),
        provider_charge_id: format!("prov-{charge}"),
        recipient: Some(format!("Buyer{buyer}")),
        address: Some(Address {
            country_code: "JP".into(),
            state: "Tokyo".into(),
            city: "Chiyoda".into(),
            street_line1: "1-1 Marunouchi".into(),
            street_line2: String::new(),
            post_code: "100-0001".into(),
        }),
    }
}

/// Marks everything queued so far as sent (seeding leaves receipts behind).
pub async fn mark_outbox_sent(ctx: &Ctx, keep_like: &[&str]) {
    let mut sql = "UPDATE outbox SET status = 'sent' WHERE status = 'pending'".to_string();
    for k in keep_like {
        sql.push_str(&format!(" AND dedupe_key NOT LIKE '{k}'"));
    }
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(ctx.store.pool())
        .await
        .expect("mark sent");
}

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// CPU time, in seconds: the whole machine (busy and total, all cores), this process, and
/// every `postgres` process (the local server's backends).
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    pub machine_busy: f64,
    pub machine_total: f64,
    pub this_process: f64,
    pub postgres: f64,
}

const TICK: f64 = 0.01; // CLK_TCK = 100 on Linux

fn process_ticks(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // After the comm: state is field 3; utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) * TICK))
}

pub fn cpu_now() -> Cpu {
    let mut cpu = Cpu::default();
    if let Some(line) = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string))
    {
        let v: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let total: f64 = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
        cpu.machine_total = total * TICK;
        cpu.machine_busy = (total - idle) * TICK;
    }
    if let Some((_, t)) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| process_ticks(&s))
    {
        cpu.this_process = t;
    }
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let stat = e.path().join("stat");
            if let Some((comm, t)) = std::fs::read_to_string(stat)
                .ok()
                .and_then(|s| process_ticks(&s))
                && comm == "postgres"
            {
                cpu.postgres += t;
            }
        }
    }
    cpu
}

impl Cpu {
    pub fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            machine_busy: self.machine_busy - before.machine_busy,
            machine_total: self.machine_total - before.machine_total,
            this_process: self.this_process - before.this_process,
            postgres: self.postgres - before.postgres,
        }
    }

    /// "machine 97% busy; per op 1.10 ms here, 1.90 ms in PostgreSQL".
    pub fn per_op(&self, ops: u64, postgres: bool) -> String {
        let busy = 100.0 * self.machine_busy / self.machine_total.max(1e-9);
        let here = 1e3 * self.this_process / ops.max(1) as f64;
        let mut s = format!("CPU {busy:.0}% busy, {here:.2} ms/op in the bench process");
        if postgres {
            let pg = 1e3 * self.postgres / ops.max(1) as f64;
            s.push_str(&format!(", {pg:.2} ms/op in PostgreSQL"));
        }
        s
    }
}

/// The machine, as the table's header states it.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cores} cores ({model}), {mem_gib:.1} GiB memory")
}

/// One durable write as the disk under `target/` does it: a 4 KiB overwrite and fdatasync,
/// the median of 300.
pub fn fsync_probe() -> Duration {
    use std::io::{Seek, SeekFrom, Write};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-tmp");
    std::fs::create_dir_all(&root).expect("target/bench-tmp");
    let path = root.join(format!("fsync-probe-{}", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("probe file");
    f.write_all(&vec![0u8; 4096 * 64]).expect("write");
    f.sync_all().expect("sync");
    let block = vec![7u8; 4096];
    let mut took = Vec::with_capacity(300);
    for i in 0..300u64 {
        let t = Instant::now();
        f.seek(SeekFrom::Start((i % 64) * 4096)).expect("seek");
        f.write_all(&block).expect("write");
        f.sync_data().expect("fdatasync");
        took.push(t.elapsed());
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    took.sort();
    percentile(&took, 50.0)
}
