//! Property-based fuzzing of every parser that takes someone's input: `/newgroup` words,
//! member references, expiries, group keys and invite codes, deep-link payloads, invoice
//! payloads, button data, email addresses, shipping addresses, forwarded-for headers, the
//! `forget` argument and the TOML configuration with its environment. None may panic; the
//! ones that round-trip must.
//!
//! Each property runs twice: a quick run of [`QUICK`] cases with every `cargo test`, and a
//! deep run of [`DEEP`] cases with `cargo test --lib fuzz -- --ignored`.

use crate::app::forget::Whom;
use crate::app::new_group::{parse_expiry, parse_members, parse_words};
use crate::app::purchase::{Address, Payload};
use crate::config::Config;
use crate::domain::email::EmailAddress;
use crate::domain::group_key::StartPayload;
use crate::domain::{GroupKey, HeadCount, InviteCode, MemberRef};
use crate::keyboard::Press;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, TestRunner};
use std::collections::HashMap;

/// Cases per property in every test run.
const QUICK: u32 = 512;
/// Cases per property in the deep (`--ignored`) run.
const DEEP: u32 = 200_000;

fn run<S: Strategy>(cases: u32, strategy: S, check: impl Fn(S::Value)) {
    let mut runner = TestRunner::new(RunConfig {
        cases,
        failure_persistence: None,
        ..RunConfig::default()
    });
    let result = runner.run(&strategy, |v| {
        check(v);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Text as people (and attackers) type it: any Unicode, the symbols parsers split on, and
/// near-misses of valid input.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,120}",
        "[A-Za-z0-9@._:/?=&%+#\\- ]{0,80}",
        "[0-9A-Za-z]{0,40}(-[0-9A-Za-z_]{0,40})?",
        "v2:[-0-9]{0,20}:[-0-9]{0,20}:[-0-9]{0,20}:[-0-9]{0,20}:[a-z0-9]{0,20}:.{0,20}",
        "[a-z]{1,3}:[A-Za-z0-9:]{0,60}",
        "(@[a-z_0-9]{0,40}|[0-9]{1,25}|[a-z.+]{0,20}@[a-z.\\-]{0,20}|[0-9]{1,6}[a-zé日]) ?{0,3}",
    ]
    .boxed()
}

macro_rules! fuzz {
    ($quick:ident, $deep:ident, $strategy:expr, $check:expr) => {
        #[test]
        fn $quick() {
            run(QUICK, $strategy, $check);
        }

        #[test]
        #[ignore = "deep fuzzing: cargo test --lib fuzz -- --ignored"]
        fn $deep() {
            run(DEEP, $strategy, $check);
        }
    };
}

fuzz!(
    newgroup_words,
    newgroup_words_deep,
    prop::collection::vec(text(), 0..8),
    |words: Vec<String>| {
        let line = words.join(" ");
        if let Ok(req) = parse_words(&line) {
            let _ =
                HeadCount::parse(&req.head_count, 1_000).map(|n| parse_members(&req.members, n));
            if let Some(e) = &req.expiry {
                let _ = parse_expiry(e);
            }
        }
    }
);

fuzz!(member_refs, member_refs_deep, text(), |s: String| {
    if let Ok(m) = MemberRef::parse(&s) {
        // What was accepted parses again to the same member.
        assert_eq!(MemberRef::parse(&m.to_string()), Ok(m));
    }
});

fuzz!(expiries, expiries_deep, text(), |s: String| {
    if let Some(secs) = parse_expiry(&s) {
        assert!((300..=365 * 86_400).contains(&secs));
    }
});

fuzz!(keys_and_codes, keys_and_codes_deep, text(), |s: String| {
    if let Ok(k) = GroupKey::parse(&s) {
        assert_eq!(
            GroupKey::parse(k.as_str()).as_ref().map(GroupKey::as_str),
            Ok(k.as_str())
        );
    }
    let _ = InviteCode::parse(&s);
    let _ = HeadCount::parse(&s, 100_000);
});

fuzz!(
    deep_link_payloads,
    deep_link_payloads_deep,
    text(),
    |s: String| {
        if let Ok(p) = StartPayload::parse(&s) {
            assert!(StartPayload::parse(&p.encode()).is_ok());
        }
    }
);

fuzz!(
    invoice_payloads,
    invoice_payloads_deep,
    text(),
    |s: String| {
        if let Some(p) = Payload::decode(&s) {
            assert_eq!(Payload::decode(&p.encode()), Some(p));
        }
    }
);

fuzz!(button_data, button_data_deep, text(), |s: String| {
    if let Some(p) = Press::decode(&s) {
        assert_eq!(Press::decode(&p.encode()), Some(p));
    }
});

fuzz!(
    email_addresses,
    email_addresses_deep,
    text(),
    |s: String| {
        if let Ok(e) = EmailAddress::parse(&s) {
            let e = e.as_str();
            assert!(e.len() <= 254 && !e.contains(['\r', '\n', ' ', '<', '>', '"']));
            assert!(
                e.parse::<lettre::message::Mailbox>().is_ok(),
                "{e:?} reaches SMTP intact"
            );
        }
        let _ = Whom::parse(&s);
    }
);

fuzz!(
    shipping_addresses,
    shipping_addresses_deep,
    (text(), text(), text(), text(), text(), text()),
    |(country_code, state, city, street_line1, street_line2, post_code)| {
        let a = Address {
            country_code,
            state,
            city,
            street_line1,
            street_line2,
            post_code,
        };
        if let Some(r) = a.region() {
            // Letters and digits of any script (東京都 is a region), and the one dash.
            assert!(
                r.as_str().chars().all(|c| c.is_alphanumeric() || c == '-'),
                "{r}"
            );
            assert_eq!(r.as_str().matches('-').count(), 1, "{r}");
        }
        let _ = a.lines();
    }
);

fuzz!(forwarded_for, forwarded_for_deep, text(), |s: String| {
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(v) = axum::http::HeaderValue::from_str(&s) {
        headers.insert("x-forwarded-for", v);
    }
    let proxy = std::net::IpAddr::from([10, 0, 0, 1]);
    let _ = crate::web::client::visitor(Some(proxy), &headers, &[proxy]);
});

/// The settings a `groupbuy.toml` may name.
const SETTING_KEYS: &[&str] = &[
    "telegram_token",
    "telegram_api_url",
    "database_url",
    "smtp_url",
    "mail_dir",
    "mail_from",
    "fulfilment_email",
    "public_url",
    "http_addr",
    "admin_addr",
    "payment_provider_token",
    "webhook_secret",
    "support_contact",
    "currency",
    "policy",
    "policy_choice",
    "key_lifetime_hours",
    "max_head_count",
    "shipping_fee",
    "sweep_interval_secs",
    "telegram_rate_per_second",
    "key_attempts_per_minute",
    "data_dir",
    "server_secret",
    "trusted_proxies",
    "dkim_selector",
    "dkim_domain",
    "dkim_private_key_file",
    "email_invites_per_group",
    "email_invites_per_day",
];

/// TOML lines over the real settings, with values of every type and none.
fn toml_text() -> BoxedStrategy<String> {
    let value = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[ -~]{0,40}".prop_map(|s| format!("{s:?}")),
        Just("true".to_string()),
        Just("[1, \"a\"]".to_string()),
    ];
    let line = (prop::sample::select(SETTING_KEYS), value).prop_map(|(k, v)| format!("{k} = {v}"));
    let table = toml_table();
    prop_oneof![
        any::<String>(),
        (
            prop::collection::vec(line, 0..8),
            prop::collection::vec(table, 0..4)
        )
            .prop_map(|(lines, tables)| format!(
                "{}\n{}",
                lines.join("\n"),
                tables.join("\n")
            )),
    ]
    .boxed()
}

