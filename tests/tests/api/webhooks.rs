//! Service webhooks: the parameters (validated, stored, rendered as Twilio's)
//! and the pre-events of message sends (veto, modification, timeout, retries,
//! fail-open, who fires them). Every hook request is a real HTTP request to a
//! receiver started by the test, its signature checked by twilio-python.

use std::time::Duration;

use chat_media::config::Settings;
use chat_media_tests::hooks::{HookReceiver, Received, Reply};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{aws_options, credentials, send, Fixture, TestApp};
use serde_json::{json, Value};

/// Sets the service's webhook parameters (as admin); must succeed.
async fn configure(app: &TestApp, f: &Fixture, form: &[(&str, &str)]) -> Value {
    let (status, body) = send(app.admin(Method::POST, &f.service_path()).form(form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn messages(app: &TestApp, f: &Fixture) -> Vec<Value> {
    let (status, body) = send(app.admin(Method::GET, &f.messages_path())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["messages"].as_array().unwrap().clone()
}

/// A fixture whose service sends `onMessageSend` to `hook`.
async fn hooked(app: &TestApp, hook: &HookReceiver, extra: &[(&str, &str)]) -> Fixture {
    let f = app.service_with_member("alice").await;
    let url = hook.url("/pre?site=1");
    let mut form = vec![
        ("PreWebhookUrl", url.as_str()),
        ("WebhookFilters", "onMessageSend"),
    ];
    form.extend_from_slice(extra);
    configure(app, &f, &form).await;
    f
}

fn token() -> String {
    credentials().auth_token
}

#[tokio::test]
async fn webhook_parameters_are_validated_stored_and_rendered_as_twilio() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    assert_eq!(f.service["pre_webhook_url"], Value::Null);
    assert_eq!(f.service["webhook_filters"], json!([]));
    let body = configure(
        &app,
        &f,
        &[
            ("PreWebhookUrl", "https://hooks.example.com/pre"),
            ("PostWebhookUrl", "http://127.0.0.1:9/post"),
            ("WebhookMethod", "GET"),
            ("WebhookFilters", "onMessageSend"),
            ("WebhookFilters", "onMemberAdded"),
            ("WebhookFilters", "onMediaUpload"),
            ("PreWebhookRetryCount", "2"),
            ("PostWebhookRetryCount", "3"),
            ("PreWebhookFailOpen", "true"),
            ("PreWebhookForRest", "true"),
        ],
    )
    .await;
    let (_, fetched) = send(app.admin(Method::GET, &f.service_path())).await;
    for service in [&body, &fetched] {
        assert_eq!(service["pre_webhook_url"], "https://hooks.example.com/pre");
        assert_eq!(service["post_webhook_url"], "http://127.0.0.1:9/post");
        assert_eq!(service["webhook_method"], "GET");
        assert_eq!(
            service["webhook_filters"],
            json!(["onMessageSend", "onMemberAdded", "onMediaUpload"])
        );
        assert_eq!(service["pre_webhook_retry_count"], 2);
        assert_eq!(service["post_webhook_retry_count"], 3);
        assert_eq!(service["pre_webhook_fail_open"], true);
        assert_eq!(service["pre_webhook_for_rest"], true);
    }
    // Other settings are untouched by an update that names none of them.
    let body = configure(&app, &f, &[("FriendlyName", "renamed")]).await;
    assert_eq!(body["webhook_method"], "GET");
    // An empty URL clears it; an empty filter clears the list.
    let body = configure(&app, &f, &[("PreWebhookUrl", ""), ("WebhookFilters", "")]).await;
    assert_eq!(body["pre_webhook_url"], Value::Null);
    assert_eq!(body["webhook_filters"], json!([]));

    let long = format!("https://hooks.example.com/{}", "a".repeat(2048));
    for (name, value) in [
        ("PreWebhookUrl", "http://hooks.example.com/pre"),
        ("PreWebhookUrl", "hooks.example.com/pre"),
        ("PostWebhookUrl", "ftp://hooks.example.com/"),
        ("PostWebhookUrl", long.as_str()),
        ("WebhookMethod", "PUT"),
        ("WebhookFilters", "onSomethingElse"),
        ("PreWebhookRetryCount", "4"),
        ("PostWebhookRetryCount", "-1"),
        ("PreWebhookFailOpen", "yes"),
        ("PreWebhookForRest", "1"),
    ] {
        let (status, body) = send(
            app.admin(Method::POST, &f.service_path())
                .form(&[(name, value)]),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}={value}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(name),
            "{name}: {body}"
        );
    }
    // A create takes them too.
    let (status, created) = send(app.admin(Method::POST, "/v2/Services").form(&[
        ("FriendlyName", "hooked"),
        ("PostWebhookUrl", "https://hooks.example.com/post"),
    ]))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["post_webhook_url"],
        "https://hooks.example.com/post"
    );
    // Users cannot change them.
    let (status, _) = send(
        app.user(&f.token, Method::POST, &f.service_path())
            .form(&[("PreWebhookUrl", "https://evil.example/")]),
    )
    .await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn plain_http_to_other_hosts_needs_webhook_allow_http() {
    let settings = Settings {
        webhook_allow_http: true,
        ..Settings::default()
    };
    let app = TestApp::spawn_with(aws_options(), settings).await;
    let f = app.service_with_member("alice").await;
    let body = configure(&app, &f, &[("PreWebhookUrl", "http://hooks.internal/pre")]).await;
    assert_eq!(body["pre_webhook_url"], "http://hooks.internal/pre");
}

#[tokio::test]
async fn a_hook_that_answers_non_2xx_vetoes_the_message_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::json(403, json!({"reason": "no spam please"}))).await;
    let f = hooked(&app, &hook, &[]).await;
    let (status, body) = app.post_text(&f, &f.token, "buy now").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("no spam please"),
        "{body}"
    );
    assert!(messages(&app, &f).await.is_empty());
    let seen = hook.requests();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.param("EventType"), Some("onMessageSend"));
    assert_eq!(r.param("Body"), Some("buy now"));
    assert_eq!(r.param("ChannelSid"), Some(f.channel_sid.as_str()));
    assert_eq!(r.param("From"), Some("alice"));
    assert_eq!(r.param("ClientIdentity"), Some("alice"));
    assert_eq!(r.param("InstanceSid"), Some(f.service_sid.as_str()));
    assert_eq!(
        r.param("AccountSid"),
        Some(credentials().account_sid.as_str())
    );
    assert_eq!(r.param("Attributes"), Some("{}"));
    assert_eq!(r.param("RetryCount"), Some("0"));
    assert_eq!(r.param("WebhookType"), Some("webhook"));
    assert!(r
        .idempotency_token
        .as_deref()
        .is_some_and(|t| t.len() == 32));
    hook.assert_signed(&token());
}

