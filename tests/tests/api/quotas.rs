//! Upload quotas (issue 17 §4): `Media.QuotaBytesPerIdentity` per
//! `Media.QuotaWindowHours` and `Media.QuotaBytesPerService`, charged in the
//! transaction that creates the upload, so concurrent uploads never overrun them;
//! given back when an upload is refused, swept or deleted; admins are not limited.

use chat_media::identity::Identity;
use chat_media::sid::ServiceSid;
use chat_media_tests::reqwest::{header::HeaderMap, Method, StatusCode};
use chat_media_tests::{
    assert_error, exe, png_like, send, send_full, sessions_path, sid, Fixture, TestApp,
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

    // Turning the quota off: uploads are neither limited nor counted.
    configure(&app, &f, &[("Media.QuotaBytesPerService", "")]).await;
    let (status, _, body) = upload(&app, &f, Some(&f.token), &png_like(1000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        3000
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
