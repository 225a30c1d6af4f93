//! clamd down: uploads fail closed (503, media `failed`, nothing downloadable or
//! bindable, objects kept); clamd back: the media-events sweep rescans them (clean
//! → ready, infected → rejected and deleted), and takes over scans that died.
//!
//! The sweep rescans every `failed` media in the shared table, so this test holds
//! `sweeping()`: it must not race tests that expect theirs to stay `failed`.

use chat_media::model::{Media, MediaStatus};
use chat_media::sid::MediaSid;
use chat_media_tests::clamd::{eicar, Clamd, ClamdOptions, EICAR_SIGNATURE};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{
    assert_error, json, now, send, sha256_hex, sid, sweeping, Fixture, TestApp, PNG,
};
use serde_json::Value;

/// The SID a 503 names ("Media ME… is kept and will be scanned again").
fn named_media(body: &Value) -> String {
    let message = body["message"].as_str().unwrap();
    let at = message.find("Media ME").expect("the 503 names the media") + "Media ".len();
    message[at..at + 34].to_owned()
}

async fn download_url(app: &TestApp, f: &Fixture, media: &str) -> Value {
    let (status, json) = send(app.user(
        &f.token,
        Method::GET,
        &f.media_path(&MediaSid::parse(media).unwrap()),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["links"]["content_direct_temporary"].clone()
}

#[tokio::test]
async fn clamd_down_fails_closed_and_the_sweep_finishes_the_uploads_when_it_is_back() {
    let _sweeping = sweeping().await;
    let mut clamd = Clamd::start(ClamdOptions::default()).await;
    let app = TestApp::spawn_scanning(clamd.scanner()).await;
    let f = app.service_with_member("alice").await;
    clamd.stop().await;

    // Direct upload: 503, media `failed`, object kept, slot kept.
    let (status, body) = send(
        app.user(&f.token, Method::POST, &f.uploads_path())
            .header("Content-Type", "image/png")
            .body(PNG.to_vec()),
    )
    .await;
    assert_error(status, &body, 503, Some(20503));
    let direct = named_media(&body);
    // Infected content uploaded during the outage: also only `failed` for now.
    let (status, body) = send(
        app.user(&f.token, Method::POST, &f.uploads_path())
            .header("Content-Type", "text/plain")
            .body(eicar()),
    )
    .await;
    assert_error(status, &body, 503, Some(20503));
    let infected = named_media(&body);

    // Session: complete answers 503, and again (it rescans, clamd still down).
    let (status, session) = send(app.user(&f.token, Method::POST, &f.sessions_path()).form(&[
        ("Size", PNG.len().to_string().as_str()),
        ("ContentType", "image/png"),
    ]))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let part = &session["upload"]["parts"][0];
    let mut req = app.http.put(part["url"].as_str().unwrap());
    for (k, v) in part["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    assert!(req
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let complete = format!(
        "/v1/Services/{}/Media/{}/Complete",
        f.service_sid,
        sid(&session)
    );
    for _ in 0..2 {
        let (status, body) = send(app.user(&f.token, Method::POST, &complete)).await;
        assert_error(status, &body, 503, Some(20503));
    }
    let session = sid(&session);

    // The S3 event while clamd is down keeps the object for the sweep.
    let key = app.record(&session).await.object_key;
    let event = app.s3_object_created(&key);
    let report = media_events::handle(&app.state, event, now())
        .await
        .unwrap();
    assert_eq!(report["scan_failed"], json!([key]), "{report}");

    for media in [&direct, &infected, &session] {
        let stored = app.record(media).await;
        assert_eq!(stored.status, MediaStatus::Failed, "{stored:?}");
        assert!(
            stored
                .status_reason
                .as_deref()
                .unwrap()
                .starts_with("scan failed"),
            "{stored:?}"
        );
        assert!(stored.holds_slot);
        assert!(
            app.object_exists(&stored.object_key).await,
            "kept for the rescan"
        );
        assert_eq!(
            download_url(&app, &f, media).await,
            Value::Null,
            "not downloadable"
        );
        let (status, body) = send(app.user(
            &f.token,
            Method::GET,
            &format!("{}/Content", f.media_path(&stored.sid)),
        ))
        .await;
        assert_error(status, &body, 409, None);
        let (status, body) = app.post_media(&f, &f.token, media).await;
        assert_error(status, &body, 409, None);
    }

    // A scan that died (left `scanning`, lease run out) and one still running.
    let dead = scanning_media(&app, &f, now() - 1).await;
    let running = scanning_media(&app, &f, now() + 600).await;
    let (status, body) = app.post_media(&f, &f.token, running.sid.as_str()).await;
    assert_error(status, &body, 409, None);
    assert!(
        body["message"].as_str().unwrap().contains("scanning"),
        "{body}"
    );

    // The sweep while clamd is still down: nothing changes.
    let report = media_events::sweep(&app.state, now()).await.unwrap();
    assert!(report.scanner_unavailable, "{report:?}");
    assert_eq!(app.record(&direct).await.status, MediaStatus::Failed);

    // clamd is back: the sweep finishes every one of them.
    clamd.restart().await;
    let report = media_events::sweep(&app.state, now()).await.unwrap();
    assert!(!report.scanner_unavailable, "{report:?}");
    assert!(report.rescanned_ready >= 3, "{report:?}");
    assert!(report.rescanned_rejected >= 1, "{report:?}");
    for media in [&direct, &session, &dead.sid.to_string()] {
        let stored = app.record(media).await;
        assert_eq!(stored.status, MediaStatus::Ready, "{stored:?}");
        assert_eq!(stored.status_reason, None);
        assert_eq!(stored.finalizing_until, None);
    }
    let rejected = app.record(&infected).await;
    assert_eq!(rejected.status, MediaStatus::Rejected);
    assert_eq!(
        rejected.status_reason.as_deref(),
        Some(format!("infected: {EICAR_SIGNATURE}").as_str())
    );
    assert!(
        !app.object_exists(&rejected.object_key).await,
        "deleted once found infected"
    );
    assert!(!rejected.holds_slot);
    assert_eq!(
        app.record(running.sid.as_str()).await.status,
        MediaStatus::Scanning,
        "a scan still within its lease is not taken over"
    );

    assert!(download_url(&app, &f, &direct).await.is_string());
    for media in [&direct, &session] {
        let (status, body) = app.post_media(&f, &f.token, media).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = send(app.user(&f.token, Method::POST, &complete)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
}

/// A checked upload in `scanning` whose scan lease ends at `lease_until`.
async fn scanning_media(app: &TestApp, f: &Fixture, lease_until: i64) -> Media {
    let mut media = app
        .media_with_status(
            &f.service_sid,
            "alice",
            "image/png",
            None,
            PNG,
            MediaStatus::Scanning,
        )
        .await;
    media.sha256 = Some(sha256_hex(PNG));
    media.finalizing_until = Some(lease_until);
    // Rewrite the record the helper made with the checked facts and the lease.
    app.put_media_record(&media).await;
    media
}