#[tokio::test]
async fn a_hook_answering_2xx_lets_the_message_through_unchanged_or_modified() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::start(|r, _| match r.param("Body") {
        Some("hello") => Reply::ok(),
        _ => Reply::json(
            200,
            json!({"body": "[redacted]", "attributes": {"moderated": true}}),
        ),
    })
    .await;
    let f = hooked(&app, &hook, &[]).await;
    let plain = app.send_text(&f, &f.token, "hello").await;
    assert_eq!(plain["body"], "hello");
    let changed = app.send_text(&f, &f.token, "a bad word").await;
    assert_eq!(changed["body"], "[redacted]");
    assert_eq!(
        serde_json::from_str::<Value>(changed["attributes"].as_str().unwrap()).unwrap(),
        json!({"moderated": true})
    );
    // Stored as the hook changed it.
    let stored = messages(&app, &f).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1]["body"], "[redacted]");
    hook.assert_signed(&token());
}

#[tokio::test]
async fn a_modification_is_checked_like_the_callers_own_values() {
    let app = TestApp::spawn().await;
    // A control character is refused in a caller's body, so in the hook's too. (An
    // empty body is valid since Twilio's spec allows it on create.)
    let hook = HookReceiver::answering(Reply::json(200, json!({"body": "ring \u{7}"}))).await;
    let f = hooked(&app, &hook, &[]).await;
    let (status, body) = app.post_text(&f, &f.token, "hi").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("body"), "{body}");
    assert!(messages(&app, &f).await.is_empty());
}

