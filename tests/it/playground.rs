//! `groupbuy playground`, used the way a person uses it: the real binary on its embedded
//! defaults, and headless Chromium clicking and typing in its page (through chromedriver)
//! to play scenario (a). Also: the JSON the page runs on, for the clock and the refusals.
//! The final state is kept as `target/screenshots/playground-scenario-a.png`.

use crate::support::webdriver::{Browser, CHROMEDRIVER, CHROMIUM};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(30);

/// The running `groupbuy playground` subprocess and the URL it printed.
struct Running {
    child: tokio::process::Child,
    url: String,
    banner: String,
    _cwd: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts the real binary the way the README says, from an empty folder (so on the
/// embedded defaults), on a free loopback port.
async fn start_playground() -> Running {
    let cwd = tempfile::tempdir().expect("cwd");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_groupbuy"));
    cmd.args(["playground", "--addr", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if k.starts_with("GROUPBUY_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().expect("groupbuy playground starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut banner = String::new();
    let url = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            banner.push_str(&line);
            banner.push('\n');
            if let Some(url) = line.trim().strip_prefix("open") {
                return url.trim().to_string();
            }
        }
        panic!("the playground exited before printing its URL:\n{banner}");
    })
    .await
    .expect("the playground printed its URL within 30 s");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running {
        child,
        url,
        banner,
        _cwd: cwd,
    }
}

/// Chromium and chromedriver, or `None` (after saying so loudly) when missing outside CI.
fn browser_installed() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{CHROMIUM} or {CHROMEDRIVER} is missing: CI must run the browser test \
         (apt-get install chromium chromium-driver)"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: chromium or chromium-driver not installed ***\n"
    );
    false
}

fn pane(person: i64) -> String {
    format!("//article[contains(@class,'pane')][@data-person='{person}']")
}

/// Waits until the person's chat shows `text`.
async fn sees(b: &Browser, person: i64, text: &str) {
    b.find(
        &format!(
            "{}//div[contains(@class,'messages')][contains(., \"{text}\")]",
            pane(person)
        ),
        WAIT,
    )
    .await;
}

async fn type_in_chat(b: &Browser, person: i64, text: &str) {
    let input = b
        .find(
            &format!("{}//input[contains(@class,'compose')]", pane(person)),
            WAIT,
        )
        .await;
    b.click(&input).await;
    b.type_into(&input, &format!("{text}\u{E007}")).await;
}

/// Presses the last inline button in the person's chat whose label starts with `label`.
async fn press_last(b: &Browser, person: i64, label: &str) {
    let button = b
        .find(
            &format!(
                "({}//button[contains(@class,'kb')][starts-with(normalize-space(.), \"{label}\")])[last()]",
                pane(person)
            ),
            WAIT,
        )
        .await;
    b.click(&button).await;
}

/// Pays the newest invoice in the person's chat with the address the form is filled in with.
async fn pay_newest_invoice(b: &Browser, person: i64) {
    let pay = format!(
        "({}//button[contains(@class,'kb')][contains(@class,'pay')])[last()]",
        pane(person)
    );
    let pay = b.find(&pay, WAIT).await;
    b.click(&pay).await;
    let confirm = b
        .find(
            &format!("{}//button[contains(@class,'confirm-pay')]", pane(person)),
            WAIT,
        )
        .await;
    b.click(&confirm).await;
}

fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/screenshots")
        .join(name)
}

