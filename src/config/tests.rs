//! Config parsing: defaults, precedence and one refusal per kind of bad value.

use super::catalog::percent_to_rate;
use super::*;
use crate::domain::catalog::ProductKind;
use crate::domain::tiers::Rate;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_and_example_file() {
    let text = include_str!("../../groupbuy.example.toml");
    let c = Config::from_sources(Some(text), &env(&[])).expect("example parses");
    assert_eq!(c.database_url, "sqlite://groupbuy.db");
    assert_eq!(c.http_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.public_url, "http://127.0.0.1:8080");
    assert_eq!(c.products.len(), 3);
    assert_eq!(c.products[0].price.minor(), 34_800);
    assert_eq!(c.tiers.rate_for(3).to_string(), "5%");
    assert!(!c.has_provider());
    assert!(c.sales_warning().is_some());
    assert_eq!(c.require_token(), Err(ConfigError::MissingToken));
}

#[test]
fn environment_wins() {
    let c = Config::from_sources(
        Some("database_url = \"sqlite://file.db\"\ntelegram_token = \"1:a\""),
        &env(&[
            ("GROUPBUY_DATABASE_URL", "postgres://x/y"),
            ("GROUPBUY_TELEGRAM_TOKEN", "2:b"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.database_url, "postgres://x/y");
    assert_eq!(
        c.require_token().map(|t| t.expose().to_string()),
        Ok("2:b".into())
    );
    assert_eq!(format!("{:?}", c.telegram_token), "Some(\"***\")");
}

#[test]
fn bad_values_name_the_setting() {
    let err = |toml: &str, e: &[(&str, &str)]| {
        Config::from_sources(Some(toml), &env(e))
            .expect_err("invalid")
            .to_string()
    };
    assert!(
        err("", &[("GROUPBUY_HTTP_ADDR", "nowhere")])
            .contains("`http_addr` (environment GROUPBUY_HTTP_ADDR)")
    );
    assert!(err("policy = \"maybe\"", &[]).contains("`policy`"));
    assert!(
        err(
            "[[tiers]]\nmembers = 2\npercent = 5\n[[tiers]]\nmembers = 3\npercent = 3",
            &[]
        )
        .contains("smaller rate")
    );
    assert!(err("", &[("GROUPBUY_SMTP_URL", "http://x")]).contains("`smtp_url`"));
    assert!(err("unknown_key = 1", &[]).contains("not valid TOML"));
    assert!(err("", &[("GROUPBUY_KEY_LIFETIME_HOURS", "soon")]).contains("`key_lifetime_hours`"));
    assert!(err("telegram_rate_per_second = 0", &[]).contains("`telegram_rate_per_second`"));
}

#[test]
fn products_say_how_they_are_paid_for() {
    let product = |extra: &str| {
        Config::from_sources(
            Some(&format!(
                "[[products]]\nsku = \"guide\"\nname = \"Camera guide\"\nprice = 1200\n{extra}"
            )),
            &env(&[]),
        )
    };
    let digital = product("kind = \"digital\"\nstars = 120").expect("valid");
    assert_eq!(digital.products[0].kind, ProductKind::Digital);
    assert_eq!(digital.products[0].stars, Some(120));
    assert_eq!(
        digital.sales_warning(),
        None,
        "digital goods need no provider"
    );
    let physical = product("").expect("valid");
    assert_eq!(physical.products[0].kind, ProductKind::Physical);
    assert!(physical.sales_warning().is_some());
    let refused = |extra: &str| product(extra).expect_err("invalid").to_string();
    assert!(refused("kind = \"digital\"").contains("give its price as stars = N"));
    assert!(refused("stars = 120").contains("Stars only for digital goods"));
    assert!(refused("kind = \"vinyl\"").contains("kind is \"physical\" or \"digital\""));
    assert!(refused("kind = \"digital\"\nstars = 0").contains("stars is a whole number"));
}

#[test]
fn key_attempts_per_minute_default_file_env_and_bounds() {
    let parse = |toml: &str, e: &[(&str, &str)]| Config::from_sources(Some(toml), &env(e));
    assert_eq!(parse("", &[]).map(|c| c.key_attempts_per_minute), Ok(10));
    assert_eq!(
        parse("key_attempts_per_minute = 3", &[]).map(|c| c.key_attempts_per_minute),
        Ok(3)
    );
    assert_eq!(
        parse(
            "key_attempts_per_minute = 3",
            &[("GROUPBUY_KEY_ATTEMPTS_PER_MINUTE", "25")]
        )
        .map(|c| c.key_attempts_per_minute),
        Ok(25)
    );
    for bad in ["0", "-1", "many", "100001"] {
        let e = parse("", &[("GROUPBUY_KEY_ATTEMPTS_PER_MINUTE", bad)])
            .expect_err("out of range")
            .to_string();
        assert!(e.contains("`key_attempts_per_minute`"), "{bad}: {e}");
    }
}

#[test]
fn admin_addr_is_loopback_apart_from_the_pages() {
    let parse = |e: &[(&str, &str)]| Config::from_sources(None, &env(e));
    assert_eq!(
        parse(&[]).map(|c| c.admin_addr.to_string()),
        Ok("127.0.0.1:8081".into())
    );
    assert!(parse(&[]).is_ok_and(|c| c.admin_addr.ip().is_loopback()));
    assert_eq!(
        parse(&[("GROUPBUY_ADMIN_ADDR", "127.0.0.1:9100")]).map(|c| c.admin_addr.port()),
        Ok(9100)
    );
    for bad in [
        &[("GROUPBUY_ADMIN_ADDR", "metrics")][..],
        &[
            ("GROUPBUY_ADMIN_ADDR", "127.0.0.1:8080"),
            ("GROUPBUY_HTTP_ADDR", "127.0.0.1:8080"),
        ][..],
    ] {
        let e = parse(bad).expect_err("refused").to_string();
        assert!(
            e.contains("`admin_addr` (environment GROUPBUY_ADMIN_ADDR)"),
            "{e}"
        );
    }
}

#[test]
fn webhook_secret_is_16_to_256_of_telegrams_characters() {
    let parse = |v: &str| Config::from_sources(None, &env(&[("GROUPBUY_WEBHOOK_SECRET", v)]));
    for good in ["a".repeat(16), "A-z_0".repeat(40), "x".repeat(256)] {
        assert!(parse(&good).is_ok(), "{good}");
    }
    for bad in [
        "a".to_string(),
        "a".repeat(15),
        "x".repeat(257),
        "sixteen chars ok".into(),
        "sixteen+chars+ok".into(),
        "ééééééééééééééééé".into(),
    ] {
        let e = parse(&bad).expect_err("refused").to_string();
        assert_eq!(
            e,
            "setting `webhook_secret` (environment GROUPBUY_WEBHOOK_SECRET) is invalid: it must be 16 to 256 characters of A-Z, a-z, 0-9, _ and -",
            "{bad}"
        );
    }
}

#[test]
fn invitation_limits_and_server_secret() {
    let parse = |e: &[(&str, &str)]| Config::from_sources(None, &env(e));
    let c = parse(&[]).expect("defaults");
    assert_eq!(
        (c.email_invites_per_group, c.email_invites_per_day),
        (20, 50)
    );
    assert_eq!(c.data_dir, ".");
    assert!(c.server_secret.is_none());
    let c = parse(&[
        ("GROUPBUY_EMAIL_INVITES_PER_GROUP", "3"),
        ("GROUPBUY_EMAIL_INVITES_PER_DAY", "0"),
        ("GROUPBUY_SERVER_SECRET", "0123456789abcdef0123456789abcdef"),
    ])
    .expect("valid");
    assert_eq!((c.email_invites_per_group, c.email_invites_per_day), (3, 0));
    assert_eq!(format!("{:?}", c.server_secret), "Some(\"***\")");
    for (k, v) in [
        ("GROUPBUY_EMAIL_INVITES_PER_GROUP", "-1"),
        ("GROUPBUY_EMAIL_INVITES_PER_DAY", "lots"),
        ("GROUPBUY_SERVER_SECRET", "short"),
    ] {
        let e = parse(&[(k, v)]).expect_err("refused").to_string();
        assert!(e.contains(&format!("(environment {k})")), "{e}");
        assert!(!e.contains("short\""), "the secret is not repeated: {e}");
    }
}

#[test]
fn paid_broadcast_is_off_by_default_and_set_by_file_or_env() {
    let parse = |toml: &str, e: &[(&str, &str)]| Config::from_sources(Some(toml), &env(e));
    let c = parse("", &[]).expect("valid");
    assert!(!c.paid_broadcast);
    assert_eq!(c.paid_broadcast_rate_per_second, 1_000);
    let c = parse(
        "paid_broadcast = true\npaid_broadcast_rate_per_second = 500",
        &[],
    )
    .expect("valid");
    assert!(c.paid_broadcast);
    assert_eq!(c.paid_broadcast_rate_per_second, 500);
    let c = parse(
        "paid_broadcast = true",
        &[
            ("GROUPBUY_PAID_BROADCAST", "false"),
            ("GROUPBUY_PAID_BROADCAST_RATE_PER_SECOND", "250"),
        ],
    )
    .expect("valid");
    assert!(!c.paid_broadcast);
    assert_eq!(c.paid_broadcast_rate_per_second, 250);
    for (k, bad) in [
        ("GROUPBUY_PAID_BROADCAST", "maybe"),
        ("GROUPBUY_PAID_BROADCAST_RATE_PER_SECOND", "0"),
        ("GROUPBUY_PAID_BROADCAST_RATE_PER_SECOND", "1001"),
    ] {
        let e = parse("", &[(k, bad)]).expect_err("invalid").to_string();
        assert!(e.contains("`paid_broadcast"), "{k}={bad}: {e}");
    }
}

#[test]
fn trusted_proxies_are_a_list_of_addresses() {
    let parse = |v: &str| Config::from_sources(None, &env(&[("GROUPBUY_TRUSTED_PROXIES", v)]));
    assert_eq!(parse("").map(|c| c.trusted_proxies.len()), Ok(0));
    let c = parse("10.0.0.1, ::1").expect("valid");
    assert_eq!(c.trusted_proxies.len(), 2);
    let e = parse("10.0.0.0/8").expect_err("refused").to_string();
    assert!(e.contains("`trusted_proxies`"), "{e}");
}

#[test]
fn dkim_settings_come_together() {
    let parse = |e: &[(&str, &str)]| Config::from_sources(None, &env(e));
    assert_eq!(parse(&[]).map(|c| c.dkim), Ok(None));
    let c = parse(&[
        ("GROUPBUY_DKIM_SELECTOR", "gb2026"),
        ("GROUPBUY_DKIM_DOMAIN", "shop.example.com"),
        ("GROUPBUY_DKIM_PRIVATE_KEY_FILE", "/etc/groupbuy/dkim.key"),
    ])
    .expect("valid");
    assert_eq!(c.dkim.map(|d| d.selector), Some("gb2026".into()));
    let e = parse(&[("GROUPBUY_DKIM_SELECTOR", "gb2026")])
        .expect_err("incomplete")
        .to_string();
    assert!(
        e.contains("`dkim_domain` (environment GROUPBUY_DKIM_DOMAIN)"),
        "{e}"
    );
    let e = parse(&[
        ("GROUPBUY_DKIM_SELECTOR", "bad selector"),
        ("GROUPBUY_DKIM_DOMAIN", "shop.example.com"),
        ("GROUPBUY_DKIM_PRIVATE_KEY_FILE", "k"),
    ])
    .expect_err("bad")
    .to_string();
    assert!(e.contains("`dkim_selector`"), "{e}");
}

#[test]
fn percent_forms() {
    assert_eq!(
        percent_to_rate(&toml::Value::Integer(5)).map(Rate::basis_points),
        Some(500)
    );
    assert_eq!(
        percent_to_rate(&toml::Value::Float(2.5)).map(Rate::basis_points),
        Some(250)
    );
    assert_eq!(
        percent_to_rate(&toml::Value::String("12.25%".into())).map(Rate::basis_points),
        Some(1_225)
    );
    assert_eq!(percent_to_rate(&toml::Value::Float(2.555)), None);
    assert_eq!(percent_to_rate(&toml::Value::Integer(101)), None);
}

#[test]
fn policy_choice_is_on_unless_the_operator_turns_it_off() {
    let c = |toml: &str, e: &[(&str, &str)]| Config::from_sources(Some(toml), &env(e));
    assert!(c("", &[]).expect("valid").policy_choice);
    assert!(
        !c("policy_choice = false", &[])
            .expect("valid")
            .policy_choice
    );
    assert!(
        c(
            "policy_choice = false",
            &[("GROUPBUY_POLICY_CHOICE", "true")]
        )
        .expect("valid")
        .policy_choice
    );
    assert!(
        c("", &[("GROUPBUY_POLICY_CHOICE", "perhaps")])
            .expect_err("invalid")
            .to_string()
            .contains("`policy_choice`")
    );
}

#[test]
fn a_product_may_be_sold_without_discount() {
    let toml = "[[products]]\nsku = \"rare\"\nname = \"Rare lens\"\nprice = 50000\ndiscount = false\n\n[[products]]\nsku = \"camera\"\nname = \"Camera\"\nprice = 34800";
    let c = Config::from_sources(Some(toml), &env(&[])).expect("valid");
    assert!(!c.products[0].discount);
    assert!(c.products[1].discount);
}

#[test]
fn a_region_rate_is_read_and_checked() {
    let c = |toml: &str| Config::from_sources(Some(toml), &env(&[]));
    let rr = c("[region_rate]\nextra_percent = 2.5\nwindow_hours = 24")
        .expect("valid")
        .region_rate
        .expect("set");
    assert_eq!(rr.extra.to_string(), "2.5%");
    assert_eq!((rr.min_buyers, rr.window_secs), (2, 86_400));
    assert!(c("").expect("valid").region_rate.is_none());
    for bad in [
        "[region_rate]\nextra_percent = 101",
        "[region_rate]\nextra_percent = 2\nmin_buyers = 1",
        "[region_rate]\nextra_percent = 2\nwindow_hours = -1",
    ] {
        assert!(
            c(bad)
                .expect_err("invalid")
                .to_string()
                .contains("`region_rate`"),
            "{bad}"
        );
    }
}
