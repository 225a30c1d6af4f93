//! Media retention (issue 17 §5): `Media.RetentionDays` makes the sweep remove the
//! media of messages older than that (record `expired`, object deleted, bytes
//! out of the stored total), while the messages stay and show their media as
//! expired. The sweep takes `now`, so the test ages messages by sweeping "later",
//! after sending two batches a second apart.

use std::time::Duration;

use chat_media::model::{Media, MediaStatus};
use chat_media::store::{keys, AttributeValue};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, media_path, now, png_like, send, sweeping, Fixture, TestApp};
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
    // Its sweep "30 days later" expires every retention service's older media.
    let _sweeps = sweeping().await;
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

/// Makes a bound media's record what the code before the retention index left:
/// bound, without `GSI1PK`/`GSI1SK` (through the real DynamoDB).
async fn unindex(app: &TestApp, media: &Media) {
    app.state
        .store
        .client()
        .update_item()
        .table_name(app.state.store.table())
        .key(keys::PK, AttributeValue::S(media.sid.to_string()))
        .key(keys::SK, AttributeValue::S(keys::MEDIA.into()))
        .update_expression("REMOVE GSI1PK, GSI1SK")
        .send()
        .await
        .unwrap();
}

/// Whether the media's stored item is in GSI1 (read strongly consistent).
async fn indexed(app: &TestApp, media: &Media) -> bool {
    app.partition(media.sid.as_str())
        .await
        .iter()
        .any(|item| item.contains_key(keys::GSI1PK))
}

/// Media bound before the retention index existed are not found by the sweep;
/// the `backfill-retention` step puts them in it at their message's date, so
/// the sweep then removes exactly those past the limit. A rerun finds nothing;
/// a media quarantined after the step read it is left as it is; a media the
/// step read twice is indexed once.
#[tokio::test]
async fn the_backfill_puts_media_bound_before_the_index_in_it_at_their_message_date() {
    let _sweeps = sweeping().await;
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, body) = send(
        app.admin(Method::POST, &f.service_path())
            .form(&[("Media.RetentionDays", "30")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let old = [
        sent_media(&app, &f, 11).await,
        sent_media(&app, &f, 12).await,
    ];
    let (taken_down, _) = sent_media(&app, &f, 13).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let boundary = now();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (young, _) = sent_media(&app, &f, 14).await;
    for media in old.iter().map(|(m, _)| m).chain([&taken_down, &young]) {
        unindex(&app, media).await;
    }
    let after_limit = boundary + 30 * DAY;
    assert_eq!(
        chat_media::cleanup::sweep_retention(&app.state, after_limit)
            .await
            .unwrap(),
        0,
        "not found without the index"
    );

    // Read by a step, then quarantined before it writes: left out of the index.
    let read = app.record(taken_down.sid.as_str()).await;
    let path = format!(
        "{}/{}/Quarantine",
        media_path(&f.service_sid),
        taken_down.sid
    );
    let (status, body) = send(app.admin(Method::POST, &path).form(&[("Reason", "test")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!app.state.store.index_bound_media(&read).await.unwrap());
    assert!(!indexed(&app, &taken_down).await);
    let young_read = app.record(young.sid.as_str()).await;

    let store = &app.state.store;
    let done = store
        .backfill_retention_index(Some(&f.service_sid))
        .await
        .unwrap();
    assert_eq!((done.seen, done.written), (3, 3));
    let again = store
        .backfill_retention_index(Some(&f.service_sid))
        .await
        .unwrap();
    assert_eq!((again.seen, again.written), (0, 0), "a rerun finds nothing");
    // The same media as read before the first run: indexed once only.
    assert!(!store.index_bound_media(&young_read).await.unwrap());

    let expired = chat_media::cleanup::sweep_retention(&app.state, after_limit)
        .await
        .unwrap();
    assert_eq!(expired, 2, "exactly the two older media");
    for (media, message) in &old {
        assert_eq!(
            app.record(media.sid.as_str()).await.status,
            MediaStatus::Expired
        );
        assert!(!app.object_exists(&media.object_key).await);
        let (_, shown) = send(app.user(&f.token, Method::GET, &f.message_path(message))).await;
        assert_eq!(shown["media"]["removed"], "expired");
    }
    assert_eq!(
        app.record(young.sid.as_str()).await.status,
        MediaStatus::Ready,
        "indexed at its own message's date, after the boundary"
    );
    assert!(app.object_exists(&young.object_key).await);
    assert_eq!(
        app.record(taken_down.sid.as_str()).await.status,
        MediaStatus::Quarantined
    );
    let later = chat_media::cleanup::sweep_retention(&app.state, now() + 31 * DAY)
        .await
        .unwrap();
    assert_eq!(later, 1);
    assert_eq!(
        app.record(young.sid.as_str()).await.status,
        MediaStatus::Expired
    );
}
