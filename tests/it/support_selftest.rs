//! Self-tests of the test infrastructure: the SMTP sink against lettre, and the built-in Bot
//! API schema against the shared one. (The Bot API emulator's own self-tests live in its
//! crate, `crates/bot-api-emulator/tests`.)

use crate::support::smtp::SmtpSink;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

// ---- SMTP ---------------------------------------------------------------------------------

mod smtp {
    use super::*;
    use lettre::message::{Mailbox, MultiPart};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    fn transport(sink: &SmtpSink) -> AsyncSmtpTransport<Tokio1Executor> {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(sink.port())
            .build()
    }

    fn invitation(to: &str, subject: &str, id: &str, text: &str, html: &str) -> Message {
        Message::builder()
            .from(
                "Groupbuy <noreply@groupbuy.test>"
                    .parse::<Mailbox>()
                    .expect("from"),
            )
            .to(to.parse::<Mailbox>().expect("to"))
            .subject(subject)
            .message_id(Some(format!("<{id}>")))
            .multipart(MultiPart::alternative_plain_html(
                text.to_owned(),
                html.to_owned(),
            ))
            .expect("build message")
    }

    #[tokio::test]
    async fn sink_receives_multipart_mails_from_lettre() {
        let sink = SmtpSink::start().await;
        assert_eq!(sink.url(), format!("smtp://127.0.0.1:{}", sink.port()));
        let mailer = transport(&sink);

        let text1 = "Hello Bob,\r\n.a line starting with a dot\r\n..two dots\r\n.\r\nJoin: https://groupbuy.test/j/abc";
        mailer
            .send(invitation(
                "Bob <bob@example.com>",
                "Alice invites you: 5 × coffee beans — 20 % off",
                "inv-1@groupbuy.test",
                text1,
                "<p>Hello <b>Bob</b> &amp; friends</p>",
            ))
            .await
            .expect("send first mail");
        mailer
            .send(invitation(
                "carol@example.com",
                "Second",
                "inv-2@groupbuy.test",
                "Plain two ünïcödé",
                "<p>Two</p>",
            ))
            .await
            .expect("send second mail");

        sink.expect_mails(2);
        assert!(
            sink.wait_for_count(2, T).await,
            "sink did not get 2 mails: {:?}",
            sink.messages()
        );
        let mails = sink.messages();
        assert_eq!(mails.len(), 2);

        let m = &mails[0];
        assert_eq!(m.envelope_from, "noreply@groupbuy.test");
        assert_eq!(m.envelope_to, vec!["bob@example.com".to_owned()]);
        assert_eq!(
            m.subject().as_deref(),
            Some("Alice invites you: 5 × coffee beans — 20 % off")
        );
        assert_eq!(
            m.header("Subject").as_deref(),
            Some("Alice invites you: 5 × coffee beans — 20 % off"),
            "raw header: {}",
            m.raw
        );
        assert_eq!(m.message_id().as_deref(), Some("inv-1@groupbuy.test"));
        let text = m.text_body().expect("text/plain part");
        assert_eq!(
            text.replace("\r\n", "\n").trim_end(),
            text1.replace("\r\n", "\n"),
            "dot-unstuffing"
        );
        assert_eq!(
            m.html_body().as_deref().map(str::trim_end),
            Some("<p>Hello <b>Bob</b> &amp; friends</p>")
        );
        assert!(
            m.header("From")
                .expect("From")
                .contains("noreply@groupbuy.test")
        );

        let m = &mails[1];
        assert_eq!(m.subject().as_deref(), Some("Second"));
        assert_eq!(m.message_id().as_deref(), Some("inv-2@groupbuy.test"));
        assert_eq!(
            m.text_body().as_deref().map(str::trim_end),
            Some("Plain two ünïcödé")
        );
        assert_eq!(
            m.html_body().as_deref().map(str::trim_end),
            Some("<p>Two</p>")
        );
        assert_eq!(sink.mails_to("CAROL@example.com").len(), 1);
    }

