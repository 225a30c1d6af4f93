//! The upload pipeline with a real clamd (scripts/test's, or a private one with a
//! small stream limit): infected uploads are rejected with the signature and their
//! objects deleted, clean ones become ready, content clamd cannot scan completely
//! never becomes ready; direct uploads, upload sessions and the S3 event.
//!
//! The clamd outage and the sweep's rescans live in `scan_outage.rs`: a sweep
//! rescans every `failed` media in the shared table, so a test here that expects
//! its media to stay `failed` holds `no_sweeps()`.

use chat_media::model::{Media, MediaStatus};
use chat_media::scan::infected_reason;
use chat_media::sid::MediaSid;
use chat_media_tests::clamd::{
    eicar, shared_scanner, zip_one, Clamd, ClamdOptions, EICAR_SIGNATURE,
};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, json, now, send, sid, Fixture, TestApp, PNG};
use serde_json::Value;

/// An upload-session part that S3 must take; returns its ETag.
async fn put_part(app: &TestApp, part: &Value, body: Vec<u8>) -> Option<String> {
    let (status, etag) = app.put_part(part, body).await;
    assert!(status.is_success(), "{status}");
    etag
}

/// A direct upload as the fixture's user; returns status and body.
async fn upload(
    app: &TestApp,
    f: &Fixture,
    content_type: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    send(
        app.user(&f.token, Method::POST, &f.uploads_path())
            .header("Content-Type", content_type)
            .body(bytes.to_vec()),
    )
    .await
}

async fn complete(app: &TestApp, f: &Fixture, media: &str) -> (StatusCode, Value) {
    send(app.user(
        &f.token,
        Method::POST,
        &format!("{}/{media}/Complete", f.uploads_path()),
    ))
    .await
}

/// The refused media is kept as `rejected` with the signature, its object is gone,
/// its slot given back, it gets no URL and cannot be bound.
async fn assert_rejected_as_infected(app: &TestApp, f: &Fixture, media: &Media) {
    let stored = app.record(media.sid.as_str()).await;
    assert_eq!(stored.status, MediaStatus::Rejected);
    assert_eq!(
        stored.status_reason.as_deref(),
        Some(infected_reason(EICAR_SIGNATURE).as_str())
    );
    assert!(!stored.holds_slot);
    assert!(
        !app.object_exists(&stored.object_key).await,
        "the infected object is deleted at once"
    );
    assert!(!app.deletion_pending(&stored.object_key).await);
    let (status, json) = send(app.user(&f.token, Method::GET, &f.media_path(&stored.sid))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["status"], "rejected");
    assert_eq!(json["status_reason"], infected_reason(EICAR_SIGNATURE));
    assert_eq!(json["links"]["content_direct_temporary"], Value::Null);
    let (status, body) = app.post_media(f, &f.token, stored.sid.as_str()).await;
    assert_error(status, &body, 409, None);
    assert!(
        body["message"].as_str().unwrap().contains("rejected"),
        "{body}"
    );
}

#[tokio::test]
async fn eicar_uploaded_directly_is_rejected_with_its_signature_and_deleted() {
    let app = TestApp::spawn_scanning(shared_scanner()).await;
    let f = app.service_with_member("alice").await;
    let mut content = b"notes.txt\n".to_vec();
    content.extend_from_slice(&eicar());
    let (status, body) = upload(&app, &f, "text/plain", &content).await;
    assert_error(status, &body, 422, Some(20422));
    assert!(
        body["message"].as_str().unwrap().contains(EICAR_SIGNATURE),
        "the uploader is told the signature: {body}"
    );
    let media = app.media_records(&f.service_sid).await;
    assert_eq!(media.len(), 1, "the record is kept");
    assert_rejected_as_infected(&app, &f, &media[0]).await;
    assert_eq!(app.slots(&f.service_sid, "alice").await, 0);
}