fn quick() -> Settings {
    Settings {
        webhook_timeout: Duration::from_millis(300),
        ..Settings::default()
    }
}

#[tokio::test]
async fn a_hook_that_does_not_answer_in_time_refuses_the_message_after_its_retries() {
    let app = TestApp::spawn_with(aws_options(), quick()).await;
    let hook = HookReceiver::answering(Reply::ok().after(Duration::from_secs(2))).await;
    let f = hooked(&app, &hook, &[("PreWebhookRetryCount", "1")]).await;
    let (status, body) = app.post_text(&f, &f.token, "hi").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["message"].as_str().unwrap().contains("onMessageSend"));
    assert!(messages(&app, &f).await.is_empty());
    let seen = hook.requests();
    assert_eq!(seen.len(), 2, "one attempt and one retry");
    assert_eq!(seen[0].param("RetryCount"), Some("0"));
    assert_eq!(seen[1].param("RetryCount"), Some("1"));
    assert_eq!(
        seen[0].idempotency_token, seen[1].idempotency_token,
        "retries of one event share its token"
    );
    hook.assert_signed(&token());
}

#[tokio::test]
async fn fail_open_lets_the_message_through_when_the_hook_is_down() {
    let app = TestApp::spawn_with(aws_options(), quick()).await;
    let hook = HookReceiver::answering(Reply::ok().after(Duration::from_secs(2))).await;
    let f = hooked(&app, &hook, &[("PreWebhookFailOpen", "true")]).await;
    let message = app.send_text(&f, &f.token, "hi").await;
    assert_eq!(message["body"], "hi");
    assert_eq!(hook.requests().len(), 1);
    // A veto is still a veto when failing open.
    let vetoing = HookReceiver::answering(Reply::status(400)).await;
    configure(&app, &f, &[("PreWebhookUrl", &vetoing.url("/pre"))]).await;
    let (status, _) = app.post_text(&f, &f.token, "again").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn responses_429_and_5xx_are_retried_as_many_times_as_the_service_says() {
    let app = TestApp::spawn().await;
    // Fails twice (503, then 429), then lets the message through.
    let hook = HookReceiver::start(|_, n| match n % 3 {
        0 => Reply::status(503),
        1 => Reply::status(429),
        _ => Reply::ok(),
    })
    .await;
    let f = hooked(&app, &hook, &[("PreWebhookRetryCount", "2")]).await;
    app.send_text(&f, &f.token, "third time lucky").await;
    assert_eq!(hook.requests().len(), 3);
    // With one retry only, the same hook refuses (503 then 429: no answer).
    configure(&app, &f, &[("PreWebhookRetryCount", "1")]).await;
    let (status, body) = app.post_text(&f, &f.token, "unlucky").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(hook.requests().len(), 5);
    // A 4xx is an answer: never retried.
    let vetoing = HookReceiver::answering(Reply::status(422)).await;
    configure(
        &app,
        &f,
        &[
            ("PreWebhookUrl", &vetoing.url("/pre")),
            ("PreWebhookRetryCount", "3"),
        ],
    )
    .await;
    let (status, _) = app.post_text(&f, &f.token, "no").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(vetoing.requests().len(), 1);
    hook.assert_signed(&token());
}

#[tokio::test]
async fn only_events_in_the_filters_fire() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::status(403)).await;
    let f = app.service_with_member("alice").await;
    configure(
        &app,
        &f,
        &[
            ("PreWebhookUrl", &hook.url("/pre")),
            ("WebhookFilters", "onMemberAdd"),
        ],
    )
    .await;
    app.send_text(&f, &f.token, "not filtered").await;
    assert!(hook.requests().is_empty());
}

#[tokio::test]
async fn admin_rest_sends_fire_pre_events_only_with_pre_webhook_for_rest() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::json(403, json!({"reason": "held"}))).await;
    let f = hooked(&app, &hook, &[]).await;
    let admin_send = || {
        send(
            app.admin(Method::POST, &f.messages_path())
                .form(&[("Body", "from the backend")]),
        )
    };
    // As Twilio: REST actions never fire pre-events.
    let (status, body) = admin_send().await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(hook.requests().is_empty());
    // Ours: PreWebhookForRest makes every ingest path pass the hook.
    configure(&app, &f, &[("PreWebhookForRest", "true")]).await;
    let (status, body) = admin_send().await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let seen = hook.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].param("ClientIdentity"), None, "no user acted");
    assert_eq!(seen[0].param("From"), Some("system"));
    assert_eq!(messages(&app, &f).await.len(), 1);
    hook.assert_signed(&token());
}

