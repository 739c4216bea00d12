//! Self-tests of the emulator: a real teloxide `Bot` against it, raw HTTP calls, faults,
//! Telegram's limits, long polling and the webhook.

use std::time::Duration;

use bot_api_emulator::{self as bot_api, BotApiEmulator as FakeBotApi, Fault, TgUser};
use serde_json::json;
use teloxide::prelude::*;
use teloxide::types::{
    BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, UpdateKind,
};
use teloxide::{ApiError, RequestError};

const T: Duration = Duration::from_secs(10);

fn bot(fake: &FakeBotApi) -> Bot {
    Bot::new(fake.token()).set_api_url(fake.api_url())
}

// ---- Bot API fake -------------------------------------------------------------------------

#[tokio::test]
async fn teloxide_calls_are_recorded_without_violations() {
    let fake = FakeBotApi::start().await;
    let bot = bot(&fake);

    let me = bot.get_me().await.expect("getMe");
    assert_eq!(me.username(), bot_api::BOT_USERNAME);
    assert_eq!(me.id.0 as i64, bot_api::BOT_ID);

    let keyboard = InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("Join", "join:1"),
        InlineKeyboardButton::url("Details", "https://groupbuy.test/d/1".parse().expect("url")),
    ]]);
    let sent = bot
        .send_message(ChatId(1001), "<b>Coffee</b> group buy")
        .parse_mode(teloxide::types::ParseMode::Html)
        .reply_markup(keyboard)
        .await
        .expect("sendMessage");
    assert_eq!(sent.chat.id, ChatId(1001));
    assert!(sent.reply_markup().is_some());

    bot.set_my_commands([
        BotCommand::new("start", "Start"),
        BotCommand::new("mine", "My purchases"),
    ])
    .await
    .expect("setMyCommands");

    let invoice = bot
        .send_invoice(
            ChatId(1001),
            "Coffee beans",
            "1 kg, roasted this week",
            "order:42",
            "EUR",
            [
                LabeledPrice::new("Beans", 1500),
                LabeledPrice::new("Shipping", 490),
            ],
        )
        .provider_token("PROVIDER-TOKEN")
        .need_shipping_address(true)
        .is_flexible(true)
        .await
        .expect("sendInvoice");
    assert_eq!(invoice.invoice().map(|i| i.total_amount), Some(1990));

    bot.answer_pre_checkout_query("pcq-1".to_owned().into(), true)
        .await
        .expect("answerPreCheckoutQuery");
    bot.edit_message_text(ChatId(1001), sent.id, "edited")
        .await
        .expect("editMessageText");

    fake.assert_no_violations();
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(
        methods,
        [
            "getMe",
            "sendMessage",
            "setMyCommands",
            "sendInvoice",
            "answerPreCheckoutQuery",
            "editMessageText"
        ]
    );
    let send = &fake.calls_to("sendMessage")[0];
    assert_eq!(send.chat_id(), Some(1001));
    assert_eq!(send.params["parse_mode"], "HTML");
    assert_eq!(send.callback_data(), vec!["join:1".to_owned()]);
    let inv = &fake.calls_to("SendInvoice")[0];
    assert_eq!(
        inv.params["prices"],
        json!([{"label": "Beans", "amount": 1500}, {"label": "Shipping", "amount": 490}])
    );
    assert_eq!(inv.params["provider_token"], "PROVIDER-TOKEN");
    assert_eq!(fake.commands()[1]["command"], "mine");
    assert_eq!(
        fake.sent_texts_to(1001),
        vec!["<b>Coffee</b> group buy", "Coffee beans", "edited"]
    );
    assert!(fake.sent_texts_to(1002).is_empty());
    let pcq = &fake.calls_to("answerPreCheckoutQuery")[0];
    assert_eq!(
        pcq.params,
        json!({"pre_checkout_query_id": "pcq-1", "ok": true})
    );
}

