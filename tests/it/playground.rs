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

impl Running {
    /// Ctrl-C, as a person stops it: the playground must end cleanly and soon.
    async fn interrupt(mut self) {
        let pid = self.child.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill -INT");
        assert!(sent.success());
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the playground stopped within 30 s of Ctrl-C")
            .expect("exit status");
        assert!(status.success(), "exit after Ctrl-C: {status}");
    }
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
    cmd.args(["playground", "--addr", "127.0.0.1:0", "--data"])
        .arg(cwd.path().join("data"))
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
    // Typing focuses the field with the caret after what is there (WebDriver's rule).
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
    // Bob picks /newgroup from the command menu the bot registered, then types the rest.
    let menu = b
        .find(
            &format!("{}//button[contains(@class,'menu')]", pane(BOB)),
            WAIT,
        )
        .await;
    b.click(&menu).await;
    let newgroup = b
        .find(
            &format!(
                "{}//ul[contains(@class,'command-menu')]//button[strong='/newgroup']",
                pane(BOB)
            ),
            WAIT,
        )
        .await;
    b.click(&newgroup).await;
    type_in_chat(&b, BOB, "camera 3 @alice 1234567 carol@example.com").await;
    sees(&b, BOB, "Your group purchase is open").await;
    sees(&b, ALICE, "Bob invited you to buy together").await;

    // Dave comes by the group page, whose "Buy in Telegram" opens the bot in his account;
    // he is prompted on that first contact (claim 11).
    b.find(&format!("{}//a[contains(@href, '/g/')]", pane(BOB)), WAIT)
        .await;
    let group_page = b
        .eval(&format!(
            "return document.evaluate(\"({}//a[contains(@href, '/g/')])[1]\", document, null, 9, null).singleNodeValue.href",
            pane(BOB)
        ))
        .await;
    let group_page = group_page
        .as_str()
        .expect("the group page's address")
        .to_string();
    assert!(group_page.starts_with(&running.url), "{group_page}");
    b.goto(&group_page).await;
    let buy = b.find("//a[contains(@class,'buy')]", WAIT).await;
    b.click(&buy).await;
    let dave = b
        .find(
            "//form[contains(@class,'chooser')]//button[normalize-space(.)='Dave']",
            WAIT,
        )
        .await;
    b.click(&dave).await;
    b.find("//body[@data-ready='1']", WAIT).await;
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
    drop(b);
    running.interrupt().await;
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

        /// GET a path of the page (or a whole URL it handed out).
        async fn get(&self, path_or_url: &str) -> reqwest::Response {
            let url = if path_or_url.starts_with("http") {
                path_or_url.to_string()
            } else {
                self.url(path_or_url)
            };
            self.http.get(&url).send().await.expect("get")
        }

        async fn get_text(&self, path_or_url: &str) -> String {
            self.get(path_or_url).await.text().await.expect("text")
        }

        async fn state(&self) -> Value {
            self.get("/api/state").await.json().await.expect("json")
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
        assert_eq!(
            body["error"],
            "the invoice needs a shipping address (country, city, street and post code)"
        );

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
        let res = page.get("/api/mail/..%2F..%2Fetc%2Fpasswd").await;
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_this_machine_may_drive_it_and_telegram_links_stay_inside() {
        let page = Page::start().await;
        // A page of another site, reached by DNS rebinding or a cross-site form, is refused.
        let res = page
            .http
            .get(page.url("/api/state"))
            .header("Host", "evil.example:80")
            .send()
            .await
            .expect("get");
        assert_eq!(res.status().as_u16(), 403);
        let res = page
            .http
            .post(page.url("/api/say"))
            .header("Origin", "http://evil.example")
            .json(&json!({"person": BOB, "text": "/start"}))
            .send()
            .await
            .expect("post");
        assert_eq!(res.status().as_u16(), 403);
        let state = page.state().await;
        assert_eq!(state["people"][0]["chat"], json!([]), "nothing was said");
        let csp = page
            .get("/")
            .await
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        assert!(csp.is_some_and(|c| c.contains("script-src 'self'")));

        // A mistake in a body is explained in the page's own words.
        let res = page
            .http
            .post(page.url("/api/forward"))
            .json(&json!({"hours": "soon"}))
            .send()
            .await
            .expect("post");
        assert_eq!(res.status().as_u16(), 422);
        let body: Value = res.json().await.expect("json error");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("hours")),
            "{body}"
        );

