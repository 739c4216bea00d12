//! `SmtpSink`: a minimal RFC 5321 SMTP server on 127.0.0.1 that stores every accepted message.
//!
//! EHLO advertises only `8BITMIME`, `SMTPUTF8` and `PIPELINING` (no AUTH, no STARTTLS), so
//! lettre talks plaintext to `smtp://127.0.0.1:PORT`. Several messages per connection and
//! many concurrent connections are fine. Faults: `set_down` (listener closed, open sessions
//! cut; the same port is bound again when set back up), `reject_rcpt_next`,
//! `reject_data_next`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    /// The DATA content after dot-unstuffing, CRLF line endings, without the final `.`.
    pub raw: String,
}

impl Mail {
    fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default()
            .parse(self.raw.as_bytes())
            .expect("SmtpSink: message is not parseable as RFC 5322")
    }

    /// A top-level header, unfolded and RFC 2047-decoded (`=?utf-8?…?=` words).
    pub fn header(&self, name: &str) -> Option<String> {
        let msg = self.parsed();
        let raw = msg.header_raw(name)?;
        // Reparse the raw value as an unstructured header to unfold and decode it.
        let fake = format!("Subject:{}\r\n\r\n", raw.trim_end_matches(['\r', '\n']));
        let decoded = MessageParser::default()
            .parse(fake.as_bytes())
            .and_then(|m| m.subject().map(str::to_owned));
        Some(decoded.unwrap_or_else(|| unfold(raw)))
    }

    pub fn subject(&self) -> Option<String> {
        self.parsed().subject().map(str::to_owned)
    }

    /// Message-ID without the angle brackets.
    pub fn message_id(&self) -> Option<String> {
        self.parsed().message_id().map(str::to_owned)
    }

    /// The decoded `text/plain` part (the whole body for a single-part text message).
    pub fn text_body(&self) -> Option<String> {
        self.part_text("plain")
    }

    /// The decoded `text/html` part.
    pub fn html_body(&self) -> Option<String> {
        self.part_text("html")
    }

    fn part_text(&self, subtype: &str) -> Option<String> {
        let msg = self.parsed();
        msg.parts.iter().find_map(|p| {
            let is_type = match p.content_type() {
                Some(ct) => {
                    ct.ctype().eq_ignore_ascii_case("text")
                        && ct
                            .subtype()
                            .unwrap_or("plain")
                            .eq_ignore_ascii_case(subtype)
                }
                None => subtype == "plain" && matches!(p.body, PartType::Text(_)),
            };
            let attachment = p
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
            match &p.body {
                PartType::Text(t) | PartType::Html(t) if is_type && !attachment => {
                    Some(t.to_string())
                }
                _ => None,
            }
        })
    }

    /// `true` when `addr` is one of the envelope recipients (case-insensitive).
    pub fn is_to(&self, addr: &str) -> bool {
        self.envelope_to
            .iter()
            .any(|a| a.eq_ignore_ascii_case(addr))
    }
}

fn unfold(raw: &str) -> String {
    raw.replace("\r\n", "").replace('\n', "").trim().to_owned()
}

struct Reject {
    code: u16,
    text: String,
}

#[derive(Default)]
struct SinkState {
    messages: Vec<Mail>,
    reject_rcpt: VecDeque<Reject>,
    reject_data: VecDeque<Reject>,
    connections: u64,
    /// Exact number of accepted messages expected on drop.
    expected: Option<usize>,
    accept_task: Option<tokio::task::JoinHandle<()>>,
}

