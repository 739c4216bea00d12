//! Scenario 4, email: 10,000 discount notices (text + HTML, as settlement renders them) to a loopback
//! SMTP server (the test suite's `SmtpSink`): (a) through the service — queued in the outbox,
//! delivered by the outbox worker with the pooled lettre client; (b) the pooled client alone
//! (`Mailer::send`, as many on the way at once as the worker has); (c) the reference for
//! (b): a bare SMTP client on one connection sending the same bytes.

use crate::Row;
use crate::common::*;
use crate::support::{FakeBotApi, SmtpSink};
use groupbuy::mail::Mailer;
use groupbuy::mail::render::DiscountNotice;
use groupbuy::mail::transport::{IN_FLIGHT, Outgoing};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const MAILS: usize = 10_000;
/// A phase that has not finished by then is measured on what it sent so far.
const PHASE_LIMIT: Duration = Duration::from_secs(20);

fn notice(i: usize) -> groupbuy::mail::Rendered {
    DiscountNotice {
        key: "K7M2QX9TB4WZ8RDN3H".into(),
        product: "Digital camera".into(),
        buyers: 5,
        head_count: 10,
        open_count: false,
        rate: "10%".into(),
        points: 3_480,
        points_text: "3,480".into(),
        extra: 0,
        extra_text: String::new(),
        bonus: 500,
        bonus_text: "¥500".into(),
        unit: "JPY".into(),
        reason: String::new(),
        balance_text: format!("{}", 3_480 + i),
        receipt_url: format!("https://shop.example.com/g/K7M2QX9TB4WZ8RDN3H/receipt/r{i:019}"),
    }
    .render()
    .expect("renders")
}

/// Queues `MAILS` discount notices as emails in the outbox, as settlement would, then lets go
/// of the database so the service under test has it alone.
async fn queue_notices(config: groupbuy::config::Config, prefix: &str) {
    let ctx = library(config).await;
    let now = ctx.now();
    let mut tx = ctx.store.write().await.expect("write");
    for i in 0..MAILS {
        groupbuy::app::queue_email(
            &mut tx,
            now,
            format!("{prefix}:{i}"),
            &format!("buyer{i}@example.com"),
            notice(i),
        )
        .await
        .expect("queued");
    }
    tx.commit().await.expect("commit");
    ctx.store.pool().close().await;
}