        // The service's group page is served by the playground, with Telegram links kept in.
        page.post(
            "/api/say",
            json!({"person": BOB, "text": "/newgroup camera 2 carol@example.com"}),
        )
        .await;
        let confirmation = page.wait_for(BOB, "Your group purchase is open").await;
        let text = confirmation["text"].as_str().expect("text");
        let base = page.url("");
        let start = text
            .find(&format!("{base}/g/"))
            .expect("the page link uses the playground");
        let link: String = text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '<')
            .collect();
        let html = page.get_text(&link).await;
        let bot = "groupbuy_test_bot";
        assert!(
            html.contains(&format!("href=\"/t.me/{bot}?start=")),
            "{html}"
        );
        assert!(
            !html.contains("https://t.me/"),
            "no link leaves the machine"
        );
        let key = link.rsplit('/').next().expect("key").to_string();

        // The t.me link asks whose chat opens it, then starts the bot in that chat.
        let chooser = page.get_text(&format!("/t.me/{bot}?start={key}")).await;
        for name in ["Bob", "Alice", "Dave", "Carol"] {
            assert!(chooser.contains(&format!(">{name}</button>")), "{chooser}");
        }
        // Another bot's link, or a person who is not playing, is refused.
        let other = page.get("/t.me/someone_else_bot?start=X").await;
        assert_eq!(other.status().as_u16(), 404);
        assert!(
            other
                .text()
                .await
                .expect("html")
                .contains("@someone_else_bot is not the playground's bot")
        );
        let nobody = page
            .http
            .post(page.url(&format!("/t.me/{bot}")))
            .header("Origin", base.clone())
            .form(&[("person", "9"), ("start", key.as_str())])
            .send()
            .await
            .expect("open");
        assert_eq!(nobody.status().as_u16(), 422);
        assert_eq!(
            nobody.json::<Value>().await.expect("json")["error"],
            "nobody with id 9 is playing"
        );
        let origin = base.clone();
        let res = page
            .http
            .post(page.url(&format!("/t.me/{bot}")))
            .header("Origin", origin)
            .form(&[("person", DAVE.to_string()), ("start", key.clone())])
            .send()
            .await
            .expect("open");
        // reqwest follows the 303 back to the page.
        assert!(
            res.url().as_str().ends_with(&format!("/?chat={DAVE}")),
            "{}",
            res.url()
        );
        let welcome = page.wait_for(DAVE, "Group purchase: Digital camera").await;

        // Buttons that are not in the chat cannot be pressed.
        let (status, body) = page
            .post(
                "/api/press",
                json!({"person": DAVE, "message_id": welcome["id"], "data": "s:FORGEDKEY:camera"}),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(body["error"], "there is no such button in this chat");

        // An invoice is paid once.
        let data = button(&welcome, "Buy");
        page.post(
            "/api/press",
            json!({"person": DAVE, "message_id": welcome["id"], "data": data}),
        )
        .await;
        let invoice = page.wait_for_invoice(DAVE).await;
        let form = json!({"person": DAVE, "message_id": invoice["id"], "name": "Dave Okafor",
            "country_code": "JP", "state": "Osaka", "city": "Osaka", "street_line1": "4-5 Umeda",
            "post_code": "530-0001"});
        let (first, second) = tokio::join!(page.post("/api/pay", form.clone()), async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            page.post("/api/pay", form.clone()).await
        });
        let mut outcomes = [first.0, second.0];
        outcomes.sort_unstable();
        assert_eq!(outcomes, [200, 422], "{first:?} {second:?}");
        let (status, body) = page.post("/api/pay", form).await;
        assert_eq!(status, 422);
        assert_eq!(body["error"], "this invoice is already paid");
        page.wait_for(DAVE, "payment received").await;

        // The name typed at checkout reaches the warehouse (order_info travels with the payment).
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let state = page.state().await;
            let shipping = state["mail"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["to"] == "fulfilment@example.com")
                .and_then(|m| m["id"].as_str().map(str::to_string));
            if let Some(id) = shipping {
                let letter: Value = page
                    .get(&format!("/api/mail/{id}"))
                    .await
                    .json()
                    .await
                    .expect("json");
                let text = letter["text"].as_str().unwrap_or_default();
                assert!(text.contains("Dave Okafor"), "{text}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no shipping request"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (status, body) = page
            .post(
                "/api/people",
                json!({"name": "Erin", "email": "not an address"}),
            )
            .await;
        assert_eq!(status, 422);
        assert_eq!(body["error"], "not an address is not an email address");
        let (status, erin) = page
            .post(
                "/api/people",
                json!({"name": "Erin", "email": "Erin@Example.com"}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(erin["email"], "erin@example.com");
    }
}