#[tokio::test]
async fn get_hooks_are_signed_over_the_query_string() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::ok()).await;
    let f = hooked(&app, &hook, &[("WebhookMethod", "GET")]).await;
    app.send_text(&f, &f.token, "über & more").await;
    let seen = hook.requests();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].param("Body"), Some("über & more"));
    assert_eq!(
        seen[0].param("site"),
        Some("1"),
        "the configured query is kept"
    );
    hook.assert_signed(&token());
}

#[tokio::test]
async fn on_media_message_send_gets_a_content_url_and_may_refuse_by_content() {
    let app = TestApp::spawn().await;
    // The hook downloads the media (Flex's checkFileContent(url)) and refuses PNGs.
    let hook = HookReceiver::start(|r, _| {
        let url = r.param("ContentUrl").unwrap_or_default().to_owned();
        let bytes = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                chat_media_tests::reqwest::get(url)
                    .await
                    .ok()?
                    .bytes()
                    .await
                    .ok()
            })
        })
        .join()
        .unwrap();
        match bytes {
            Some(b) if b.starts_with(b"\x89PNG") => {
                Reply::json(403, json!({"reason": "images are not allowed here"}))
            }
            Some(_) => Reply::ok(),
            None => Reply::status(500),
        }
    })
    .await;
    let f = app.service_with_member("alice").await;
    configure(
        &app,
        &f,
        &[
            ("PreWebhookUrl", &hook.url("/media")),
            ("WebhookFilters", "onMediaMessageSend"),
        ],
    )
    .await;
    let png = app
        .ready_media(
            &f.service_sid,
            "alice",
            "image/png",
            Some("a.png"),
            chat_media_tests::PNG,
        )
        .await;
    let (status, body) = app.post_media(&f, &f.token, png.sid.as_str()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("images are not allowed"));
    let r = &hook.requests()[0];
    assert_eq!(r.param("EventType"), Some("onMediaMessageSend"));
    assert_eq!(r.param("MediaSid"), Some(png.sid.as_str()));
    assert_eq!(r.param("MediaContentType"), Some("image/png"));
    assert_eq!(
        r.param("MediaSize"),
        Some(chat_media_tests::PNG.len().to_string().as_str())
    );
    // Still unbound: the refused send wrote nothing.
    assert!(app.record(&png.sid).await.message_sid.is_none());
    let text = app
        .ready_media(
            &f.service_sid,
            "alice",
            "text/plain",
            Some("a.txt"),
            b"just text",
        )
        .await;
    app.send_media(&f, &f.token, &text).await;
    hook.assert_signed(&token());
}

/// A hook that downloads `ContentUrl` (Flex's `checkFileContent(url)`) and
/// refuses content containing `needle`, with a reason.
fn content_checker(needle: &'static [u8]) -> impl Fn(&Received, usize) -> Reply + Send + Sync {
    move |r, _| {
        let url = r.param("ContentUrl").unwrap_or_default().to_owned();
        let bytes = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                chat_media_tests::reqwest::get(url)
                    .await
                    .ok()?
                    .bytes()
                    .await
                    .ok()
            })
        })
        .join()
        .unwrap();
        match bytes {
            Some(b) if b.windows(needle.len()).any(|w| w == needle) => {
                Reply::json(403, json!({"reason": "contains a forbidden word"}))
            }
            Some(_) => Reply::ok(),
            None => Reply::status(500),
        }
    }
}

async fn media_hooked(app: &TestApp, hook: &HookReceiver, event: &str) -> Fixture {
    let f = app.service_with_member("alice").await;
    configure(
        app,
        &f,
        &[
            ("PreWebhookUrl", &hook.url("/media")),
            ("WebhookFilters", event),
        ],
    )
    .await;
    f
}

