//! End to end in a real browser: headless Chromium (Debian's `chromium` package, installed by
//! `.ci/run`) opens a group page at a phone's size, and we check what it rendered and keep a
//! screenshot for people to look at: `target/screenshots/group-page-phone.png`.

use crate::helpers::*;
use crate::support::TgUser;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
/// An iPhone 12–15's viewport in CSS pixels.
const PHONE: &str = "--window-size=390,844";

/// The browser, or `None` (after saying so loudly) when it is missing outside CI.
fn chromium() -> Option<&'static Path> {
    let path = Path::new(CHROMIUM);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{CHROMIUM} is missing: CI must run the browser test (apt-get install chromium)"
    );
    // Straight to the terminal: the test harness captures print! but not this.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: chromium not installed (apt-get install chromium) ***\n"
    );
    None
}

/// Runs headless Chromium with a fresh profile and returns its standard output.
async fn run(browser: &Path, args: &[&str]) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = tokio::process::Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .kill_on_drop(true);
    // Async, so the service under test keeps answering on this runtime meanwhile.
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium finished within 90 s")
        .expect("chromium starts");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir.join(name)
}

async fn screenshot(browser: &Path, url: &str, size: &str, name: &str) -> PathBuf {
    let path = screenshot_path(name);
    let _ = std::fs::remove_file(&path);
    let arg = format!("--screenshot={}", path.display());
    // Under a heavily loaded machine Chromium has been seen to exit without writing the
    // file; a second try is cheap and the assertions below still hold on what it writes.
    for _ in 0..3 {
        run(browser, &[&arg, size, url]).await;
        if path.exists() {
            break;
        }
    }
    let png = std::fs::read(&path).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is a PNG");
    assert!(
        png.len() > 10_000,
        "{name} is not blank ({} bytes)",
        png.len()
    );
    path
}

#[tokio::test]
async fn a_phone_shows_the_group_page_with_its_deep_link_and_seats() {
    let Some(browser) = chromium() else {
        return;
    };
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    let key = app
        .new_group(&TgUser::new(4001, "Olga"), "camera 3 48h")
        .await;
    app.buy(&TgUser::new(4002, "Alice"), &key, "camera", tokyo())
        .await;
    app.buy(&TgUser::new(4003, "Bruno"), &key, "camera", tokyo())
        .await;
    let url = format!("http://{}/g/{key}", app.http);

    let dom = run(browser, &["--dump-dom", PHONE, &url]).await;
    assert!(
        dom.contains(&format!(
            r#"<a class="buy" href="https://t.me/groupbuy_test_bot?start={key}">Buy in Telegram</a>"#
        )),
        "deep link in the rendered page: {dom}"
    );
    assert!(dom.contains("<strong>2 of 3</strong> seats taken"), "{dom}");
    assert!(dom.contains("<li>Alice</li>"));

    let phone = screenshot(browser, &url, PHONE, "group-page-phone.png").await;
    // The whole page at the same width, for a person reviewing the design.
    screenshot(
        browser,
        &url,
        "--window-size=390,2000",
        "group-page-phone-full.png",
    )
    .await;
    let _ = writeln!(std::io::stderr(), "screenshot: {}", phone.display());
}