    #[tokio::test]
    async fn sink_handles_concurrent_connections() {
        let sink = SmtpSink::start().await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let mailer = transport(&sink);
            tasks.push(tokio::spawn(async move {
                let to = format!("u{i}@example.com");
                mailer
                    .send(invitation(
                        &to,
                        &format!("n{i}"),
                        &format!("c{i}@t"),
                        "t",
                        "<p>h</p>",
                    ))
                    .await
            }));
        }
        for t in tasks {
            t.await.expect("join").expect("send");
        }
        assert!(sink.wait_for_count(8, T).await);
        for i in 0..8 {
            assert_eq!(sink.mails_to(&format!("u{i}@example.com")).len(), 1);
        }
    }

    #[tokio::test]
    async fn sink_faults_reject_rcpt_and_go_down() {
        let sink = SmtpSink::start().await;
        let mailer = transport(&sink);
        let mail = || invitation("dan@example.com", "s", "f@t", "t", "<p>h</p>");

        sink.reject_rcpt_next(1, 550, "5.1.1 no such user");
        let err = mailer
            .send(mail())
            .await
            .expect_err("550 on RCPT must fail");
        assert!(err.is_permanent(), "{err:?}");
        sink.reject_rcpt_next(1, 451, "4.3.0 try later");
        let err = mailer
            .send(mail())
            .await
            .expect_err("451 on RCPT must fail");
        assert!(err.is_transient(), "{err:?}");
        mailer.send(mail()).await.expect("third attempt succeeds");
        assert!(sink.wait_for_count(1, T).await);

        sink.set_down(true);
        let fresh = transport(&sink);
        fresh.send(mail()).await.expect_err("sink is down");
        sink.set_down(false);
        let fresh = transport(&sink);
        fresh
            .send(mail())
            .await
            .expect("sink is up again on the same port");
        assert!(sink.wait_for_count(2, T).await);
    }

    #[tokio::test]
    async fn raw_smtp_dialogue() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let sink = SmtpSink::start().await;
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", sink.port()))
            .await
            .expect("connect");
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let mut line = String::new();
        let mut expect = async |prefix: &str, r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>| {
            line.clear();
            r.read_line(&mut line).await.expect("read");
            assert!(line.starts_with(prefix), "expected {prefix}, got {line:?}");
        };
        expect("220 ", &mut r).await;
        w.write_all(b"MAIL FROM:<a@b>\r\n").await.expect("w");
        expect("503", &mut r).await;
        w.write_all(b"EHLO me\r\n").await.expect("w");
        for p in ["250-", "250-8BITMIME", "250-SMTPUTF8", "250 PIPELINING"] {
            expect(p, &mut r).await;
        }
        // Pipelined transaction.
        w.write_all(b"MAIL FROM:<a@b> BODY=8BITMIME\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\nDATA\r\n")
            .await
            .expect("w");
        for p in ["250", "250", "250", "354"] {
            expect(p, &mut r).await;
        }
        w.write_all(b"Subject: raw\r\n\r\n..dot\r\nend\r\n.\r\n")
            .await
            .expect("w");
        expect("250", &mut r).await;
        w.write_all(b"RSET\r\nNOOP\r\nDATA\r\nQUIT\r\n")
            .await
            .expect("w");
        for p in ["250", "250", "503", "221"] {
            expect(p, &mut r).await;
        }
        assert!(sink.wait_for_count(1, T).await);
        let m = &sink.messages()[0];
        assert_eq!(m.envelope_to, vec!["x@y".to_owned(), "z@y".to_owned()]);
        assert_eq!(m.raw, "Subject: raw\r\n\r\n.dot\r\nend\r\n");
    }
}

/// The emulator checks calls against its built-in copy of the Bot API schema
/// (`crates/bot-api-emulator/vendor/telegram/bot-api.json`, so the playground runs from a bare
/// clone); that copy must
/// be the shared one, byte for byte. CI has `../shared`; elsewhere a missing file is reported.
#[test]
fn the_built_in_bot_api_schema_is_the_shared_one() {
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/telegram/bot-api.json");
    match std::fs::read_to_string(&shared) {
        Ok(text) => assert!(
            text == bot_api_emulator::schema::SCHEMA_JSON,
            "crates/bot-api-emulator/vendor/telegram/bot-api.json differs from {}: copy it again",
            shared.display()
        ),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must compare the built-in schema with {}: {e}",
                shared.display()
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** NOT COMPARED: {} is not here ({e}) ***\n",
                shared.display()
            );
        }
    }
}