const BOB: i64 = 1001;
const ALICE: i64 = 1002;
const DAVE: i64 = 1_234_567;
const CAROL: i64 = 1004;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_plays_scenario_a_in_the_browser() {
    if !browser_installed() {
        return;
    }
    let running = start_playground().await;
    assert!(
        running.banner.contains("Nothing is sent to Telegram"),
        "{}",
        running.banner
    );
    assert!(
        running.url.starts_with("http://127.0.0.1:"),
        "{}",
        running.url
    );
    let b = Browser::start(1880, 1080).await;
    b.goto(&running.url).await;
    b.find("//body[@data-ready='1']", WAIT).await;

    // Alice has talked to the bot before; then Bob opens the group.
    type_in_chat(&b, ALICE, "/start").await;
    sees(&b, ALICE, "Hello, Alice").await;
    type_in_chat(
        &b,
        BOB,
        "/newgroup camera 3 @alice 1234567 carol@example.com",
    )
    .await;
    sees(&b, BOB, "Your group purchase is open").await;
    sees(&b, ALICE, "Bob invited you to buy together").await;

    // Dave is prompted when he first writes (claim 11).
    type_in_chat(&b, DAVE, "/start").await;
    sees(&b, DAVE, "Bob invited you to buy together").await;

    // Carol reads her invitation in the mailbox and follows its link into her chat.
    let invitation = b
        .find(
            "//li[contains(@class,'letter')][@data-to='carol@example.com'][contains(., 'invites you')]",
            WAIT,
        )
        .await;
    b.click(&invitation).await;
    let frame = b.find("//iframe[@id='letter-html']", WAIT).await;
    b.enter_frame(&frame).await;
    let link = b
        .find("//a[starts-with(@href, 'https://t.me/')]", WAIT)
        .await;
    b.click(&link).await;
    b.leave_frame().await;
    sees(&b, CAROL, "You were invited by email as carol@example.com").await;

    // Three purchases through Telegram's payment form; Dave takes another product (claim 2).
    press_last(&b, ALICE, "Buy").await;
    pay_newest_invoice(&b, ALICE).await;
    sees(&b, ALICE, "payment received").await;
    b.find(
        &format!("{}//button[contains(@class,'paid')]", pane(ALICE)),
        WAIT,
    )
    .await;

    press_last(&b, DAVE, "Another product").await;
    sees(&b, DAVE, "Which one would you like?").await;
    press_last(&b, DAVE, "Photo scanner").await;
    pay_newest_invoice(&b, DAVE).await;
    sees(&b, DAVE, "payment received").await;

    press_last(&b, CAROL, "Buy").await;
    pay_newest_invoice(&b, CAROL).await;
    sees(&b, CAROL, "payment received").await;

    // The third purchase fills the group: the tier comes back as points, to each buyer.
    sees(&b, ALICE, "1,740 points are yours").await;
    sees(&b, DAVE, "1,490 points are yours").await;
    sees(&b, CAROL, "1,740 points are yours").await;
    sees(&b, BOB, "is settled").await;

    // The mailbox: Carol's invitation and her discount notice, readable as text too.
    let notice = b
        .find(
            "//li[contains(@class,'letter')][@data-to='carol@example.com'][contains(., 'points back')]",
            WAIT,
        )
        .await;
    b.click(&notice).await;
    let text_tab = b.find("//button[@id='show-text']", WAIT).await;
    b.click(&text_tab).await;
    let body = b.find("//pre[@id='letter-text']", WAIT).await;
    let body = b.text(&body).await;
    assert!(body.contains("1,740 points"), "Carol's notice: {body}");
    let html_tab = b.find("//button[@id='show-html']", WAIT).await;
    b.click(&html_tab).await;
    let shipping = b
        .eval("return document.querySelectorAll(\"li.letter[data-to='fulfilment@example.com']\").length")
        .await;
    assert_eq!(shipping.as_i64(), Some(3), "three shipping requests");

    let shot = screenshot_path("playground-scenario-a.png");
    b.screenshot(&shot).await;
    eprintln!("screenshot: {}", shot.display());
}

/// The page's JSON API in-process: what the panes post, and the fast-forward control.
mod api {
    use super::*;
    use groupbuy::playground::{Options, Playground};
    use serde_json::{Value, json};

    struct Page {
        playground: Option<Playground>,
        http: reqwest::Client,
        _dir: tempfile::TempDir,
    }

