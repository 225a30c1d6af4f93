//! Upload quotas (issue 17 §4): `Media.QuotaBytesPerIdentity` per
//! `Media.QuotaWindowHours` and `Media.QuotaBytesPerService`, charged in the
//! transaction that creates the upload, so concurrent uploads never overrun them;
//! given back when an upload is refused, swept or deleted; admins are not limited.

use chat_media::identity::Identity;
use chat_media::model::Media;
use chat_media::sid::ServiceSid;
use chat_media::store::{keys, AttributeValue};
use chat_media_tests::reqwest::{header::HeaderMap, Method, StatusCode};
use chat_media_tests::{
    assert_error, exe, media_path, png_like, send, send_full, sessions_path, sid, Fixture, TestApp,
};
use serde_json::Value;

/// The code of a full quota.
const QUOTA_EXCEEDED: u64 = 20430;

/// Sets `form` on `f`'s service as admin; returns the service JSON.
async fn configure(app: &TestApp, f: &Fixture, form: &[(&str, &str)]) -> Value {
    let (status, body) = send(app.admin(Method::POST, &f.service_path()).form(form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A direct upload of `bytes` (a PNG) with `token`, or as admin when `None`.
async fn upload(
    app: &TestApp,
    f: &Fixture,
    token: Option<&str>,
    bytes: &[u8],
) -> (StatusCode, HeaderMap, Value) {
    let req = match token {
        Some(t) => app.user(t, Method::POST, &f.uploads_path()),
        None => app.admin(Method::POST, &f.uploads_path()),
    };
    send_full(req.header("Content-Type", "image/png").body(bytes.to_vec())).await
}

async fn used(app: &TestApp, service: &ServiceSid, identity: &str) -> Option<(i64, i64)> {
    app.state
        .store
        .quota_used(
            service,
            &Identity::parse(identity).unwrap(),
            3600,
            chat_media_tests::now(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn the_identity_quota_admits_exactly_what_fits_under_20_concurrent_uploads() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let size = 1000;
    let service = configure(
        &app,
        &f,
        &[
            ("Media.QuotaBytesPerIdentity", "7000"),
            ("Media.QuotaWindowHours", "1"),
        ],
    )
    .await;
    assert_eq!(service["media"]["quota_bytes_per_identity"], 7000);
    assert_eq!(service["media"]["quota_window_hours"], 1);
    assert_eq!(service["media"]["quota_bytes_per_service"], Value::Null);

    let before = chat_media_tests::now();
    let uploads = (0..20).map(|i| {
        let (app, f) = (&app, &f);
        async move {
            let mut bytes = png_like(size);
            bytes[size - 1] = i as u8;
            upload(app, f, Some(&f.token), &bytes).await
        }
    });
    let answers = futures::future::join_all(uploads).await;
    let created = answers
        .iter()
        .filter(|(s, ..)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 7, "exactly 7 uploads of 1000 bytes fit in 7000");
    let (window_used, frees_at) = used(&app, &f.service_sid, "alice")
        .await
        .expect("alice's window is open");
    assert_eq!(window_used, 7000);
    assert!(
        (before..=chat_media_tests::now() + 1).contains(&(frees_at - 3600)),
        "the window opened with the first upload"
    );
    let when = chrono::DateTime::from_timestamp(frees_at, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (status, headers, body) in answers.iter().filter(|(s, ..)| *s != StatusCode::CREATED) {
        assert_error(*status, body, 429, Some(QUOTA_EXCEEDED));
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(&when), "{message} names {when}");
        let retry: i64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        let left = frees_at - chat_media_tests::now();
        assert!(
            (left - 5..=left + 5).contains(&retry),
            "Retry-After {retry} ≈ {left}"
        );
    }
    // Another identity has its own window.
    let (_, bob_token) = app.add_member(&f, "bob", None).await;
    let (status, _, body) = upload(&app, &f, Some(&bob_token), &png_like(size)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // An upload larger than the whole quota never fits: 429 without Retry-After.
    let (status, headers, body) = upload(&app, &f, Some(&bob_token), &png_like(7001)).await;
    assert_error(status, &body, 429, Some(QUOTA_EXCEEDED));
    assert!(headers.get("retry-after").is_none());
}

#[tokio::test]
async fn admins_are_not_limited_nor_counted() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    configure(
        &app,
        &f,
        &[
            ("Media.QuotaBytesPerIdentity", "100"),
            ("Media.QuotaBytesPerService", "100"),
        ],
    )
    .await;
    for _ in 0..3 {
        let (status, _, body) = upload(&app, &f, None, &png_like(1000)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        0
    );
    let (status, _, body) = upload(&app, &f, Some(&f.token), &png_like(100)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_refused_upload_gives_its_bytes_back() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    configure(
        &app,
        &f,
        &[
            ("Media.QuotaBytesPerIdentity", "2048"),
            ("Media.QuotaBytesPerService", "2048"),
        ],
    )
    .await;
    // A session charges its declared size at create.
    let bad = exe();
    let session = app
        .uploaded_session(&f.token, &f.service_sid, "image/png", &bad)
        .await;
    let (status, body) = send(
        app.user(&f.token, Method::POST, &sessions_path(&f.service_sid))
            .form(&[("Size", "2048"), ("ContentType", "image/png")]),
    )
    .await;
    assert_error(status, &body, 429, Some(QUOTA_EXCEEDED));
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        2048
    );
    // Completing it refuses the executable: the bytes are given back.
    let (status, body) = send(app.user(
        &f.token,
        Method::POST,
        &format!("{}/{}/Complete", f.uploads_path(), sid(&session)),
    ))
    .await;
    assert_error(status, &body, 415, None);
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        0
    );
    assert_eq!(used(&app, &f.service_sid, "alice").await.unwrap().0, 0);
    assert!(app.record(sid(&session)).await.quota.is_none());
    let (status, _, body) = upload(&app, &f, Some(&f.token), &png_like(2048)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn the_service_total_counts_stored_media_until_deleted() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (_, bob) = app.add_member(&f, "bob", None).await;
    let service = configure(&app, &f, &[("Media.QuotaBytesPerService", "3000")]).await;
    assert_eq!(service["media"]["quota_bytes_per_service"], 3000);
    let (status, _, first) = upload(&app, &f, Some(&f.token), &png_like(1000)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, _, body) = upload(&app, &f, Some(&bob), &png_like(2000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, headers, body) = upload(&app, &f, Some(&f.token), &png_like(64)).await;
    assert_error(status, &body, 429, Some(QUOTA_EXCEEDED));
    assert!(body["message"].as_str().unwrap().contains("3000 bytes"));
    assert!(headers.get("retry-after").is_none());
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        3000
    );

    // Sent in a message, the media still counts; deleting the message frees it.
    let (status, message) = app.post_media(&f, &f.token, &sid(&first)).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert!(
        message["media"].get("quota_counted").is_none(),
        "bookkeeping stays out of the message JSON: {message}"
    );
    let (status, body) = send(app.user(&f.token, Method::DELETE, &f.message_path(&message))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        2000
    );
    let (status, _, body) = upload(&app, &f, Some(&f.token), &png_like(1000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Turning the quota off: uploads are not limited, but still counted, so the
    // total is right when it is turned on again.
    configure(&app, &f, &[("Media.QuotaBytesPerService", "")]).await;
    let (status, _, body) = upload(&app, &f, Some(&f.token), &png_like(1000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        4000
    );
}

#[tokio::test]
async fn quota_parameters_are_checked() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    for (name, value) in [
        ("Media.QuotaBytesPerIdentity", "-1"),
        ("Media.QuotaBytesPerIdentity", "lots"),
        ("Media.QuotaWindowHours", "9000"),
        ("Media.QuotaBytesPerService", "1.5"),
        ("Media.RetentionDays", "99999"),
    ] {
        let (status, body) = send(
            app.admin(Method::POST, &f.service_path())
                .form(&[(name, value)]),
        )
        .await;
        assert_error(status, &body, 400, Some(20001));
        assert!(body["message"].as_str().unwrap().contains(name), "{body}");
    }
    let service = configure(&app, &f, &[("Media.QuotaBytesPerIdentity", "5")]).await;
    assert_eq!(
        service["media"]["quota_window_hours"], 24,
        "the default window"
    );
    let service = configure(&app, &f, &[("Media.QuotaBytesPerIdentity", "0")]).await;
    assert_eq!(service["media"]["quota_bytes_per_identity"], Value::Null);
    assert_eq!(service["media"]["quota_window_hours"], Value::Null);
}

// ---- s21-backfill: the stored total counts every user upload, and the
// `backfill-stored-bytes` step counts what was stored before ----

/// `f`'s service's stored total.
async fn stored(app: &TestApp, f: &Fixture) -> i64 {
    app.state.store.stored_bytes(&f.service_sid).await.unwrap()
}

/// A ready direct upload of `size` bytes by `f`'s user; its record.
async fn uploaded(app: &TestApp, f: &Fixture, size: usize) -> Media {
    let (status, _, body) = upload(app, f, Some(&f.token), &png_like(size)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.record(sid(&body)).await
}

/// Posts `media` in a message of `f`'s channel; its record (now bound) and the message.
async fn bound(app: &TestApp, f: &Fixture, media: &Media) -> (Media, Value) {
    let message = app.send_media(f, &f.token, media).await;
    (app.record(media.sid.as_str()).await, message)
}

/// Makes `media`'s stored items what the code before this step left for an upload
/// made while `Media.QuotaBytesPerService` was off, through the real DynamoDB: no
/// `quota_charge` on the record (with `window_only`, one counted only in the
/// identity's window), no `quota_counted` on its message's summary, and its bytes
/// not in the service's total.
async fn uncount(app: &TestApp, media: &Media, window_only: bool) {
    let (store, table) = (&app.state.store, app.state.store.table());
    let update = store
        .client()
        .update_item()
        .table_name(table)
        .key(keys::PK, AttributeValue::S(media.sid.to_string()))
        .key(keys::SK, AttributeValue::S(keys::MEDIA.into()));
    let update = match window_only {
        true => update
            .update_expression("SET quota_charge.service = :false")
            .expression_attribute_values(":false", AttributeValue::Bool(false)),
        false => update.update_expression("REMOVE quota_charge"),
    };
    update.send().await.unwrap();
    if let (Some(message), Some(channel)) = (&media.message_sid, &media.channel_sid) {
        store
            .client()
            .update_item()
            .table_name(table)
            .key(keys::PK, AttributeValue::S(channel.to_string()))
            .key(keys::SK, AttributeValue::S(keys::message(message)))
            .update_expression("REMOVE #media.quota_counted")
            .expression_attribute_names("#media", "media")
            .send()
            .await
            .unwrap();
    }
    store
        .client()
        .update_item()
        .table_name(table)
        .key(keys::PK, AttributeValue::S(media.service_sid.to_string()))
        .key(keys::SK, AttributeValue::S(keys::QUOTA_STORED.into()))
        .update_expression("ADD stored_bytes :minus")
        .expression_attribute_values(":minus", AttributeValue::N(format!("-{}", media.size)))
        .send()
        .await
        .unwrap();
}

/// Media stored while the quota was off (as the previous code left them: not
/// counted) are counted once by the backfill; the quota then refuses the upload
/// that would cross it counting them, deleting one gives its bytes back, a rerun
/// finds nothing, and turning the quota off and on again loses nothing.
#[tokio::test]
async fn the_backfill_counts_media_stored_before_and_the_quota_then_counts_them() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let old_sent = uploaded(&app, &f, 1000).await;
    let (old_sent, message) = bound(&app, &f, &old_sent).await;
    let old_unbound = uploaded(&app, &f, 2000).await;
    let (status, _, body) = upload(&app, &f, None, &png_like(700)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        stored(&app, &f).await,
        3000,
        "counted without a quota; not the admin's"
    );
    uncount(&app, &old_sent, false).await;
    uncount(&app, &old_unbound, true).await;
    assert_eq!(stored(&app, &f).await, 0, "as the previous code left it");
    configure(&app, &f, &[("Media.QuotaBytesPerService", "4000")]).await;

    let backfill = || app.state.store.backfill_stored_bytes(Some(&f.service_sid));
    let done = backfill().await.unwrap();
    assert_eq!(
        (done.seen, done.written),
        (1, 1),
        "the unbound one is left alone"
    );
    assert_eq!(stored(&app, &f).await, 1000);
    assert!(
        app.record(old_sent.sid.as_str())
            .await
            .quota
            .unwrap()
            .service
    );
    // Sent since: a rerun counts it; the next finds nothing.
    bound(&app, &f, &old_unbound).await;
    let done = backfill().await.unwrap();
    assert_eq!((done.seen, done.written), (1, 1));
    assert_eq!(stored(&app, &f).await, 3000);
    let again = backfill().await.unwrap();
    assert_eq!((again.seen, again.written), (0, 0), "a rerun finds nothing");
    assert_eq!(stored(&app, &f).await, 3000);

    // 3000 + 1500 would cross 4000: refused; 1000 fits.
    let (status, _, body) = upload(&app, &f, Some(&f.token), &png_like(1500)).await;
    assert_error(status, &body, 429, Some(QUOTA_EXCEEDED));
    let (status, _, body) = upload(&app, &f, Some(&f.token), &png_like(1000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(stored(&app, &f).await, 4000);
    // Deleting the message of a media counted by the backfill gives its bytes back.
    let (status, body) = send(app.user(&f.token, Method::DELETE, &f.message_path(&message))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(stored(&app, &f).await, 3000);

    // Off and on again: what was stored meanwhile still counts.
    configure(&app, &f, &[("Media.QuotaBytesPerService", "")]).await;
    let (status, _, body) = upload(&app, &f, Some(&f.token), &png_like(900)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(stored(&app, &f).await, 3900);
    configure(&app, &f, &[("Media.QuotaBytesPerService", "4000")]).await;
    let (status, _, body) = upload(&app, &f, Some(&f.token), &png_like(200)).await;
    assert_error(status, &body, 429, Some(QUOTA_EXCEEDED));
    let (status, _, body) = upload(&app, &f, Some(&f.token), &png_like(100)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The step given a media as read before it changed, and the writes that remove
/// a media given it as read before the step counted it: nothing is counted twice,
/// no counted byte is lost, no record comes back.
#[tokio::test]
async fn the_backfill_and_the_writes_it_races_never_count_twice_nor_lose_bytes() {
    use chat_media::cleanup::expired_record;
    use chat_media::model::MediaStatus;
    use chat_media::sid::MessageSid;
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let f = app.service_with_member("alice").await;
    let now = chat_media_tests::now();
    // A media sent in a message, then made as the previous version left it.
    let sent = |size| {
        let (app, f) = (&app, &f);
        async move {
            let media = uploaded(app, f, size).await;
            let (media, message) = bound(app, f, &media).await;
            uncount(app, &media, false).await;
            (app.record(media.sid.as_str()).await, message)
        }
    };

    // The same read twice: counted once.
    let (read, _) = sent(1001).await;
    let before = stored(&app, &f).await;
    assert!(store.count_stored_media(&read).await.unwrap());
    assert!(!store.count_stored_media(&read).await.unwrap());
    assert_eq!(stored(&app, &f).await, before + 1001);

    // Read ready, quarantined since: not counted, no record changed.
    let (read, message) = sent(1003).await;
    let path = format!("{}/{}/Quarantine", media_path(&f.service_sid), read.sid);
    let (status, body) = send(app.admin(Method::POST, &path).form(&[("Reason", "test")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = stored(&app, &f).await;
    assert!(!store.count_stored_media(&read).await.unwrap());
    assert_eq!(stored(&app, &f).await, before);
    let record = app.record(read.sid.as_str()).await;
    assert_eq!(
        (record.status, record.quota),
        (MediaStatus::Quarantined, None)
    );
    let (_, shown) = send(app.user(&f.token, Method::GET, &f.message_path(&message))).await;
    assert_eq!(shown["media"]["removed"], "quarantined");

    // A message delete with the message as read before its media was counted
    // gives the bytes back all the same (it reads the message again).
    let (read, message) = sent(1005).await;
    let message_sid = MessageSid::parse(&sid(&message)).unwrap();
    let read_message = store
        .get_message(&f.channel_sid, &message_sid)
        .await
        .unwrap()
        .unwrap();
    assert!(!read_message.media.as_ref().unwrap().quota_counted);
    let before = stored(&app, &f).await;
    assert!(store.count_stored_media(&read).await.unwrap());
    store.delete_message(&read_message).await.unwrap();
    assert_eq!(stored(&app, &f).await, before);

    // A quarantine and a retention expiry with the media as read before it was
    // counted are refused (they would give nothing back); with the media as it
    // is, they give its bytes back.
    for expire in [false, true] {
        let (read, _) = sent(1006).await;
        assert!(store.count_stored_media(&read).await.unwrap());
        let date = chat_media::model::now();
        let remove = |media: Media| async move {
            if expire {
                store
                    .expire_media(&media, &expired_record(&media, date))
                    .await
            } else {
                let quarantined = Media {
                    status: MediaStatus::Quarantined,
                    quota: None,
                    ..media.clone()
                };
                store.quarantine_media(&media, &quarantined, &[], now).await
            }
        };
        assert!(!remove(read.clone()).await.unwrap(), "expire: {expire}");
        assert_eq!(
            app.record(read.sid.as_str()).await.status,
            MediaStatus::Ready
        );
        let before = stored(&app, &f).await;
        assert!(remove(app.record(read.sid.as_str()).await).await.unwrap());
        assert_eq!(stored(&app, &f).await, before - 1006, "expire: {expire}");
    }
}