#[tokio::test]
async fn webhook_methods_use_multipart_and_are_decoded() {
    let fake = FakeBotApi::start().await;
    let bot = bot(&fake);
    bot.set_webhook(
        "https://bot.example.com/telegram/webhook"
            .parse()
            .expect("url"),
    )
    .secret_token("s3cret")
    .max_connections(10)
    .drop_pending_updates(true)
    .allowed_updates([
        teloxide::types::AllowedUpdate::Message,
        teloxide::types::AllowedUpdate::PreCheckoutQuery,
    ])
    .await
    .expect("setWebhook");
    let info = bot.get_webhook_info().await.expect("getWebhookInfo");
    assert_eq!(
        info.url.as_ref().map(|u| u.as_str()),
        Some("https://bot.example.com/telegram/webhook")
    );
    bot.delete_webhook().await.expect("deleteWebhook");
    assert!(fake.webhook().is_none());
    fake.assert_no_violations();
    let call = &fake.calls_to("setWebhook")[0];
    assert!(
        call.content_type.starts_with("multipart/form-data"),
        "{}",
        call.content_type
    );
    assert_eq!(call.params["max_connections"], 10, "{:?}", call.params);
    assert_eq!(call.params["drop_pending_updates"], true);
    assert_eq!(
        call.params["allowed_updates"],
        json!(["message", "pre_checkout_query"])
    );
    assert_eq!(call.params["secret_token"], "s3cret");
}