pub async fn run() -> Vec<Row> {
    let db = Db::fresh(Kind::Sqlite).await;
    let fake = FakeBotApi::start().await;
    let smtp = SmtpSink::start().await;
    let config = config_for(&fake, &smtp, &db.url, &[]);

    // (a) The service: 10,000 notices wait in the outbox; the worker sends them.
    queue_notices(config.clone(), "bench-notice").await;
    let t0 = Instant::now();
    let mut service = Service::start(config.clone()).await;
    let finished = smtp.wait_for_count(MAILS, PHASE_LIMIT).await;
    let service_took = t0.elapsed();
    let service_sent = smtp.messages().len().min(MAILS);
    service.stop().await;
    if finished {
        let sent = count(
            &service.ctx,
            "SELECT COUNT(*) FROM outbox WHERE status = 'sent'",
        )
        .await;
        assert_eq!(sent as usize, MAILS, "every row marked sent");
    }
    let bodies: Vec<String> = smtp.messages().into_iter().take(1).map(|m| m.raw).collect();
    smtp.clear();

    // (b) The pooled client alone, as the outbox worker drives it: `IN_FLIGHT` sends on the
    // way at once, each on a pooled connection.
    let mailer = Mailer::from_config(&config).expect("mailer");
    let rendered: std::sync::Arc<Vec<_>> = std::sync::Arc::new((0..MAILS).map(notice).collect());
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (mailer, rendered, next) = (mailer.clone(), rendered.clone(), next.clone());
        senders.spawn(async move {
            let mut sent = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= MAILS || t0.elapsed() > PHASE_LIMIT {
                    return sent;
                }
                let r = &rendered[i];
                send_one(&mailer, i, r, "bench").await;
                sent += 1;
            }
        });
    }
    let mut mailer_sent = 0;
    while let Some(n) = senders.join_next().await {
        mailer_sent += n.expect("sender task");
    }
    let mailer_took = t0.elapsed();
    assert!(
        smtp.wait_for_count(mailer_sent, Duration::from_secs(10))
            .await
    );
    smtp.clear();

    // (b') The same client one message after another, for 3 s: what one connection does
    // when the server acknowledges the end of each message late (lettre writes the body and
    // the final dot separately, without TCP_NODELAY: Nagle waits for the delayed ACK).
    let t0 = Instant::now();
    let mut serial_sent = 0;
    while t0.elapsed() < Duration::from_secs(3) {
        send_one(&mailer, serial_sent, &rendered[serial_sent], "serial").await;
        serial_sent += 1;
    }
    let serial_took = t0.elapsed();
    assert!(
        smtp.wait_for_count(serial_sent, Duration::from_secs(10))
            .await
    );
    smtp.clear();

    // (c) A bare SMTP client: one connection, one command at a time, the same message.
    let raw = bodies.first().cloned().unwrap_or_default();
    let bare_took = bare_smtp(smtp.port(), &raw).await;
    assert!(smtp.wait_for_count(MAILS, Duration::from_secs(10)).await);
    smtp.clear();

    // (d) lettre's own SMTP connection over a socket with TCP_NODELAY (what lettre's merged,
    // unreleased PR #1159 does to every connection), the same messages.
    let nodelay_took = lettre_nodelay(smtp.port(), &rendered).await;
    assert!(smtp.wait_for_count(MAILS, Duration::from_secs(10)).await);
    smtp.clear();

    // (e) The outbox worker without SMTP (`GROUPBUY_SMTP_URL` unset: each mail becomes an
    // .eml file): what the worker itself can do.
    let files_took = worker_to_files(&fake, &smtp).await;

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let (service_rate, mailer_rate, bare_rate) = (
        rate(service_sent, service_took),
        rate(mailer_sent, mailer_took),
        rate(MAILS, bare_took),
    );
    let (nodelay_rate, files_rate) = (rate(MAILS, nodelay_took), rate(MAILS, files_took));
    let serial_rate = rate(serial_sent, serial_took);
    let of = |n: usize| {
        if n >= MAILS {
            "10,000".to_string()
        } else {
            format!("{n} of 10,000 in the {} s allowed", PHASE_LIMIT.as_secs())
        }
    };
    vec![
        Row::new(
            format!(
                "4. emails/s through the service ({}): queued notices, outbox worker → pooled SMTP client → loopback SMTP",
                of(service_sent)
            ),
            "≥ 500/s",
            format!("{service_rate:.0}/s"),
            format!("{mailer_rate:.0}/s pooled client alone"),
            service_rate / mailer_rate,
            service_rate >= 500.0,
        ),
        Row::new(
            format!(
                "4. emails/s, the pooled SMTP client alone (`Mailer::send`, {}, {IN_FLIGHT} on the way at once as the worker sends them)",
                of(mailer_sent)
            ),
            "≥ 500/s",
            format!("{mailer_rate:.0}/s"),
            format!("{bare_rate:.0}/s bare SMTP client"),
            mailer_rate / bare_rate,
            mailer_rate >= 500.0,
        ),
        Row::info(
            format!(
                "4. (bound) the pooled client one after another ({serial_sent} in 3 s): each waits ~40 ms for the delayed ACK of its final dot"
            ),
            format!("{serial_rate:.0}/s"),
            format!("{bare_rate:.0}/s bare SMTP client"),
        ),
        Row::info(
            "4. (bound) lettre's SMTP connection with TCP_NODELAY, 10,000 one after another".into(),
            format!("{nodelay_rate:.0}/s"),
            format!("{bare_rate:.0}/s bare SMTP client"),
        ),
        Row::info(
            "4. (bound) the outbox worker without SMTP: 10,000 queued notices to .eml files".into(),
            format!("{files_rate:.0}/s"),
            format!("{service_rate:.0}/s with SMTP"),
        ),
    ]
}

