//! create-message: text and media messages, binding rules, refusals, concurrency
//! and the DynamoDB call budget, against the real DynamoDB and S3 servers.

use chat_media::model::MediaStatus;
use chat_media::sid::ChannelSid;
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, dynamodb_calls, send, send_full, sid, Fixture, TestApp};
use serde_json::Value;

async fn channel_json(app: &TestApp, f: &Fixture) -> Value {
    let (status, channel) = send(app.admin(Method::GET, &f.channel_path())).await;
    assert_eq!(status, StatusCode::OK, "{channel}");
    channel
}

#[tokio::test]
async fn text_and_media_messages_have_twilio_shape_and_bind_the_media() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, _) = send(
        app.admin(Method::POST, &f.service_path())
            .form(&[("Media.CompatibilityMessage", "Sent you a file")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, text) = send(
        app.user(&f.token, Method::POST, &f.messages_path())
            .form(&[("Body", "hello\nworld"), ("Attributes", r#"{"k":1}"#)]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert!(sid(&text).starts_with("IM"));
    assert_eq!(text["index"], 0);
    assert_eq!(text["type"], "text");
    assert_eq!(text["media"], Value::Null);
    assert_eq!(text["body"], "hello\nworld");
    assert_eq!(text["from"], "alice");
    assert_eq!(text["to"], f.channel_sid.as_str());
    assert_eq!(text["channel_sid"], f.channel_sid.as_str());
    assert_eq!(text["service_sid"], f.service_sid.as_str());
    assert_eq!(text["attributes"], r#"{"k":1}"#);
    assert_eq!(text["was_edited"], false);
    assert!(text["date_created"].as_str().unwrap().ends_with('Z'));
    assert!(text["date_updated"].is_string());
    assert_eq!(
        text["url"],
        app.url(&format!("{}/{}", f.messages_path(), sid(&text)))
    );

    let media = app
        .ready_media(
            &f.service_sid,
            "alice",
            "image/png",
            Some("cat.png"),
            b"\x89PNG fake",
        )
        .await;
    let (status, message) = app.post_media(&f, &f.token, media.sid.as_str()).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["index"], 1);
    assert_eq!(message["type"], "media");
    assert_eq!(message["body"], "Sent you a file");
    assert_eq!(message["attributes"], "{}");
    assert_eq!(
        message["media"],
        serde_json::json!({"sid": media.sid.as_str(), "size": 9, "content_type": "image/png", "filename": "cat.png"})
    );

    // The media is bound to that message, and no longer waits to expire.
    let stored = app.media_record(&media.sid).await.unwrap();
    assert_eq!(
        stored.message_sid.as_ref().map(|s| s.to_string()),
        Some(sid(&message))
    );
    assert_eq!(
        stored.channel_sid.as_ref().map(|s| s.to_string()),
        Some(f.channel_sid.to_string())
    );
    assert_eq!(stored.expires_at, None);

    // chat-api's GET and this function's POST share the path.
    let (status, list) = send(app.user(&f.token, Method::GET, &f.messages_path())).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed: Vec<&Value> = list["messages"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["sid"], message["sid"]);
    assert_eq!(listed[1]["media"]["sid"], media.sid.as_str());
    assert_eq!(channel_json(&app, &f).await["messages_count"], 2);

    // The same media cannot be sent twice.
    let (status, body) = app.post_media(&f, &f.token, media.sid.as_str()).await;
    assert_error(status, &body, 409, None);
    assert!(
        body["message"].as_str().unwrap().contains(&sid(&message)),
        "{body}"
    );
}

#[tokio::test]
async fn admins_send_as_anyone_to_channels_by_unique_name() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, channel) = send(
        app.admin(Method::POST, &format!("{}/Channels", f.service_path()))
            .form(&[("UniqueName", "support")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let by_name = format!("/v2/Services/{}/Channels/support/Messages", f.service_sid);

    let (status, m) = send(app.admin(Method::POST, &by_name).form(&[("Body", "hi")])).await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(m["from"], "system");
    assert_eq!(m["channel_sid"], channel["sid"]);

    // Any identity, member or not; any upload of the service.
    let media = app
        .ready_media(
            &f.service_sid,
            "alice",
            "application/pdf",
            None,
            b"%PDF-1.4",
        )
        .await;
    let (status, m) = send(
        app.admin(Method::POST, &by_name)
            .form(&[("From", "bot"), ("MediaSid", media.sid.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(m["from"], "bot");
    assert_eq!(m["index"], 1);
    assert_eq!(m["body"], "Media message");
    assert_eq!(m["media"]["filename"], Value::Null);

    let (status, body) = send(
        app.admin(
            Method::POST,
            &format!("/v2/Services/{}/Channels/nope/Messages", f.service_sid),
        )
        .form(&[("Body", "hi")]),
    )
    .await;
    assert_error(status, &body, 404, Some(20404));
}

#[tokio::test]
async fn malformed_requests_are_400_and_the_body_limit_is_50504() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let media = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"png")
        .await;
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("Attributes", "{}".into())],
        vec![("Body", "bell\u{7}".into())],
        vec![("Body", "x".into()), ("Attributes", "{not json".into())],
        vec![
            ("Body", "x".into()),
            ("Attributes", format!("\"{}\"", "a".repeat(16 * 1024))),
        ],
        vec![("MediaSid", "ME123".into())],
        vec![("MediaSid", ChannelSid::generate().to_string())],
    ];
    for form in cases {
        let (status, body) = send(
            app.user(&f.token, Method::POST, &f.messages_path())
                .form(&form),
        )
        .await;
        // Neither Body nor MediaSid: Twilio's 50503 (body not provided);
        // Attributes not JSON, too long: 50304, 50303.
        let attributes = form.iter().find(|(k, _)| *k == "Attributes");
        let code = match attributes {
            Some((_, a)) if a.starts_with("{not") => 50304,
            Some((_, a)) if a.len() > 16 * 1024 => 50303,
            _ if form.iter().any(|(k, _)| *k == "Body" || *k == "MediaSid") => 20001,
            _ => 50503,
        };
        assert_error(status, &body, 400, Some(code));
    }

    let (status, body) = app
        .post_text(&f, &f.token, &"é".repeat(16 * 1024 + 1))
        .await;
    assert_error(status, &body, 400, Some(50504));
    let (status, body) = app
        .post_text(&f, &f.token, &"x".repeat(32 * 1024 + 1))
        .await;
    assert_error(status, &body, 400, Some(50504));
    let (status, body) = app.post_text(&f, &f.token, &"x".repeat(32 * 1024)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The largest body and attributes, in characters that triple when encoded.
    let body = "😀".repeat(32 * 1024 / 4);
    let attributes = format!("\"{}\"", "é".repeat((16 * 1024 - 2) / 2));
    let (status, created) = send(
        app.user(&f.token, Method::POST, &f.messages_path())
            .form(&[("Body", body.as_str()), ("Attributes", attributes.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["body"], body.as_str());

    // Nothing refused was written, and the media is still free.
    assert_eq!(channel_json(&app, &f).await["messages_count"], 2);
    let stored = app.media_record(&media.sid).await.unwrap();
    assert_eq!(stored.message_sid, None);

    // An empty Body is a message with an empty body (Twilio's spec).
    let (status, empty) = send(
        app.user(&f.token, Method::POST, &f.messages_path())
            .form(&[("Body", "")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{empty}");
    assert_eq!(empty["body"], "");

    // Wrong service in the token → 403; unknown service or channel → 404.
    let other = app.create_service().await;
    let (status, body) = send(
        app.user(
            &f.token,
            Method::POST,
            &format!(
                "/v2/Services/{}/Channels/{}/Messages",
                sid(&other),
                f.channel_sid
            ),
        )
        .form(&[("Body", "x")]),
    )
    .await;
    assert_error(status, &body, 403, None);
    let (status, body) = send(
        app.admin(
            Method::POST,
            &format!(
                "/v2/Services/{}/Channels/{}/Messages",
                sid(&other),
                f.channel_sid
            ),
        )
        .form(&[("Body", "x")]),
    )
    .await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = send(
        app.user(
            &f.token,
            Method::POST,
            &format!(
                "/v2/Services/{}/Channels/{}/Messages",
                f.service_sid,
                ChannelSid::generate()
            ),
        )
        .form(&[("Body", "x")]),
    )
    .await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = send(
        app.anon(Method::POST, &f.messages_path())
            .form(&[("Body", "x")]),
    )
    .await;
    assert_error(status, &body, 401, None);
}

#[tokio::test]
async fn permission_and_binding_refusals() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let text_only = app
        .create_channel_role(&f.service_sid, "text only", &["sendMessage"])
        .await;
    let media_only = app
        .create_channel_role(&f.service_sid, "media only", &["sendMediaMessage"])
        .await;
    let (_, bob) = app.add_member(&f, "bob", Some(&text_only)).await;
    let (_, carol) = app.add_member(&f, "carol", Some(&media_only)).await;
    let mallory = app.token(&f.service_sid, "mallory");

    let alice_media = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"a")
        .await;
    let bob_media = app
        .ready_media(&f.service_sid, "bob", "image/png", None, b"b")
        .await;
    let carol_media = app
        .ready_media(&f.service_sid, "carol", "image/png", None, b"c")
        .await;
    let scanning = app
        .media_with_status(
            &f.service_sid,
            "alice",
            "image/png",
            None,
            b"s",
            MediaStatus::Scanning,
        )
        .await;
    let other = app.service_with_member("alice").await;
    let foreign = app
        .ready_media(&other.service_sid, "alice", "image/png", None, b"f")
        .await;

    // Not a member: 403 50400 (Twilio's "User not member of channel"), text and media.
    let (status, body) = app.post_text(&f, &mallory, "hi").await;
    assert_error(status, &body, 403, Some(50400));
    assert!(
        body["message"].as_str().unwrap().contains("not a member"),
        "{body}"
    );

    // A member without sendMediaMessage may send text but not media.
    let (status, body) = app.post_media(&f, &bob, bob_media.sid.as_str()).await;
    assert_error(status, &body, 403, Some(50107));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("sendMediaMessage"),
        "{body}"
    );
    let (status, body) = app.post_text(&f, &bob, "text is fine").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // sendMediaMessage alone is not enough: a media message is a message.
    let (status, body) = app.post_media(&f, &carol, carol_media.sid.as_str()).await;
    assert_error(status, &body, 403, Some(50107));
    assert!(
        body["message"].as_str().unwrap().contains("sendMessage"),
        "{body}"
    );

    // Sending as someone else.
    let (status, body) = send(
        app.user(&f.token, Method::POST, &f.messages_path())
            .form(&[("Body", "hi"), ("From", "bob")]),
    )
    .await;
    assert_error(status, &body, 403, None);

    // Binding another user's upload; another service's media; media not ready.
    let (status, body) = app.post_media(&f, &f.token, bob_media.sid.as_str()).await;
    assert_error(status, &body, 403, None);
    assert!(
        body["message"].as_str().unwrap().contains("uploader"),
        "{body}"
    );
    let (status, body) = app.post_media(&f, &f.token, foreign.sid.as_str()).await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = send(
        app.admin(Method::POST, &f.messages_path())
            .form(&[("MediaSid", foreign.sid.as_str())]),
    )
    .await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = app.post_media(&f, &f.token, scanning.sid.as_str()).await;
    assert_error(status, &body, 409, None);
    assert!(
        body["message"].as_str().unwrap().contains("scanning"),
        "{body}"
    );

    // Only bob's text went through; every refused media is still unbound.
    assert_eq!(channel_json(&app, &f).await["messages_count"], 1);
    for m in [&alice_media, &bob_media, &carol_media, &scanning, &foreign] {
        let stored = app.media_record(&m.sid).await.unwrap();
        assert_eq!(stored.message_sid, None, "{}", m.sid);
    }
    let (status, body) = app.post_media(&f, &f.token, alice_media.sid.as_str()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn twenty_concurrent_binds_of_one_media_make_exactly_one_message() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // A second channel, so the race is on the media and not only on one index.
    let (_, second) = send(
        app.admin(Method::POST, &format!("{}/Channels", f.service_path()))
            .form(&[("FriendlyName", "second")]),
    )
    .await;
    let second_path = format!(
        "/v2/Services/{}/Channels/{}/Messages",
        f.service_sid,
        sid(&second)
    );
    let (status, _) = send(
        app.admin(
            Method::POST,
            &format!(
                "/v2/Services/{}/Channels/{}/Members",
                f.service_sid,
                sid(&second)
            ),
        )
        .form(&[("Identity", "alice")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let media = app
        .ready_media(
            &f.service_sid,
            "alice",
            "image/jpeg",
            Some("a.jpg"),
            b"jpeg",
        )
        .await;

    let attempts = (0..20).map(|i| {
        let path = if i % 2 == 0 {
            f.messages_path()
        } else {
            second_path.clone()
        };
        let req = app
            .user(&f.token, Method::POST, &path)
            .form(&[("MediaSid", media.sid.as_str())]);
        send(req)
    });
    let results = futures::future::join_all(attempts).await;
    let created: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(*status, body, 409, None);
    }

    // One message in total, and the media points at it.
    let winner = created[0];
    let stored = app.media_record(&media.sid).await.unwrap();
    assert_eq!(stored.message_sid.map(|s| s.to_string()), Some(sid(winner)));
    assert_eq!(
        stored.channel_sid.map(|s| s.to_string()).as_deref(),
        winner["channel_sid"].as_str()
    );
    let mut total = 0;
    for path in [f.messages_path(), second_path] {
        let (_, list) = send(app.admin(Method::GET, &path)).await;
        total += list["messages"].as_array().unwrap().len();
    }
    assert_eq!(total, 1);
}

#[tokio::test]
async fn concurrent_sends_to_one_channel_get_distinct_growing_indexes() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let sends = (0..16).map(|i| {
        send(
            app.user(&f.token, Method::POST, &f.messages_path())
                .form(&[("Body", format!("m{i}"))]),
        )
    });
    let results = futures::future::join_all(sends).await;
    let mut indexes: Vec<u64> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
            body["index"].as_u64().unwrap()
        })
        .collect();
    indexes.sort();
    indexes.dedup();
    assert_eq!(indexes.len(), 16, "indexes are unique");
    let (_, list) = send(app.admin(Method::GET, &f.messages_path())).await;
    let listed: Vec<u64> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["index"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, indexes, "listing is in index order");
    // The next message goes after all of them.
    let (_, next) = app.post_text(&f, &f.token, "last").await;
    assert!(next["index"].as_u64().unwrap() > *indexes.last().unwrap());
    assert_eq!(channel_json(&app, &f).await["messages_count"], 17);
}

#[tokio::test]
async fn create_message_stays_within_its_dynamodb_call_budget() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let media = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"png")
        .await;
    // User, media: BatchGetItem + GetItem (role) + UpdateItem (the index, an atomic
    // ADD that concurrent senders never lose) + TransactWriteItems.
    let (status, headers, body) = send_full(
        app.user(&f.token, Method::POST, &f.messages_path())
            .form(&[("MediaSid", media.sid.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(dynamodb_calls(&headers), 4);
    // User, text: the same four.
    let (status, headers, _) = send_full(
        app.user(&f.token, Method::POST, &f.messages_path())
            .form(&[("Body", "hi")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(dynamodb_calls(&headers), 4);
    // Admin, media: no membership to check.
    let media = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"png")
        .await;
    let (status, headers, _) = send_full(
        app.admin(Method::POST, &f.messages_path())
            .form(&[("MediaSid", media.sid.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(dynamodb_calls(&headers), 3);
    // A refusal before any read costs nothing.
    let (status, headers, _) = send_full(
        app.user(&f.token, Method::POST, &f.messages_path())
            .form(&[("Body", "x"), ("From", "bob")]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(dynamodb_calls(&headers), 0);
}

/// Twilio's spec has `Body` and `MediaSid` independent: a media message sent with
/// a `Body` carries it in place of the service's compatibility message; an empty
/// one falls back to it.
#[tokio::test]
async fn a_body_sent_with_a_media_is_that_messages_text() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    for (body, expected) in [("look at this", "look at this"), ("", "Media message")] {
        let media = app
            .ready_media(&f.service_sid, "alice", "image/png", None, b"png")
            .await;
        let (status, message) = send(
            app.user(&f.token, Method::POST, &f.messages_path())
                .form(&[("Body", body), ("MediaSid", media.sid.as_str())]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{message}");
        assert_eq!(message["type"], "media");
        assert_eq!(message["body"], expected);
        assert_eq!(message["media"]["sid"], media.sid.as_str());
    }
}
