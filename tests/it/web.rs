//! The web side over real HTTP: the group page (claim 10), the receipt page (claim 9), bad
//! and hostile input, and the key guard on the web and in the bot.

use crate::helpers::*;
use crate::support::TgUser;
use groupbuy::domain::{Money, Product, Sku};
use groupbuy::replies::UserError;
use groupbuy::store::products;
use reqwest::StatusCode;

fn org() -> TgUser {
    TgUser::new(3001, "Olga").with_username("olga_org")
}
fn alice() -> TgUser {
    TgUser::new(3_000_002, "Alice").with_username("alice_w")
}
fn mallory() -> TgUser {
    TgUser::new(3_000_003, "<script>alert(1)</script>")
}
fn sam() -> TgUser {
    TgUser::new(3_000_004, "Sam")
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(app: &TestApp, path: &str) -> Page {
    let r = reqwest::get(format!("http://{}{path}", app.http))
        .await
        .expect("the web side answers");
    Page {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.text().await.expect("body"),
    }
}

/// The path of the receipt link in the latest receipt message to `user`.
async fn receipt_path(app: &TestApp, user: &TgUser) -> String {
    let call = app.message_to(user.id, "Receipt: ").await;
    let text = call.text().expect("text");
    let at = text.find("https://shop.example.com").expect("receipt URL");
    text[at + "https://shop.example.com".len()..]
        .split_whitespace()
        .next()
        .expect("path")
        .to_string()
}

/// Nothing hostile got through as markup: the pages carry no script at all.
fn assert_inert(body: &str) {
    assert!(
        !body.to_ascii_lowercase().contains("<script"),
        "a script tag got through: {body}"
    );
}

#[tokio::test]
async fn group_page_shows_product_seats_tiers_and_the_way_into_the_bot() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    let key = app
        .new_group(&org(), "camera 4 carol@example.com 48h")
        .await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    app.buy(&mallory(), &key, "camera", tokyo()).await;

    let page = get(&app, &format!("/g/{key}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let b = &page.body;
    assert!(b.contains("<h1>Digital camera</h1>"), "{b}");
    assert!(b.contains("34,800 JPY"));
    assert!(
        b.contains("<strong>2 of 4</strong> seats taken · 2 left"),
        "{b}"
    );
    assert!(b.contains(r#"<progress max="4" value="2""#));
    assert!(b.contains(&format!(
        r#"<a class="buy" href="https://t.me/groupbuy_test_bot?start={key}">Buy in Telegram</a>"#
    )));
    assert!(
        b.contains(r#"<svg class="qr" role="img""#),
        "QR code inline"
    );
    assert!(
        b.contains("</strong> · open until <time datetime=\""),
        "{b}"
    );
    // The 2-buyer tier is the one reached; the table stops at the head count.
    assert!(
        b.contains(r#"<tr class="reached" aria-current="true"><th scope="row">2</th><td>3% <span class="badge">reached now</span></td><td>1,044</td></tr>"#),
        "{b}"
    );
    assert_eq!(b.matches("class=\"reached\"").count(), 1);
    assert!(b.contains(r#"<th scope="row">4</th><td>10%</td><td>3,480</td>"#));
    // OpenGraph for link previews in Telegram and mail clients.
    assert!(b.contains(r#"<meta property="og:title" content="Buy Digital camera together — 10% back when 4 buy">"#), "{b}");
    assert!(b.contains(r#"<meta property="og:description" content="34,800 JPY each"#));
    assert!(b.contains(&format!(
        r#"<meta property="og:url" content="https://shop.example.com/g/{key}">"#
    )));
    // Buyers by first name only: no ids, usernames or emails; hostile names stay text.
    assert!(b.contains("<li>Alice</li>"));
    assert!(
        b.contains("<li>&#60;script&#62;alert(1)&#60;/script&#62;</li>")
            || b.contains("<li>&lt;script&gt;alert(1)&lt;/script&gt;</li>"),
        "{b}"
    );
    for secret in [
        "3000002", "3000003", "3001", "alice_w", "olga_org", "carol@", "@example",
    ] {
        assert!(!b.contains(secret), "the page shows {secret}");
    }
    assert_inert(b);
    // Headers: no script, no referrer, no caching of live counts.
    let csp = page.headers["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(
        page.headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn a_hostile_product_name_renders_inert() {
    let app = spawn_app().await;
    let evil = Product {
        sku: Sku::parse("evil").expect("sku"),
        name: r#""><script>alert(1)</script>"#.into(),
        price: Money::from_minor(1_000).expect("price"),
        kind: groupbuy::domain::ProductKind::Physical,
        stars: None,
        discount: true,
    };
    {
        let mut tx = app.ctx.store.write().await.expect("tx");
        products::upsert(&mut tx, &[evil], 0).await.expect("upsert");
        tx.commit().await.expect("commit");
    }
    let key = app.new_group(&org(), "evil 2").await;
    app.buy(&alice(), &key, "evil", tokyo()).await;
    let page = get(&app, &format!("/g/{key}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_inert(&page.body);
    let receipt = get(&app, &receipt_path(&app, &alice()).await).await;
    assert_eq!(receipt.status, StatusCode::OK);
    assert_inert(&receipt.body);
    // Another group shows the hostile product among the others, as text.
    let other = app.new_group(&org(), "camera 2").await;
    let page = get(&app, &format!("/g/{other}")).await;
    assert!(page.body.contains("Other products you can choose"));
    assert_inert(&page.body);
}

#[tokio::test]
async fn unknown_and_malformed_keys_get_the_same_plain_404() {
    let app = spawn_app().await;
    let key = app.new_group(&org(), "camera 2").await;
    let unknown = get(&app, "/g/23456789ABCDEFGHJK").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body.contains("find this page"), "{}", unknown.body);
    for path in [
        "/g/hello".to_string(),
        "/g/%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_string(),
        format!("/g/{}", "A".repeat(300)),
        "/g/23456789ABCDEFGHJK/receipt/ABCDEFGHJKLMNPQRSTUV".to_string(),
        format!("/g/{key}/receipt/ABCDEFGHJKLMNPQRSTUV"),
        format!("/g/{key}/receipt/%3Cb%3E"),
        "/no/such/page".to_string(),
    ] {
        let page = get(&app, &path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(page.body, unknown.body, "{path} tells more than the others");
        assert_inert(&page.body);
    }
    // The key is forgiving as in the bot: lower case and dashes still find the group.
    let lower = key.to_lowercase();
    let dashed = format!("{}-{}-{}", &lower[..6], &lower[6..12], &lower[12..]);
    assert_eq!(
        get(&app, &format!("/g/{dashed}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn expired_settled_and_cancelled_groups_say_so_with_410() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    let expiring = app.new_group(&org(), "camera 2 1h").await;
    app.buy(&alice(), &expiring, "camera", tokyo()).await;
    let filled = app.new_group(&org(), "scanner 2 48h").await;
    app.buy(&alice(), &filled, "scanner", tokyo()).await;
    app.buy(&sam(), &filled, "scanner", tokyo()).await;
    let cancelled = app.new_group(&org(), "memory 2").await;
    app.say(&org(), &format!("/cancel {cancelled}"));
    app.message_to(org().id, "is cancelled").await;

    // Expired, not yet swept: the clock moves without waking the sweep.
    app.clock.advance(3_601);
    let page = get(&app, &format!("/g/{expiring}")).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(
        page.body.contains("This group purchase has expired"),
        "{}",
        page.body
    );
    assert!(page.body.contains("1 of 2 seats taken"));

    let page = get(&app, &format!("/g/{filled}")).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("This group purchase has closed"));
    assert!(
        page.body
            .contains("with 2 of 2 seats taken: 3% of the price came back"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Photo scanner"));

    let page = get(&app, &format!("/g/{cancelled}")).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.body.contains("This group purchase was cancelled"));

    // Swept: the unfilled group is settled with no discount (all or nothing).
    app.advance(0);
    app.message_to(org().id, &format!("{expiring}</code> is settled"))
        .await;
    let page = get(&app, &format!("/g/{expiring}")).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(
        page.body
            .contains("1 of 2 seats taken, too few for a discount"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn the_receipt_page_shows_the_purchase_and_the_points_expected_then_credited() {
    let app = spawn_app_with(Options {
        no_region_bonus: true,
        ..Default::default()
    })
    .await;
    let key = app.new_group(&org(), "camera 2").await;
    app.buy(&alice(), &key, "camera", tokyo()).await;
    let path = receipt_path(&app, &alice()).await;
    assert!(path.starts_with(&format!("/g/{key}/receipt/")), "{path}");

    let page = get(&app, &path).await;
    assert_eq!(page.status, StatusCode::OK);
    let b = &page.body;
    assert!(b.contains("your Digital camera is on its way"), "{b}");
    assert!(
        b.contains("<tr class=\"total\"><th scope=\"row\">Paid</th><td>34,800 JPY</td></tr>"),
        "{b}"
    );
    assert!(b.contains("<h2 id=\"points-heading\">Points expected</h2>"));
    assert!(b.contains("<strong>1,044</strong>"), "3% of 34,800: {b}");
    assert!(b.contains("<strong>1 of 2</strong> seats taken"));
    assert!(b.contains(&format!("href=\"https://shop.example.com/g/{key}\"")));
    assert!(
        !b.contains("Alice") && !b.contains("3000002"),
        "no buyer details"
    );
    assert_eq!(page.headers["cache-control"], "no-store");

    // The token belongs to this group only; a wrong token is a 404.
    let other = app.new_group(&org(), "camera 2").await;
    let token = path.rsplit('/').next().expect("token");
    for wrong in [
        format!("/g/{other}/receipt/{token}"),
        format!("/g/{key}/receipt/{}", token.to_lowercase()),
        format!("/g/{key}/receipt/{}", &token[1..]),
    ] {
        assert_eq!(
            get(&app, &wrong).await.status,
            StatusCode::NOT_FOUND,
            "{wrong}"
        );
    }

    // The second buyer fills the group: the receipt now shows the points credited.
    app.buy(&sam(), &key, "camera", tokyo()).await;
    app.message_to(alice().id, "points are yours").await;
    let b = get(&app, &path).await.body;
    assert!(
        b.contains("<h2 id=\"points-heading\">Points credited</h2>"),
        "{b}"
    );
    assert!(b.contains("<strong>1,044</strong>"));
    assert!(b.contains("This group purchase has closed."), "{b}");
}

#[tokio::test]
async fn web_key_guessing_is_slowed_then_refused_when_flooding() {
    // 30 misses a minute: over it, one answer per 2 s (a minute shared by 30, at most 3 s).
    let app = spawn_app_with(Options {
        extra_env: vec![("GROUPBUY_KEY_ATTEMPTS_PER_MINUTE", "30".into())],
        ..Default::default()
    })
    .await;
    let key = app.new_group(&org(), "camera 2").await;
    assert_eq!(get(&app, &format!("/g/{key}")).await.status, StatusCode::OK);
    for i in 0..30 {
        let guess = if i % 2 == 0 {
            "23456789ABCDEFGHJK"
        } else {
            "nonsense"
        };
        assert_eq!(
            get(&app, &format!("/g/{guess}")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    // Over the limit: slowed, not refused, so a real key still opens its page.
    let t0 = std::time::Instant::now();
    assert_eq!(get(&app, &format!("/g/{key}")).await.status, StatusCode::OK);
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(1_900),
        "{:?}",
        t0.elapsed()
    );
    // A flood beyond the few requests allowed to wait gets 429 at once.
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let url = format!("http://{}/g/23456789ABCDEFGHJN", app.http);
            tokio::spawn(async move { reqwest::get(url).await.expect("answer") })
        })
        .collect();
    let mut refused = 0;
    for f in flood {
        let r = f.await.expect("joined");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
            let wait: i64 = r.headers()["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!((1..=60).contains(&wait), "{wait}");
            assert!(r.text().await.expect("body").contains("Please slow down"));
        } else {
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
        }
    }
    assert!((1..8).contains(&refused), "{refused} of 8 refused");
    // Health and metrics are not keyed pages (and live on the admin address).
    for path in ["/healthz", "/metrics"] {
        let r = reqwest::get(format!("http://{}{path}", app.admin))
            .await
            .expect("admin");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    // A minute later the window has moved on: answered at once.
    app.clock.advance(61);
    let t1 = std::time::Instant::now();
    assert_eq!(get(&app, &format!("/g/{key}")).await.status, StatusCode::OK);
    assert!(t1.elapsed() < std::time::Duration::from_millis(1_500));
}

#[tokio::test]
async fn bot_key_guessing_gets_a_slow_down_reply() {
    let app = spawn_app_with(Options {
        extra_env: vec![("GROUPBUY_KEY_ATTEMPTS_PER_MINUTE", "3".into())],
        ..Default::default()
    })
    .await;
    let key = app.new_group(&org(), "camera 2").await;
    let s = sam();
    app.say(&s, "/join 23456789ABCDEFGHJK");
    app.exact_message_to(s.id, &UserError::UnknownKey.html())
        .await;
    app.say(&s, "/join hello");
    app.exact_message_to(s.id, &UserError::MalformedKey("hello".into()).html())
        .await;
    app.say(&s, "/start 23456789ABCDEFGHJM");
    let unknown = UserError::UnknownKey.html();
    let twice = |calls: &[_]| count_texts(calls, s.id, &unknown) >= 2;
    assert!(
        app.fake.wait_until(twice, WAIT).await,
        "second unknown-key reply"
    );
    // The fourth try is refused whatever the key, and other people are not affected.
    app.say(&s, &format!("/join {key}"));
    app.exact_message_to(s.id, &UserError::SlowDown.html())
        .await;
    app.say(&alice(), &format!("/join {key}"));
    app.message_to(alice().id, "Group purchase: Digital camera")
        .await;
    assert_eq!(UserError::SlowDown.code(), "slow_down");
}

#[tokio::test]
async fn the_stylesheet_is_served_and_cacheable() {
    let app = spawn_app().await;
    let css = get(&app, "/static/style.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/css")
    );
    assert_eq!(css.headers["cache-control"], "public, max-age=3600");
    assert!(css.body.contains(".buy {"));
}