#[tokio::test]
async fn malformed_raw_calls_are_violations() {
    let fake = FakeBotApi::start().await;
    fake.allow_violations();
    let http = reqwest::Client::new();
    let base = format!("{}bot{}", fake.api_url(), fake.token());

    let r = http
        .post(format!("{base}/sendMessage"))
        .json(&json!({"text": "no chat"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["ok"], false);
    assert!(
        body["description"]
            .as_str()
            .expect("description")
            .starts_with("Bad Request: "),
        "{body}"
    );

    let r = http
        .post(format!("{base}/sendTelepathy"))
        .json(&json!({"chat_id": 1}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 400, "description": "Not Found: method not found"})
    );

    // Unknown nested field via a urlencoded form: recorded, but answered like Telegram (ok).
    let r = http
        .post(format!("{base}/sendMessage"))
        .form(&[
            ("chat_id", "5"),
            ("text", "hi"),
            (
                "reply_markup",
                r#"{"inline_keyboard":[[{"text":"a","callback_data":"b","colour":"red"}]]}"#,
            ),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);

    // Query-string parameters work too.
    let r = http
        .get(format!("{base}/sendMessage?chat_id=5&text=q"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);

    let v = fake.violations();
    assert_eq!(v.len(), 3, "{v:#?}");
    assert!(v[0].contains("missing required field `chat_id`"), "{v:#?}");
    assert!(
        v[1].contains("sendTelepathy: unknown Bot API method"),
        "{v:#?}"
    );
    assert!(v[2].contains("unknown field `colour`"), "{v:#?}");
    let calls = fake.calls();
    assert_eq!(calls.len(), 4);
    assert!(calls[0].failed && calls[1].failed && !calls[2].failed && !calls[3].failed);
    assert_eq!(
        calls[2].params["chat_id"], 5,
        "form values are decoded by declared type"
    );
    assert_eq!(fake.sent_texts_to(5), vec!["hi", "q"]);
    let result = std::panic::catch_unwind(|| fake.assert_no_violations());
    assert!(result.is_err(), "assert_no_violations must panic");

    // 5xx and delay faults, seen over raw HTTP (teloxide would sleep 10 s after a 5xx).
    fake.fail_next("getMe", 1, Fault::ServerError);
    fake.fail_next("getMe", 1, Fault::Delay(Duration::from_millis(300)));
    let r = http
        .post(format!("{base}/getMe"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 502);
    let started = std::time::Instant::now();
    let r = http
        .post(format!("{base}/GETME"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["result"]["username"], bot_api::BOT_USERNAME);
    let r = http
        .post(format!("{}botWRONG/getMe", fake.api_url()))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn faults_reach_teloxide() {
    let fake = FakeBotApi::start().await;
    let bot = bot(&fake);

    fake.fail_next("sendMessage", 1, Fault::TooManyRequests { retry_after: 7 });
    let err = bot.send_message(ChatId(1), "x").await.expect_err("429");
    match err {
        RequestError::RetryAfter(s) => assert_eq!(s.seconds(), 7),
        other => panic!("expected RetryAfter, got {other:?}"),
    }

    fake.fail_next_for_chat(
        "sendMessage",
        2,
        1,
        Fault::Forbidden("Forbidden: bot was blocked by the user"),
    );
    bot.send_message(ChatId(1), "to another chat")
        .await
        .expect("fault is only for chat 2");
    let err = bot.send_message(ChatId(2), "x").await.expect_err("403");
    assert!(
        matches!(err, RequestError::Api(ApiError::BotBlocked)),
        "{err:?}"
    );

    fake.fail_next(
        "sendMessage",
        1,
        Fault::BadRequest("Bad Request: chat not found".into()),
    );
    let err = bot.send_message(ChatId(3), "x").await.expect_err("400");
    assert!(
        matches!(err, RequestError::Api(ApiError::ChatNotFound)),
        "{err:?}"
    );

    bot.send_message(ChatId(1), "fine again")
        .await
        .expect("faults are used up");
    let calls = fake.calls_to("sendMessage");
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 200, 403, 400, 200]);
    assert_eq!(fake.sent_texts_to(1), vec!["to another chat", "fine again"]);
    fake.assert_no_violations();
}

/// The opt-in limits: a private chat takes a burst of 3, the bot 30 in a second, a group
/// chat 20 in a minute; what breaks one gets 429 with `retry_after` and is counted.
#[tokio::test]
async fn telegram_limits_are_enforced_when_switched_on() {
    let fake = FakeBotApi::start().await;
    let tg = bot(&fake);
    for _ in 0..5 {
        tg.send_message(ChatId(1), "unlimited by default")
            .await
            .expect("no limits by default");
    }
    fake.enforce_limits();
    for _ in 0..3 {
        tg.send_message(ChatId(2), "burst")
            .await
            .expect("a burst of 3");
    }
    match tg.send_message(ChatId(2), "fourth").await {
        Err(RequestError::RetryAfter(s)) => assert_eq!(s.seconds(), 1),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    for chat in 100..127 {
        tg.send_message(ChatId(chat), "x")
            .await
            .expect("30 a second for the bot");
    }
    let err = tg.send_message(ChatId(200), "31st").await.expect_err("429");
    assert!(matches!(err, RequestError::RetryAfter(_)), "{err:?}");
    assert_eq!(fake.too_many_requests(), 2);

    let fake = FakeBotApi::start().await;
    let tg = bot(&fake);
    fake.enforce_limits();
    for _ in 0..20 {
        tg.send_message(ChatId(-100), "summary")
            .await
            .expect("20 a minute in a group chat");
    }
    match tg.send_message(ChatId(-100), "21st").await {
        Err(RequestError::RetryAfter(s)) => assert!(s.seconds() >= 59, "{s:?}"),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    assert_eq!(fake.too_many_requests(), 1);
    fake.assert_no_violations();
}

/// `allow_paid_broadcast` lifts the bot's 30 a second, not the chats' own limits.
#[tokio::test]
async fn paid_broadcast_goes_above_thirty_a_second() {
    let fake = FakeBotApi::start().await;
    let tg = bot(&fake);
    fake.enforce_limits();
    for chat in 1..=30 {
        tg.send_message(ChatId(chat), "free")
            .await
            .expect("30 free");
    }
    let err = tg.send_message(ChatId(31), "31st").await.expect_err("429");
    assert!(matches!(err, RequestError::RetryAfter(_)), "{err:?}");
    let mut sends = tokio::task::JoinSet::new();
    for chat in 31..=130 {
        let tg = tg.clone();
        sends.spawn(async move {
            tg.send_message(ChatId(chat), "paid")
                .allow_paid_broadcast(true)
                .await
        });
    }
    while let Some(r) = sends.join_next().await {
        r.expect("joined")
            .expect("paid broadcast above 30 a second");
    }
    for _ in 0..2 {
        tg.send_message(ChatId(1), "burst")
            .allow_paid_broadcast(true)
            .await
            .expect("the rest of chat 1's burst");
    }
    let err = tg
        .send_message(ChatId(1), "fourth")
        .allow_paid_broadcast(true)
        .await
        .expect_err("a chat's limit holds for paid sends too");
    assert!(matches!(err, RequestError::RetryAfter(_)), "{err:?}");
    assert_eq!(fake.too_many_requests(), 2);
    fake.assert_no_violations();
}

#[tokio::test]
async fn long_polling_delivers_confirms_and_redelivers() {
    let fake = FakeBotApi::start().await;
    let bot = bot(&fake);
    let alice = TgUser::new(1001, "Alice").with_username("alice");

    // Long poll waits for an injected update.
    let poll = {
        let bot = bot.clone();
        tokio::spawn(async move { bot.get_updates().timeout(5).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !poll.is_finished(),
        "getUpdates with timeout 5 must wait for an update"
    );
    let id1 = fake.inject(bot_api::text_message(&alice, "/start ref_abc"));
    let updates = poll.await.expect("join").expect("getUpdates");
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].id.0 as i64, id1);
    assert!(
        matches!(&updates[0].kind, UpdateKind::Message(m) if m.text() == Some("/start ref_abc"))
    );

    let id2 = fake.inject(bot_api::callback_query(&alice, 1, "join:1"));
    let id3 = fake.inject(bot_api::pre_checkout_query(
        &alice, "pcq", "EUR", 100, "p", None,
    ));
    assert_eq!((id2, id3), (id1 + 1, id1 + 2));
    let updates = bot
        .get_updates()
        .offset(id1 as i32 + 1)
        .limit(1)
        .await
        .expect("getUpdates");
    assert_eq!(
        updates.iter().map(|u| u.id.0 as i64).collect::<Vec<_>>(),
        [id2]
    );
    assert!(!fake.wait_updates_drained(Duration::from_millis(20)).await);
    let updates = bot
        .get_updates()
        .offset(id2 as i32 + 1)
        .await
        .expect("getUpdates");
    assert_eq!(
        updates.iter().map(|u| u.id.0 as i64).collect::<Vec<_>>(),
        [id3]
    );
    let updates = bot
        .get_updates()
        .offset(id3 as i32 + 1)
        .timeout(0)
        .await
        .expect("getUpdates");
    assert!(updates.is_empty());
    assert!(fake.wait_updates_drained(T).await);

    // Duplicate delivery of an already confirmed update.
    let dup = bot_api::text_message(&alice, "/start again");
    let id4 = fake.inject(dup.clone());
    let updates = bot
        .get_updates()
        .offset(id3 as i32 + 1)
        .await
        .expect("getUpdates");
    assert_eq!(updates.len(), 1);
    bot.get_updates()
        .offset(id4 as i32 + 1)
        .timeout(0)
        .await
        .expect("confirm");
    fake.inject_raw_with_id(id4, dup);
    let updates = bot
        .get_updates()
        .offset(id4 as i32 + 1)
        .await
        .expect("getUpdates");
    assert_eq!(
        updates.iter().map(|u| u.id.0 as i64).collect::<Vec<_>>(),
        [id4],
        "re-delivered"
    );
    let updates = bot
        .get_updates()
        .offset(id4 as i32 + 1)
        .timeout(0)
        .await
        .expect("getUpdates");
    assert!(updates.is_empty());
    assert!(fake.wait_updates_drained(T).await);

    // A timeout passes without updates.
    let started = std::time::Instant::now();
    let updates = bot
        .get_updates()
        .offset(id4 as i32 + 1)
        .timeout(1)
        .await
        .expect("getUpdates");
    assert!(updates.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900));
    fake.assert_no_violations();
}

#[tokio::test]
async fn wait_for_call_sees_future_calls() {
    let fake = FakeBotApi::start().await;
    let bot = bot(&fake);
    assert!(
        fake.wait_for_call(|c| c.method == "sendMessage", Duration::from_millis(50))
            .await
            .is_none()
    );
    let sender = tokio::spawn(async move {
        tokio::task::yield_now().await;
        bot.send_message(ChatId(9), "later").await
    });
    let call = fake
        .wait_for_call(|c| c.method == "sendMessage" && c.chat_id() == Some(9), T)
        .await
        .expect("call");
    assert_eq!(call.text(), Some("later"));
    sender.await.expect("join").expect("send");
    assert!(fake.wait_until(|calls| calls.len() == 1, T).await);
}

#[tokio::test]
async fn post_to_webhook_sends_secret_header() {
    use axum::http::HeaderMap;
    let (tx, mut rx) =
        tokio::sync::mpsc::unbounded_channel::<(Option<String>, serde_json::Value)>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: HeaderMap, axum::Json(v): axum::Json<serde_json::Value>| {
                let tx = tx.clone();
                async move {
                    let secret = headers
                        .get("X-Telegram-Bot-Api-Secret-Token")
                        .and_then(|h| h.to_str().ok())
                        .map(str::to_owned);
                    tx.send((secret, v)).expect("send");
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let fake = FakeBotApi::start().await;
    let alice = TgUser::new(5, "A");
    let status = fake
        .post_to_webhook(
            &format!("http://{addr}/hook"),
            Some("s3cret"),
            bot_api::text_message(&alice, "hi"),
        )
        .await
        .expect("post");
    assert_eq!(status, 200);
    let (secret, body) = rx.recv().await.expect("received");
    assert_eq!(secret.as_deref(), Some("s3cret"));
    assert!(body["update_id"].as_i64().is_some());
    let update: teloxide::types::Update = serde_json::from_str(&body.to_string()).expect("Update");
    assert!(matches!(update.kind, UpdateKind::Message(_)), "{update:?}");
}

#[tokio::test]
async fn teloxide_dispatcher_polls_the_fake() {
    use teloxide::dispatching::{Dispatcher, UpdateFilterExt};
    use teloxide::error_handlers::LoggingErrorHandler;
    use teloxide::types::{Message, PreCheckoutQuery, Update};
    use teloxide::update_listeners::Polling;

    let fake = FakeBotApi::start().await;
    let bot = bot(&fake);
    let handler = teloxide::dptree::entry()
        .branch(
            Update::filter_message().endpoint(|bot: Bot, msg: Message| async move {
                let reply = match msg.successful_payment() {
                    Some(p) => format!("paid {}", p.invoice_payload),
                    None => format!("echo: {}", msg.text().unwrap_or("")),
                };
                bot.send_message(msg.chat.id, reply).await?;
                Ok::<(), RequestError>(())
            }),
        )
        .branch(Update::filter_pre_checkout_query().endpoint(
            |bot: Bot, q: PreCheckoutQuery| async move {
                bot.answer_pre_checkout_query(q.id, true).await?;
                Ok::<(), RequestError>(())
            },
        ));
    let mut dispatcher = Dispatcher::builder(bot.clone(), handler).build();
    let shutdown = dispatcher.shutdown_token();
    let listener = Polling::builder(bot)
        .timeout(Duration::from_secs(5))
        .build();
    let task = tokio::spawn(async move {
        dispatcher
            .dispatch_with_listener(listener, LoggingErrorHandler::new())
            .await;
    });

    fake.expect_calls("sendMessage", 3);
    fake.expect_calls("answerPreCheckoutQuery", 1);
    let alice = TgUser::new(1001, "Alice");
    let first = bot_api::text_message(&alice, "/start ref_1");
    let id = fake.inject(first.clone());
    fake.inject(bot_api::pre_checkout_query(
        &alice, "pcq-9", "EUR", 500, "order:9", None,
    ));
    fake.inject(bot_api::successful_payment(
        &alice, "EUR", 500, "order:9", "tg-9", "prov-9", None,
    ));
    assert!(fake.wait_for_calls_to("sendMessage", 2, T).await.len() >= 2);
    fake.wait_for_call(|c| c.method == "answerPreCheckoutQuery", T)
        .await
        .expect("answerPreCheckoutQuery");
    assert!(
        fake.wait_updates_drained(T).await,
        "dispatcher did not confirm the updates"
    );

    // Duplicate delivery of the first update, after it was confirmed.
    fake.inject_raw_with_id(id, first);
    assert_eq!(fake.wait_for_calls_to("sendMessage", 3, T).await.len(), 3);
    assert!(fake.wait_updates_drained(T).await);
    let mut texts = fake.sent_texts_to(1001);
    texts.sort();
    assert_eq!(
        texts,
        ["echo: /start ref_1", "echo: /start ref_1", "paid order:9"]
    );

    shutdown.shutdown().expect("shutdown").await;
    task.await.expect("dispatcher task");
    // On shutdown teloxide confirms the last offset with `limit 1, timeout 0`.
    let last = fake.calls().pop().expect("calls");
    assert_eq!(last.method, "getUpdates");
    assert_eq!(
        (
            last.params["limit"].as_i64(),
            last.params["timeout"].as_i64()
        ),
        (Some(1), Some(0)),
        "{:?}",
        last.params
    );
    fake.assert_no_violations();
}

#[tokio::test]
async fn send_document_takes_a_multipart_upload_and_keeps_the_file() {
    let fake = FakeBotApi::start().await;
    let bot = bot(&fake);
    let csv = b"group_key,buyer\nK,Alice\n".to_vec();
    let sent = bot
        .send_document(
            ChatId(1001),
            teloxide::types::InputFile::memory(csv.clone()).file_name("group-K.csv"),
        )
        .caption("Group K")
        .await
        .expect("sendDocument");
    assert!(sent.document().is_some(), "{sent:?}");
    assert_eq!(sent.caption(), Some("Group K"));
    fake.assert_no_violations();
    let call = &fake.calls_to("sendDocument")[0];
    assert!(call.content_type.starts_with("multipart/form-data"));
    assert_eq!(call.chat_id(), Some(1001));
    let file = call.file("document").expect("the uploaded file");
    assert_eq!(
        (file.file_name.as_str(), &file.bytes),
        ("group-K.csv", &csv)
    );

    // Without the document it is checked like every other method: a violation.
    fake.allow_violations();
    let r = reqwest::Client::new()
        .post(format!(
            "{}bot{}/sendDocument",
            fake.api_url(),
            fake.token()
        ))
        .json(&json!({"chat_id": 1001}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 400);
}