struct Shared {
    state: Mutex<SinkState>,
    changed: Notify,
    /// `true` while the sink is down; sessions end when it turns `true`.
    down: watch::Sender<bool>,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct SmtpSink {
    shared: Arc<Shared>,
}

/// On drop (unless the test is already panicking): fails the test when an
/// [`SmtpSink::expect_mails`] count is not met.
impl Drop for SmtpSink {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.verify();
        }
        if let Some(t) = self.shared.lock().accept_task.take() {
            t.abort();
        }
        self.shared.down.send_replace(true);
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener =
            bind("127.0.0.1:0".parse().expect("addr")).expect("bind SMTP sink on 127.0.0.1:0");
        let addr = listener.local_addr().expect("SMTP sink local_addr");
        let (down, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(SinkState::default()),
            changed: Notify::new(),
            down,
            addr,
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        shared.lock().accept_task = Some(task);
        SmtpSink { shared }
    }

    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// `smtp://127.0.0.1:PORT` (for `AsyncSmtpTransport::from_url`).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port())
    }

    pub fn messages(&self) -> Vec<Mail> {
        self.shared.lock().messages.clone()
    }

    pub fn mails_to(&self, addr: &str) -> Vec<Mail> {
        self.shared
            .lock()
            .messages
            .iter()
            .filter(|m| m.is_to(addr))
            .cloned()
            .collect()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.lock().connections
    }

    /// The test expects exactly `n` accepted messages by the time the sink is dropped (or
    /// [`SmtpSink::verify`] is called). Wait for them first.
    pub fn expect_mails(&self, n: usize) {
        self.shared.lock().expected = Some(n);
    }

    /// Panics when the [`SmtpSink::expect_mails`] count is not met.
    #[track_caller]
    pub fn verify(&self) {
        let st = self.shared.lock();
        if let Some(n) = st.expected {
            let got = st.messages.len();
            let to: Vec<Vec<String>> = st.messages.iter().map(|m| m.envelope_to.clone()).collect();
            drop(st);
            assert_eq!(
                got, n,
                "SmtpSink: expected exactly {n} mail(s), got {got} (to: {to:?})"
            );
        }
    }

    pub fn clear(&self) {
        self.shared.lock().messages.clear();
    }

    /// Waits until at least `n` messages were accepted. `false` on timeout.
    pub async fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut notified = pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            if self.shared.lock().messages.len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// `true`: close the listener (new connections are refused) and cut open sessions.
    /// `false`: listen on the same port again. Must be called inside a tokio runtime.
    pub fn set_down(&self, down: bool) {
        let mut st = self.shared.lock();
        if down {
            if let Some(t) = st.accept_task.take() {
                t.abort();
            }
            self.shared.down.send_replace(true);
        } else if st.accept_task.is_none() {
            self.shared.down.send_replace(false);
            let listener = bind(self.shared.addr).unwrap_or_else(|e| {
                panic!("SMTP sink: cannot bind {} again: {e}", self.shared.addr)
            });
            st.accept_task = Some(tokio::spawn(accept_loop(listener, self.shared.clone())));
        }
    }

    /// The next `n` RCPT TO commands get `code text` (e.g. 550 "5.1.1 no such user",
    /// 451 "4.3.0 try later") instead of 250.
    pub fn reject_rcpt_next(&self, n: usize, code: u16, text: &str) {
        let mut st = self.shared.lock();
        for _ in 0..n {
            st.reject_rcpt.push_back(Reject {
                code,
                text: text.to_owned(),
            });
        }
    }

    /// The next `n` messages get `code text` after the final `.` of DATA (and are not stored).
    pub fn reject_data_next(&self, n: usize, code: u16, text: &str) {
        let mut st = self.shared.lock();
        for _ in 0..n {
            st.reject_data.push_back(Reject {
                code,
                text: text.to_owned(),
            });
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                shared.lock().connections += 1;
                let shared = shared.clone();
                tokio::spawn(async move {
                    let mut down = shared.down.subscribe();
                    if *down.borrow_and_update() {
                        return;
                    }
                    tokio::select! {
                        r = session(stream, &shared) => {
                            if let Err(e) = r {
                                eprintln!("[smtp-sink] session error: {e}");
                            }
                        }
                        _ = down.wait_for(|d| *d) => {}
                    }
                });
            }
            Err(e) => {
                eprintln!("[smtp-sink] accept error: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Extracts the address in `FROM:<a@b> SIZE=10` / `TO:<a@b>`.
fn path_arg(arg: &str, prefix: &str) -> Option<String> {
    let rest = arg
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &arg[prefix.len()..])?;
    let rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix('<') {
        let end = r.find('>')?;
        Some(r[..end].to_owned())
    } else {
        Some(rest.split_whitespace().next().unwrap_or("").to_owned())
    }
}

async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"220 127.0.0.1 ESMTP groupbuy-test-sink ready\r\n")
        .await?;

    let mut greeted = false;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
            None => (text.to_ascii_uppercase(), ""),
        };
        let reply: String = match verb.as_str() {
            "EHLO" => {
                greeted = true;
                from = None;
                to.clear();
                "250-127.0.0.1 greets you\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"
                    .into()
            }
            "HELO" => {
                greeted = true;
                from = None;
                to.clear();
                "250 127.0.0.1\r\n".into()
            }
            "MAIL" if !greeted => "503 5.5.1 Send EHLO/HELO first\r\n".into(),
            "MAIL" if from.is_some() => "503 5.5.1 Nested MAIL command\r\n".into(),
            "MAIL" => match path_arg(arg, "FROM:") {
                Some(a) => {
                    from = Some(a);
                    to.clear();
                    "250 2.1.0 Ok\r\n".into()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
            },
            "RCPT" if from.is_none() => "503 5.5.1 Need MAIL before RCPT\r\n".into(),
            "RCPT" => match path_arg(arg, "TO:") {
                Some(a) if !a.is_empty() => {
                    let reject = shared.lock().reject_rcpt.pop_front();
                    match reject {
                        Some(r) => format!("{} {}\r\n", r.code, r.text),
                        None => {
                            to.push(a);
                            "250 2.1.5 Ok\r\n".into()
                        }
                    }
                }
                _ => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into(),
            },
            "DATA" if from.is_none() => "503 5.5.1 Need MAIL command\r\n".into(),
            "DATA" if to.is_empty() => "554 5.5.1 No valid recipients\r\n".into(),
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut raw: Vec<u8> = Vec::new();
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(()); // connection lost mid-DATA: message discarded
                    }
                    let content = line.strip_suffix(b"\n").unwrap_or(&line);
                    let content = content.strip_suffix(b"\r").unwrap_or(content);
                    if content == b"." {
                        break;
                    }
                    let content = content.strip_prefix(b".").unwrap_or(content);
                    raw.extend_from_slice(content);
                    raw.extend_from_slice(b"\r\n");
                }
                let mail = Mail {
                    envelope_from: from.take().unwrap_or_default(),
                    envelope_to: std::mem::take(&mut to),
                    raw: String::from_utf8_lossy(&raw).into_owned(),
                };
                let reject = shared.lock().reject_data.pop_front();
                match reject {
                    Some(r) => format!("{} {}\r\n", r.code, r.text),
                    None => {
                        let n = {
                            let mut st = shared.lock();
                            st.messages.push(mail);
                            st.messages.len()
                        };
                        shared.changed.notify_waiters();
                        format!("250 2.0.0 Ok: queued as {n}\r\n")
                    }
                }
            }
            "RSET" => {
                from = None;
                to.clear();
                "250 2.0.0 Ok\r\n".into()
            }
            "NOOP" => "250 2.0.0 Ok\r\n".into(),
            "VRFY" => "252 2.0.0 Cannot VRFY user\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                write.shutdown().await.ok();
                return Ok(());
            }
            "STARTTLS" | "AUTH" => "502 5.5.1 Not implemented\r\n".into(),
            "" => "500 5.5.2 Empty command\r\n".into(),
            _ => "500 5.5.2 Command not recognized\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}