async fn upload_text(app: &TestApp, f: &Fixture, text: &'static [u8]) -> (StatusCode, Value) {
    send(
        app.user(&f.token, Method::POST, &f.uploads_path())
            .header("Content-Type", "text/plain")
            .header("Content-Disposition", "attachment; filename=\"note.txt\"")
            .body(text),
    )
    .await
}

#[tokio::test]
async fn on_media_upload_checks_direct_uploads_by_content_and_a_refusal_rejects_the_media() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::start(content_checker(b"FORBIDDEN")).await;
    let f = media_hooked(&app, &hook, "onMediaUpload").await;
    let (status, good) = upload_text(&app, &f, b"hello there").await;
    assert_eq!(status, StatusCode::CREATED, "{good}");
    assert_eq!(good["status"], "ready");
    let (status, bad) = upload_text(&app, &f, b"this is FORBIDDEN text").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("contains a forbidden word"),
        "{bad}"
    );
    let seen = hook.requests();
    assert_eq!(seen.len(), 2);
    let r = &seen[1];
    assert_eq!(r.param("EventType"), Some("onMediaUpload"));
    assert_eq!(r.param("Author"), Some("alice"));
    assert_eq!(r.param("ClientIdentity"), Some("alice"));
    assert_eq!(r.param("Filename"), Some("note.txt"));
    assert_eq!(r.param("ContentType"), Some("text/plain"));
    assert_eq!(r.param("Size"), Some("22"));
    assert_eq!(
        r.param("Sha256"),
        Some(chat_media_tests::sha256_hex(b"this is FORBIDDEN text").as_str())
    );
    // The refused media is rejected with the hook's reason and its object is gone.
    let media_sid = seen[1].param("MediaSid").unwrap().to_owned();
    let record = app.record(&media_sid).await;
    assert_eq!(record.status, chat_media::model::MediaStatus::Rejected);
    assert!(record
        .status_reason
        .as_deref()
        .unwrap()
        .contains("forbidden word"));
    assert!(!app.object_exists(&record.object_key).await);
    assert!(!record.holds_slot);
    hook.assert_signed(&token());
}

#[tokio::test]
async fn on_media_upload_checks_completed_sessions_and_s3_event_finalizations() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::start(content_checker(b"FORBIDDEN")).await;
    let f = media_hooked(&app, &hook, "onMediaUpload").await;
    // A session completed by its client.
    let session = app
        .uploaded_session(
            &f.token,
            &f.service_sid,
            "text/plain",
            b"FORBIDDEN in a session",
        )
        .await;
    let complete = format!(
        "{}/{}/Complete",
        f.uploads_path(),
        session["sid"].as_str().unwrap()
    );
    let (status, body) = send(app.user(&f.token, Method::POST, &complete)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // A session finalized by the S3 event alone.
    let session = app
        .uploaded_session(&f.token, &f.service_sid, "text/plain", b"FORBIDDEN via S3")
        .await;
    let record = app.record(session["sid"].as_str().unwrap()).await;
    media_events::handle(
        &app.state,
        app.s3_object_created(&record.object_key),
        chat_media_tests::now(),
    )
    .await
    .unwrap();
    let record = app.record(record.sid.as_str()).await;
    assert_eq!(record.status, chat_media::model::MediaStatus::Rejected);
    assert!(!app.object_exists(&record.object_key).await);
    // A clean one through the event becomes ready.
    let session = app
        .uploaded_session(&f.token, &f.service_sid, "text/plain", b"fine via S3")
        .await;
    let record = app.record(session["sid"].as_str().unwrap()).await;
    media_events::handle(
        &app.state,
        app.s3_object_created(&record.object_key),
        chat_media_tests::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        app.record(record.sid.as_str()).await.status,
        chat_media::model::MediaStatus::Ready
    );
    assert_eq!(hook.requests().len(), 3);
    hook.assert_signed(&token());
}