/// One `[[tiers]]`, `[[products]]` or `[region_bonus]` table with values of every shape.
fn toml_table() -> BoxedStrategy<String> {
    prop_oneof![
        (any::<i64>(), "[ -~]{0,8}").prop_map(|(m, p)| format!("[[tiers]]\nmembers = {m}\npercent = {p:?}")),
        (any::<i64>(), any::<f64>()).prop_map(|(m, p)| format!("[[tiers]]\nmembers = {m}\npercent = {p:?}")),
        ("[ -~]{0,12}", "[ -~]{0,40}", any::<i64>(), any::<Option<i64>>(), "(physical|digital|[a-z]{0,5})")
            .prop_map(|(sku, name, price, stars, kind)| {
                let stars = stars.map(|s| format!("\nstars = {s}")).unwrap_or_default();
                format!("[[products]]\nsku = {sku:?}\nname = {name:?}\nprice = {price}\nkind = {kind:?}{stars}")
            }),
        (any::<i64>(), any::<i64>(), any::<i64>())
            .prop_map(|(a, m, w)| format!("[region_bonus]\namount = {a}\nmin_buyers = {m}\nwindow_hours = {w}")),
    ]
    .boxed()
}

fuzz!(
    toml_config,
    toml_config_deep,
    (
        toml_text(),
        prop::collection::vec(("[A-Z_]{1,30}", text()), 0..4)
    ),
    |(toml, env): (String, Vec<(String, String)>)| {
        let env: HashMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (format!("GROUPBUY_{k}"), v))
            .collect();
        if let Ok(c) = Config::from_sources(Some(&toml), &env) {
            // A configuration that parsed is one the service can run with.
            assert!(c.max_head_count >= 2);
            assert!(c.key_attempts_per_minute >= 1);
        }
    }
);

#[test]
fn the_example_configuration_parses() {
    assert!(Config::from_sources(Some(crate::cli::EXAMPLE), &HashMap::new()).is_ok());
}