#[tokio::test]
async fn eicar_inside_a_zip_is_rejected_directly_and_through_a_session() {
    let app = TestApp::spawn_scanning(shared_scanner()).await;
    let f = app.service_with_member("bob").await;
    // Deflated: clamd must inflate the member to find it.
    let zip = zip_one("docs/readme.txt", &eicar(), true);
    let form = chat_media_tests::reqwest::multipart::Form::new().part(
        "file",
        chat_media_tests::reqwest::multipart::Part::bytes(zip.clone())
            .file_name("docs.zip")
            .mime_str("application/zip")
            .unwrap(),
    );
    let (status, body) = send(
        app.user(&f.token, Method::POST, &f.uploads_path())
            .multipart(form),
    )
    .await;
    assert_error(status, &body, 422, Some(20422));
    assert!(
        body["message"].as_str().unwrap().contains(EICAR_SIGNATURE),
        "{body}"
    );
    let direct = app.media_records(&f.service_sid).await;
    assert_eq!(direct.len(), 1);
    assert_rejected_as_infected(&app, &f, &direct[0]).await;

    // Stored (not deflated), through a session: scanned from S3 at complete.
    let session = app
        .uploaded_session(
            &f.token,
            &f.service_sid,
            "application/zip",
            &zip_one("a.txt", &eicar(), false),
        )
        .await;
    let (status, body) = complete(&app, &f, &sid(&session)).await;
    assert_error(status, &body, 422, Some(20422));
    assert!(
        body["message"].as_str().unwrap().contains(EICAR_SIGNATURE),
        "{body}"
    );
    let media = app.record(&sid(&session)).await;
    assert_rejected_as_infected(&app, &f, &media).await;
    // Completing again answers the same.
    let (status, again) = complete(&app, &f, &sid(&session)).await;
    assert_error(status, &again, 422, Some(20422));
    assert_eq!(app.slots(&f.service_sid, "bob").await, 0);
}

#[tokio::test]
async fn eicar_at_the_end_of_a_150_mb_session_is_rejected() {
    const SIZE: u64 = 157_286_400;
    let app = TestApp::spawn_scanning(shared_scanner()).await;
    let f = app.service_with_member("carol").await;
    let (status, session) = send(app.user(&f.token, Method::POST, &f.sessions_path()).form(&[
        ("Size", SIZE.to_string().as_str()),
        ("ContentType", "video/mp4"),
        ("Filename", "talk.mp4"),
    ]))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let parts = session["upload"]["parts"].as_array().unwrap().clone();
    let mut etags = Vec::new();
    let last = parts.len() as u64;
    for part in &parts {
        let n = part["part_number"].as_u64().unwrap();
        let len = part["size"].as_u64().unwrap() as usize;
        // One part at a time: the file is never whole in memory.
        let mut body: Vec<u8> = (0..len)
            .map(|i| ((i as u64 * 31 + n * 17) % 253) as u8)
            .collect();
        if n == 1 {
            let ftyp = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
            body[..ftyp.len()].copy_from_slice(ftyp);
        }
        if n == last {
            let sig = eicar();
            let at = body.len() - sig.len();
            body[at..].copy_from_slice(&sig);
        }
        etags.push(put_part(&app, part, body).await.expect("an ETag per part"));
    }
    let form: Vec<(&str, &str)> = etags.iter().map(|e| ("PartETag", e.as_str())).collect();
    let (status, body) = send(
        app.user(
            &f.token,
            Method::POST,
            &format!("{}/{}/Complete", f.uploads_path(), sid(&session)),
        )
        .form(&form),
    )
    .await;
    assert_error(status, &body, 422, Some(20422));
    assert!(
        body["message"].as_str().unwrap().contains(EICAR_SIGNATURE),
        "{body}"
    );
    let media = app.record(&sid(&session)).await;
    assert_eq!(media.size, SIZE, "checked before the scan");
    assert_rejected_as_infected(&app, &f, &media).await;
}