#[tokio::test]
async fn on_media_upload_runs_after_a_clean_virus_scan() {
    let app = TestApp::spawn_scanning(chat_media_tests::clamd::shared_scanner()).await;
    let hook = HookReceiver::start(content_checker(b"FORBIDDEN")).await;
    let f = media_hooked(&app, &hook, "onMediaUpload").await;
    let (status, bad) = upload_text(&app, &f, b"FORBIDDEN but clean").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let (status, infected) = send(
        app.user(&f.token, Method::POST, &f.uploads_path())
            .header("Content-Type", "text/plain")
            .body(chat_media_tests::clamd::eicar()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{infected}");
    assert_eq!(
        hook.requests().len(),
        1,
        "infected content never reaches the hook"
    );
}

#[tokio::test]
async fn on_media_download_decides_before_a_temporary_url_is_issued() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::start(|r, _| match r.param("ClientIdentity") {
        Some("alice") => Reply::ok(),
        _ => Reply::json(403, json!({"reason": "not for you"})),
    })
    .await;
    let f = media_hooked(&app, &hook, "onMediaDownload").await;
    let media = app
        .ready_media(
            &f.service_sid,
            "alice",
            "image/png",
            Some("a.png"),
            chat_media_tests::PNG,
        )
        .await;
    let message = app.send_media(&f, &f.token, &media).await;
    let path = f.media_path(&media.sid);
    let (status, body) = send(app.user(&f.token, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["links"]["content_direct_temporary"].is_string(),
        "{body}"
    );
    // Bob is a member too, but the hook refuses him: 403 and no URL.
    let bob = app.join(&f, "bob", None).await;
    let (status, body) = send(app.user(&bob.token, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("not for you"));
    assert!(!body.to_string().contains("X-Amz-Signature"));
    let (status, _) = send(app.user(&bob.token, Method::GET, &format!("{path}/Content"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let seen = hook.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1].param("EventType"), Some("onMediaDownload"));
    assert_eq!(seen[1].param("MediaSid"), Some(media.sid.as_str()));
    assert_eq!(seen[1].param("MessageSid"), message["sid"].as_str());
    assert_eq!(seen[1].param("ChannelSid"), Some(f.channel_sid.as_str()));
    assert_eq!(seen[1].param("ClientIdentity"), Some("bob"));
    // Admin REST downloads do not fire it (PreWebhookForRest is off).
    let (status, _) = send(app.admin(Method::GET, &path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hook.requests().len(), 3);
    hook.assert_signed(&token());
}

/// A fixture whose service sends `onMessageSent` to `hook`.
async fn post_hooked(app: &TestApp, hook: &HookReceiver, extra: &[(&str, &str)]) -> Fixture {
    let f = app.service_with_member("alice").await;
    let url = hook.url("/post");
    let mut form = vec![
        ("PostWebhookUrl", url.as_str()),
        ("WebhookFilters", "onMessageSent"),
    ];
    form.extend_from_slice(extra);
    configure(app, &f, &form).await;
    f
}

async fn dispatch(app: &TestApp, now: i64) -> chat_media::dispatch::DispatchReport {
    chat_media::dispatch::run(&app.state, now).await.unwrap()
}

#[tokio::test]
async fn post_events_are_delivered_exactly_once_in_order_after_the_commit() {
    let _only = chat_media_tests::sweeping().await;
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::ok()).await;
    let f = post_hooked(&app, &hook, &[]).await;
    let mut sent = Vec::new();
    for body in ["one", "two", "three"] {
        sent.push(app.send_text(&f, &f.token, body).await);
    }
    // Admin REST: only with X-Twilio-Webhook-Enabled: true.
    let (status, _) = send(
        app.admin(Method::POST, &f.messages_path())
            .form(&[("Body", "quiet")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, loud) = send(
        app.admin(Method::POST, &f.messages_path())
            .header("X-Twilio-Webhook-Enabled", "true")
            .form(&[("Body", "loud")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    sent.push(loud);
    assert!(
        hook.requests().is_empty(),
        "post-events never block the send"
    );
    let now = chat_media_tests::now();
    dispatch(&app, now).await;
    dispatch(&app, now).await;
    let seen = hook.requests();
    assert_eq!(seen.len(), 4, "each event exactly once: {seen:?}");
    for (r, message) in seen.iter().zip(&sent) {
        assert_eq!(r.param("EventType"), Some("onMessageSent"));
        assert_eq!(r.param("MessageSid"), message["sid"].as_str());
        assert_eq!(
            r.param("Index"),
            Some(message["index"].to_string().as_str())
        );
        assert_eq!(r.param("Body"), message["body"].as_str());
        assert_eq!(r.param("ChannelSid"), Some(f.channel_sid.as_str()));
        assert_eq!(r.param("RetryCount"), Some("0"));
    }
    assert_eq!(seen[0].param("ClientIdentity"), Some("alice"));
    assert_eq!(seen[3].param("ClientIdentity"), None);
    hook.assert_signed(&token());
}

#[tokio::test]
async fn failed_post_events_are_retried_with_backoff_up_to_the_retry_count_in_channel_order() {
    let _only = chat_media_tests::sweeping().await;
    let app = TestApp::spawn().await;
    // The first message's event fails twice; the hook then takes everything.
    let hook = HookReceiver::start(|r, _| match (r.param("Index"), r.param("RetryCount")) {
        (Some("0"), Some("0" | "1")) => Reply::status(500),
        _ => Reply::ok(),
    })
    .await;
    let f = post_hooked(&app, &hook, &[("PostWebhookRetryCount", "2")]).await;
    app.send_text(&f, &f.token, "first").await;
    app.send_text(&f, &f.token, "second").await;
    let t = chat_media_tests::now();
    let report = dispatch(&app, t).await;
    assert_eq!(report.retried, 1, "{report:?}");
    // The second waits behind the first, even though it would succeed.
    assert_eq!(hook.requests().len(), 1);
    // Not due again before its backoff.
    dispatch(&app, t).await;
    assert_eq!(hook.requests().len(), 1);
    dispatch(&app, t + 1).await;
    dispatch(&app, t + 10).await;
    let order: Vec<_> = hook
        .requests()
        .iter()
        .map(|r| {
            (
                r.param("Index").unwrap().to_owned(),
                r.param("RetryCount").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [("0", "0"), ("0", "1"), ("0", "2"), ("1", "0")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let tokens: std::collections::HashSet<_> = hook.requests()[..3]
        .iter()
        .map(|r| r.idempotency_token.clone())
        .collect();
    assert_eq!(tokens.len(), 1, "retries keep the token");

    // A hook that never succeeds gets 1 + PostWebhookRetryCount attempts, then the event is dropped.
    let dead = HookReceiver::answering(Reply::status(503)).await;
    configure(&app, &f, &[("PostWebhookUrl", &dead.url("/post"))]).await;
    app.send_text(&f, &f.token, "into the void").await;
    for dt in [0, 1, 3, 7, 15, 31] {
        dispatch(&app, t + 20 + dt).await;
    }
    assert_eq!(dead.requests().len(), 3);
    hook.assert_signed(&token());
}

#[tokio::test]
async fn a_dispatcher_killed_mid_delivery_loses_nothing() {
    let _only = chat_media_tests::sweeping().await;
    let app = TestApp::spawn().await;
    // The first delivery hangs (the dispatcher dies while it waits); later ones answer.
    let hook = HookReceiver::start(|_, n| {
        if n == 0 {
            Reply::ok().after(Duration::from_secs(3))
        } else {
            Reply::ok()
        }
    })
    .await;
    let f = post_hooked(&app, &hook, &[]).await;
    let message = app.send_text(&f, &f.token, "survives").await;
    let t = chat_media_tests::now();
    let state = app.state.clone();
    let first = tokio::spawn(async move { chat_media::dispatch::run(&state, t).await });
    while hook.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.abort(); // killed mid-delivery: the hook got it, the outbox still holds it
    let _ = first.await;
    // Held by the dead dispatcher's lease, then delivered again once it lapses.
    assert_eq!(dispatch(&app, t).await.delivered, 0);
    assert_eq!(dispatch(&app, t + 120).await.delivered, 1);
    assert_eq!(dispatch(&app, t + 240).await.delivered, 0);
    let seen = hook.requests();
    let duplicates = seen.len() - 1;
    println!(
        "post-event deliveries after a killed dispatcher: {} (duplicates: {duplicates})",
        seen.len()
    );
    assert_eq!(seen.len(), 2, "delivered again after the lease lapsed");
    assert!(seen
        .iter()
        .all(|r| r.param("MessageSid") == message["sid"].as_str()));
    assert!(
        seen.iter()
            .all(|r| r.idempotency_token == seen[0].idempotency_token),
        "a redelivery carries the same idempotency token"
    );
    hook.assert_signed(&token());
}
