//! Issue #14: what an attacker, a spammer or a curious log reader can get out of the service.
//! Secrets stay out of logs; operators' endpoints are apart; guessing costs only the guesser;
//! invitations have limits and a one-click way out; people can leave.

use crate::helpers::*;
use crate::scenarios::{alice, bob, carol, dave, play_scenario_a};

/// The marker before the list of secrets the inner run prints for the outer one.
const SECRETS: &str = "SECRETS-OF-THIS-RUN ";

/// Scenario (a) with `RUST_LOG=trace`: no key, token, invite code, payload, address, email
/// address, username or name in any line of the output; user ids are there. The scenario
/// runs in a child process of this test binary (the next test), so the logger is the one the
/// service gets from `RUST_LOG` and nothing else in this process logs into it.
#[test]
fn scenario_a_at_trace_logs_no_secret() {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "security::scenario_a_logged_at_trace",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RUST_LOG", "trace")
        .env("GROUPBUY_LOG_CHECK", "1")
        .output()
        .expect("the test binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the scenario failed:\n{}", tail(&text));
    let listed = text
        .lines()
        .find_map(|l| l.strip_prefix(SECRETS))
        .expect("the run lists its secrets");
    let secrets: Vec<String> = serde_json::from_str(listed).expect("json");
    assert!(secrets.len() >= 22, "{secrets:?}");
    let logs: Vec<&str> = text.lines().filter(|l| !l.starts_with(SECRETS)).collect();
    assert!(
        logs.len() > 300 && logs.iter().any(|l| l.contains("TRACE")),
        "trace logging captured the run ({} lines)",
        logs.len()
    );
    assert!(
        logs.iter().any(|l| l.contains("create") && l.contains(&bob().id.to_string())),
        "user ids are logged"
    );
    for s in &secrets {
        assert!(!s.is_empty());
        let hits: Vec<&&str> = logs.iter().filter(|l| l.contains(s.as_str())).take(3).collect();
        assert!(hits.is_empty(), "{s:?} appears in the log: {hits:#?}");
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// The child's part of the test above; does nothing unless that test started it.
#[tokio::test]
async fn scenario_a_logged_at_trace() {
    if std::env::var_os("GROUPBUY_LOG_CHECK").is_none() {
        return;
    }
    let app = spawn_app().await;
    let key = play_scenario_a(&app).await;

    let mut secrets: Vec<String> = vec![
        key.clone(),
        app.fake.token().to_string(),
        "TEST-PROVIDER-TOKEN".into(),
        "carol@example.com".into(),
        "warehouse@example.com".into(),
        "Marunouchi".into(),
        "100-0001".into(),
        "530-0001".into(),
        "bob_organiser".into(),
        "@alice".into(),
        "\"Alice\"".into(),
        "\"Carol\"".into(),
        "\"Dave\"".into(),
        "\"Bob\"".into(),
    ];
    // The invitation's deep-link payload (key + invite code) and the code alone.
    let invite = app.smtp.mails_to("carol@example.com").remove(0);
    let payload = deep_link_payload(&invite.text_body().expect("text"));
    secrets.push(payload.clone());
    secrets.push(payload[key.len() + 1..].to_string());
    // Receipt tokens, from the receipts the buyers got.
    for user in [alice(), dave(), carol()] {
        for text in app.fake.sent_texts_to(user.id) {
            if let Some(at) = text.find("/receipt/") {
                let token: String = text[at + 9..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                secrets.push(token);
            }
        }
    }
    // Invoice payloads.
    for call in app.fake.calls_to("sendInvoice") {
        secrets.push(call.str_param("payload").expect("payload").to_string());
    }
    println!("{SECRETS}{}", serde_json::json!(secrets));
}

/// A short or foreign-character webhook secret stops start-up with one sentence.
#[test]
fn a_weak_webhook_secret_stops_start_up() {
    for secret in ["x", "fifteen-chars-x", "sixteen chars ok"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_groupbuy"))
            .args(["serve"])
            .env("GROUPBUY_TELEGRAM_TOKEN", "1:test")
            .env("GROUPBUY_DATABASE_URL", "sqlite://unused-weak-secret.db")
            .env("GROUPBUY_WEBHOOK_SECRET", secret)
            .env("RUST_LOG", "warn")
            .output()
            .expect("groupbuy runs");
        assert!(!out.status.success());
        let text = String::from_utf8_lossy(&out.stderr);
        let said: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(said.len(), 1, "{text}");
        assert!(
            said[0].contains("setting `webhook_secret` (environment GROUPBUY_WEBHOOK_SECRET) is invalid: it must be 16 to 256 characters"),
            "{text}"
        );
        assert!(!text.contains(secret), "the refusal does not repeat the secret: {text}");
    }
}
