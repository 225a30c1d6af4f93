//! Media retention (issue 17 §5): `Media.RetentionDays` makes the sweep remove the
//! media of messages older than that (record `expired`, object deleted, bytes
//! out of the stored total), while the messages stay and show their media as
//! expired. The sweep takes `now`, so the test ages messages by sweeping "later",
//! after sending two batches a second apart.

use std::time::Duration;

use chat_media::model::{Media, MediaStatus};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, now, png_like, send, Fixture, TestApp};
use serde_json::Value;

const DAY: i64 = 86_400;

/// A ready media of `f`'s user sent in a message; returns the media and message.
async fn sent_media(app: &TestApp, f: &Fixture, n: u8) -> (Media, Value) {
    let mut bytes = png_like(500);
    bytes[499] = n;
    let (status, body) = send(
        app.user(&f.token, Method::POST, &f.uploads_path())
            .header("Content-Type", "image/png")
            .body(bytes),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let media = app.record(body["sid"].as_str().unwrap()).await;
    let (status, message) = app.post_media(f, &f.token, media.sid.as_str()).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    (media, message)
}

#[tokio::test]
async fn retention_removes_exactly_the_media_of_messages_past_the_limit() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, service) = send(app.admin(Method::POST, &f.service_path()).form(&[
        ("Media.RetentionDays", "30"),
        ("Media.QuotaBytesPerService", "100000"),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{service}");
    assert_eq!(service["media"]["retention_days"], 30);
    // Another service without retention, its media sent at the same time.
    let other = app.service_with_member("alice").await;

    let old = [sent_media(&app, &f, 1).await, sent_media(&app, &f, 2).await];
    let (kept_elsewhere, _) = sent_media(&app, &other, 3).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let boundary = now();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (young, young_message) = sent_media(&app, &f, 4).await;
    let text = app.send_text(&f, &f.token, "no media").await;
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        1500
    );

    // 30 days after `boundary`: the two older messages are past the limit.
    let expired = chat_media::cleanup::sweep_retention(&app.state, boundary + 30 * DAY)
        .await
        .unwrap();
    assert_eq!(expired, 2);
    for (media, message) in &old {
        let record = app.record(media.sid.as_str()).await;
        assert_eq!(record.status, MediaStatus::Expired);
        assert_eq!(
            record.message_sid.as_ref().map(|m| m.as_str()),
            message["sid"].as_str(),
            "still bound to its message"
        );
        assert!(
            !app.object_exists(&media.object_key).await,
            "object deleted"
        );
        assert!(!app.deletion_pending(&media.object_key).await);
        let (status, shown) = send(app.user(&f.token, Method::GET, &f.message_path(message))).await;
        assert_eq!(status, StatusCode::OK, "{shown}");
        assert_eq!(shown["type"], "media", "the message stays");
        assert_eq!(shown["media"]["sid"], media.sid.as_str());
        assert_eq!(shown["media"]["removed"], "expired");
        let (status, shown) =
            send(app.user(&f.token, Method::GET, &f.media_path(&media.sid))).await;
        assert_eq!(status, StatusCode::OK, "{shown}");
        assert_eq!(shown["status"], "expired");
        assert_eq!(shown["links"]["content_direct_temporary"], Value::Null);
        let (status, body) = send(app.user(
            &f.token,
            Method::GET,
            &format!("{}/Content", f.media_path(&media.sid)),
        ))
        .await;
        assert_error(status, &body, 409, Some(20409));
    }
    // The younger message, the text message and the other service are untouched.
    for media in [&young, &kept_elsewhere] {
        let record = app.record(media.sid.as_str()).await;
        assert_eq!(record.status, MediaStatus::Ready);
        assert!(app.object_exists(&media.object_key).await);
    }
    let (status, shown) =
        send(app.user(&f.token, Method::GET, &f.message_path(&young_message))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["media"].get("removed"), None);
    let (status, _) = send(app.user(&f.token, Method::GET, &f.message_path(&text))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        500,
        "the expired bytes left the stored total"
    );

    // A second pass finds nothing more; deleting an expired message gives nothing back twice.
    let again = chat_media::cleanup::sweep_retention(&app.state, boundary + 30 * DAY)
        .await
        .unwrap();
    assert_eq!(again, 0);
    let (status, body) = send(app.user(&f.token, Method::DELETE, &f.message_path(&old[0].1))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        500
    );
    // A day later, the younger one goes too.
    let later = chat_media::cleanup::sweep_retention(&app.state, now() + 31 * DAY)
        .await
        .unwrap();
    assert_eq!(later, 1);
    assert_eq!(
        app.record(young.sid.as_str()).await.status,
        MediaStatus::Expired
    );
    assert_eq!(
        app.record(kept_elsewhere.sid.as_str()).await.status,
        MediaStatus::Ready
    );
}