async fn send_one(mailer: &Mailer, i: usize, r: &groupbuy::mail::Rendered, tag: &str) {
    let to = format!("buyer{i}@example.com");
    mailer
        .send(&Outgoing {
            to: &to,
            subject: &r.subject,
            text: &r.text,
            html: Some(&r.html),
            message_id: format!("<gb.{i}.{tag}@example.com>"),
            unsubscribe: None,
        })
        .await
        .expect("sent");
}

async fn lettre_nodelay(port: u16, rendered: &[groupbuy::mail::Rendered]) -> Duration {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::client::AsyncSmtpConnection;
    use lettre::transport::smtp::extension::ClientId;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let t0 = Instant::now();
    let mut conn =
        AsyncSmtpConnection::connect_with_transport(Box::new(stream), &ClientId::default())
            .await
            .expect("EHLO");
    let from: Mailbox = "groupbuy <shop@example.com>".parse().expect("from");
    for (i, r) in rendered.iter().enumerate() {
        let to: Mailbox = format!("buyer{i}@example.com").parse().expect("to");
        let message = lettre::Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&r.subject)
            .message_id(Some(format!("<gb.{i}.nodelay@example.com>")))
            .multipart(MultiPart::alternative_plain_html(
                r.text.clone(),
                r.html.clone(),
            ))
            .expect("message");
        conn.send(message.envelope(), &message.formatted())
            .await
            .expect("sent");
    }
    t0.elapsed()
}

async fn worker_to_files(fake: &FakeBotApi, smtp: &SmtpSink) -> Duration {
    let db = Db::fresh(Kind::Sqlite).await;
    let dir = db.dir.path().join("mail");
    let dir_s = dir.display().to_string();
    let config = config_for(
        fake,
        smtp,
        &db.url,
        &[("GROUPBUY_SMTP_URL", ""), ("GROUPBUY_MAIL_DIR", &dir_s)],
    );
    queue_notices(config.clone(), "bench-file").await;
    let t0 = Instant::now();
    let mut service = Service::start(config).await;
    loop {
        let sent = count(
            &service.ctx,
            "SELECT COUNT(*) FROM outbox WHERE status = 'sent'",
        )
        .await;
        if sent as usize >= MAILS || t0.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t0.elapsed();
    service.stop().await;
    assert_eq!(
        std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0),
        MAILS,
        "one .eml file per email"
    );
    took
}

/// Sends `MAILS` copies of `raw` (already dot-stuffed by the sink's reading: it has none)
/// over one connection, waiting for every reply like a plain client would.
async fn bare_smtp(port: u16, raw: &str) -> Duration {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, line: &mut String) {
        loop {
            line.clear();
            r.read_line(line).await.expect("reply");
            assert!(line.len() >= 4, "short reply {line:?}");
            if line.as_bytes()[3] == b' ' {
                assert!(matches!(line.as_bytes()[0], b'2' | b'3'), "{line}");
                return;
            }
        }
    }
    reply(&mut r, &mut line).await;
    let t0 = Instant::now();
    w.write_all(b"EHLO bench\r\n").await.expect("write");
    reply(&mut r, &mut line).await;
    let data = format!("{}\r\n.\r\n", raw.trim_end_matches("\r\n"));
    for i in 0..MAILS {
        w.write_all(b"MAIL FROM:<shop@example.com>\r\n")
            .await
            .expect("write");
        reply(&mut r, &mut line).await;
        w.write_all(format!("RCPT TO:<buyer{i}@example.com>\r\n").as_bytes())
            .await
            .expect("write");
        reply(&mut r, &mut line).await;
        w.write_all(b"DATA\r\n").await.expect("write");
        reply(&mut r, &mut line).await;
        w.write_all(data.as_bytes()).await.expect("write");
        reply(&mut r, &mut line).await;
    }
    let took = t0.elapsed();
    let _ = w.write_all(b"QUIT\r\n").await;
    took
}