    impl Page {
        async fn start() -> Page {
            crate::helpers::init_logs();
            let dir = tempfile::tempdir().expect("data dir");
            let example = std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/groupbuy.example.toml"
            ));
            let config = groupbuy::cli::load_config(Some(&example)).expect("example config");
            let playground = Playground::start(
                config,
                Options {
                    addr: "127.0.0.1:0".parse().expect("addr"),
                    data_dir: Some(dir.path().to_path_buf()),
                },
            )
            .await
            .expect("the playground starts");
            Page {
                playground: Some(playground),
                http: reqwest::Client::new(),
                _dir: dir,
            }
        }

        fn url(&self, path: &str) -> String {
            let base = &self.playground.as_ref().expect("running").url;
            format!("{}{}", base.trim_end_matches('/'), path)
        }

        async fn post(&self, path: &str, body: Value) -> (u16, Value) {
            let res = self
                .http
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .expect("post");
            let status = res.status().as_u16();
            (status, res.json().await.unwrap_or(Value::Null))
        }

        async fn state(&self) -> Value {
            self.http
                .get(self.url("/api/state"))
                .send()
                .await
                .expect("state")
                .json()
                .await
                .expect("json")
        }

        /// The person's chat once a bot message containing `text` is in it.
        async fn wait_for(&self, person: i64, text: &str) -> Value {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let state = self.state().await;
                let chat = state["people"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["id"] == json!(person))
                    .map(|p| p["chat"].clone())
                    .unwrap_or(Value::Null);
                if let Some(m) = chat.as_array().into_iter().flatten().find(|m| {
                    m["from_bot"] == json!(true)
                        && m["text"].as_str().is_some_and(|t| t.contains(text))
                }) {
                    return m.clone();
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{person} never saw {text:?}: {chat:#}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    impl Page {
        async fn wait_for_invoice(&self, person: i64) -> Value {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let state = self.state().await;
                let found = state["people"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["id"] == json!(person))
                    .flat_map(|p| p["chat"].as_array().cloned().unwrap_or_default())
                    .find(|m| !m["invoice"].is_null());
                if let Some(m) = found {
                    return m;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no invoice for {person}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    fn button(message: &Value, label: &str) -> String {
        message["keyboard"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .find(|b| b["text"].as_str().is_some_and(|t| t.starts_with(label)))
            .and_then(|b| b["callback_data"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("no {label:?} button: {message:#}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fast_forward_lets_the_sweep_settle_an_unfilled_group() {
        let mut page = Page::start().await;
        page.post("/api/say", json!({"person": ALICE, "text": "/start"}))
            .await;
        page.wait_for(ALICE, "Hello, Alice").await;
        let (status, _) = page
            .post(
                "/api/say",
                json!({"person": BOB, "text": "/newgroup camera 3 @alice"}),
            )
            .await;
        assert_eq!(status, 200);
        let prompt = page.wait_for(ALICE, "invited you to buy together").await;
        let data = button(&prompt, "Buy");
        page.post(
            "/api/press",
            json!({"person": ALICE, "message_id": prompt["id"], "data": data}),
        )
        .await;
        let invoice = page.wait_for_invoice(ALICE).await;
        assert_eq!(invoice["invoice"]["need_shipping_address"], json!(true));

        // Telegram's payment form refuses to go on without the address the invoice asks for.
        let (status, body) = page
            .post(
                "/api/pay",
                json!({"person": ALICE, "message_id": invoice["id"], "name": "Alice"}),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(body["error"], "the invoice needs a shipping address");

        let (status, body) = page
            .post(
                "/api/pay",
                json!({"person": ALICE, "message_id": invoice["id"], "name": "Alice",
                       "country_code": "jp", "state": "Tokyo", "city": "Tokyo",
                       "street_line1": "2-3 Shibuya", "post_code": "100-0001"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["paid"], json!(34_800));
        page.wait_for(ALICE, "payment received").await;

        // Nothing settles before the key expires; 73 hours later the sweep closes the group.
        let before = page.state().await["clock"]["now"].as_i64().expect("now");
        let (status, body) = page.post("/api/forward", json!({"hours": 73})).await;
        assert_eq!(status, 200);
        assert!(body["now"].as_i64().expect("now") >= before + 73 * 3600);
        page.wait_for(ALICE, "Your group purchase has closed").await;
        page.wait_for(BOB, "is settled").await;
        let state = page.state().await;
        assert!(state["clock"]["skipped_secs"].as_i64().expect("skipped") >= 73 * 3600);
        assert_eq!(state["violations"], json!([]), "every call was valid");

        page.playground
            .take()
            .expect("running")
            .stop()
            .await
            .expect("stops cleanly");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_page_refuses_what_a_pane_cannot_do() {
        let page = Page::start().await;
        for (path, body, error) in [
            (
                "/api/say",
                json!({"person": 9, "text": "hi"}),
                "nobody with id 9 is playing",
            ),
            (
                "/api/say",
                json!({"person": BOB, "text": "   "}),
                "type a message first",
            ),
            (
                "/api/say",
                json!({"person": BOB, "text": "x".repeat(4097)}),
                "Telegram messages hold at most 4096 characters",
            ),
            (
                "/api/pay",
                json!({"person": BOB, "message_id": 424242}),
                "there is no invoice with that message id in this chat",
            ),
            (
                "/api/forward",
                json!({"hours": 0}),
                "fast-forward by 1 hour to 1 year",
            ),
            (
                "/api/people",
                json!({"name": ""}),
                "a name of 1 to 64 characters, please",
            ),
        ] {
            let (status, got) = page.post(path, body).await;
            assert_eq!(status, 422, "{path}: {got}");
            assert_eq!(got["error"], error, "{path}");
        }
        // Mail ids never leave the mail folder.
        let res = page
            .http
            .get(page.url("/api/mail/..%2F..%2Fetc%2Fpasswd"))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status().as_u16(), 404);

        // "Add a person": a new pane with a fresh id; the table seats eight.
        let (status, erin) = page.post("/api/people", json!({"name": "Erin"})).await;
        assert_eq!(status, 200);
        assert_eq!(erin["id"], json!(1005));
        for name in ["Fay", "Gus", "Hal"] {
            assert_eq!(page.post("/api/people", json!({"name": name})).await.0, 200);
        }
        let (status, full) = page.post("/api/people", json!({"name": "Ivy"})).await;
        assert_eq!(status, 422);
        assert_eq!(full["error"], "the table seats 8; that is everyone");
        assert_eq!(
            page.state().await["people"].as_array().map(Vec::len),
            Some(8)
        );
    }
}