#[tokio::test]
async fn clean_uploads_become_ready_and_bindable() {
    let app = TestApp::spawn_scanning(shared_scanner()).await;
    let f = app.service_with_member("dave").await;
    let (status, direct) = upload(&app, &f, "image/png", PNG).await;
    assert_eq!(status, StatusCode::CREATED, "{direct}");
    assert_eq!(direct["status"], "ready");
    assert_eq!(direct["status_reason"], Value::Null);

    let data: Vec<u8> = [PNG, &vec![7u8; 300_000]].concat();
    let session = app
        .uploaded_session(&f.token, &f.service_sid, "image/png", &data)
        .await;
    let (status, done) = complete(&app, &f, &sid(&session)).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "ready");
    let stored = app.record(&sid(&session)).await;
    assert_eq!(stored.finalizing_until, None, "no scan lease left behind");
    assert!(app.object_exists(&stored.object_key).await);

    for media in [sid(&direct), sid(&session)] {
        let (status, json) = send(app.user(
            &f.token,
            Method::GET,
            &f.media_path(&MediaSid::parse(&media).unwrap()),
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert!(
            json["links"]["content_direct_temporary"].is_string(),
            "{json}"
        );
        let (status, message) = app.post_media(&f, &f.token, &media).await;
        assert_eq!(status, StatusCode::CREATED, "{message}");
    }
}

#[tokio::test]
async fn the_s3_event_scans_a_session_nobody_completed() {
    let app = TestApp::spawn_scanning(shared_scanner()).await;
    let f = app.service_with_member("erin").await;
    let infected = app
        .uploaded_session(&f.token, &f.service_sid, "text/plain", &eicar())
        .await;
    let key = app.record(&sid(&infected)).await.object_key;
    let report = media_events::handle(&app.state, app.s3_object_created(&key), now())
        .await
        .unwrap();
    assert_eq!(report["refused"], json!([key]), "{report}");
    assert_rejected_as_infected(&app, &f, &app.record(&sid(&infected)).await).await;
    let (status, body) = complete(&app, &f, &sid(&infected)).await;
    assert_error(status, &body, 422, Some(20422));

    let clean = app
        .uploaded_session(&f.token, &f.service_sid, "image/png", PNG)
        .await;
    let key = app.record(&sid(&clean)).await.object_key;
    let report = media_events::handle(&app.state, app.s3_object_created(&key), now())
        .await
        .unwrap();
    assert_eq!(report["finalized"], json!([key]), "{report}");
    assert_eq!(app.record(&sid(&clean)).await.status, MediaStatus::Ready);
    assert_eq!(
        app.slots(&f.service_sid, "erin").await,
        1,
        "only the clean one"
    );
}

#[tokio::test]
async fn content_over_clamds_stream_limit_is_never_ready() {
    // Its media must stay `failed`: a sweep with a scanner would rescan them.
    let _no_sweeps = chat_media_tests::no_sweeps().await;
    // clamd stops reading at 1 MiB and answers "INSTREAM size limit exceeded".
    let clamd = Clamd::start(ClamdOptions {
        stream_max_length: "1M".into(),
        max_file_size: "1M".into(),
    })
    .await;
    let app = TestApp::spawn_scanning(clamd.scanner()).await;
    let f = app.service_with_member("frank").await;
    let big: Vec<u8> = [PNG, &vec![0x5a; 2 << 20]].concat();
    let (status, body) = upload(&app, &f, "image/png", &big).await;
    assert_error(status, &body, 503, Some(20503));
    let direct = app.media_records(&f.service_sid).await;
    assert_eq!(direct.len(), 1);
    let direct = &direct[0];
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(direct.sid.as_str()),
        "{body}"
    );

    let session = app
        .uploaded_session(&f.token, &f.service_sid, "image/png", &big)
        .await;
    let (status, body) = complete(&app, &f, &sid(&session)).await;
    assert_error(status, &body, 503, Some(20503));

    for media in [direct.sid.to_string(), sid(&session)] {
        let stored = app.record(&media).await;
        assert_eq!(stored.status, MediaStatus::Failed, "{stored:?}");
        assert!(
            stored
                .status_reason
                .as_deref()
                .unwrap()
                .contains("size limit"),
            "{stored:?}"
        );
        assert!(
            app.object_exists(&stored.object_key).await,
            "kept for a rescan"
        );
        let (status, json) =
            send(app.user(&f.token, Method::GET, &f.media_path(&stored.sid))).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["status"], "failed");
        assert_eq!(json["links"]["content_direct_temporary"], Value::Null);
        let (status, body) = app.post_media(&f, &f.token, &media).await;
        assert_error(status, &body, 409, None);
        assert!(
            body["message"].as_str().unwrap().contains("failed"),
            "{body}"
        );
    }
    // Completing again rescans, and fails again: never ready.
    let (status, body) = complete(&app, &f, &sid(&session)).await;
    assert_error(status, &body, 503, Some(20503));
    assert_eq!(app.record(&sid(&session)).await.status, MediaStatus::Failed);
    assert_eq!(
        app.slots(&f.service_sid, "frank").await,
        2,
        "failed media keep their slots"
    );
}
