//! Takedown by hash: an admin quarantines a media; its object goes, its message
//! stays showing the media as removed, and the same bytes are refused for anyone
//! in the service until the hash is lifted.

use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, media_path, send, sha256_hex, sid, Fixture, TestApp, PNG};
use serde_json::Value;

/// PNG bytes no other upload of the test has: a valid PNG followed by `tag`.
fn unique_png(tag: &str) -> Vec<u8> {
    let mut bytes = PNG.to_vec();
    bytes.extend_from_slice(tag.as_bytes());
    bytes
}

/// A direct upload of `bytes` as `token`'s user (or an admin when `None`).
async fn upload(
    app: &TestApp,
    service: &impl std::fmt::Display,
    token: Option<&str>,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let path = media_path(service);
    let req = match token {
        Some(t) => app.user(t, Method::POST, &path),
        None => app.admin(Method::POST, &path),
    };
    send(
        req.header("Content-Type", "image/png")
            .header("Content-Disposition", "attachment; filename=\"photo.png\"")
            .body(bytes.to_vec()),
    )
    .await
}

fn hashes_path(f: &Fixture) -> String {
    format!("/v1/Services/{}/QuarantinedHashes", f.service_sid)
}

#[tokio::test]
async fn a_quarantined_media_is_removed_and_its_bytes_are_refused_for_anyone() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let bob = app.join(&f, "bob", None).await;
    let bytes = unique_png("takedown-1");
    let digest = sha256_hex(&bytes);

    let (status, media) = upload(&app, &f.service_sid, Some(&f.token), &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    assert_eq!(media["sha256"], digest);
    let media_sid = sid(&media);
    let (status, message) = app.post_media(&f, &f.token, &media_sid).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let key = app.record(&media_sid).await.object_key;
    assert!(app.object_exists(&key).await);

    let (status, taken) = app.quarantine(&f, &media_sid, "  reported as abuse ").await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken["status"], "quarantined");
    assert_eq!(
        taken["status_reason"],
        "Removed by an administrator: reported as abuse"
    );
    assert_eq!(taken["links"]["content_direct_temporary"], Value::Null);

    // The object is gone; the record and the message stay, showing the removal.
    assert!(!app.object_exists(&key).await, "the object is deleted");
    let record = app.record(&media_sid).await;
    assert_eq!(record.status.as_str(), "quarantined");
    assert!(record.message_sid.is_some(), "still bound to its message");
    let (status, shown) = send(app.user(
        &bob.token,
        Method::GET,
        &format!("{}/{media_sid}", media_path(&f.service_sid)),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["status"], "quarantined");
    assert_eq!(shown["links"]["content_direct_temporary"], Value::Null);
    let (status, body) = send(app.user(
        &bob.token,
        Method::GET,
        &format!("{}/{media_sid}/Content", media_path(&f.service_sid)),
    ))
    .await;
    assert_error(status, &body, 409, Some(20409));
    let (status, shown) = send(app.user(&bob.token, Method::GET, &f.message_path(&message))).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["type"], "media");
    assert_eq!(shown["media"]["sid"], media_sid.as_str());
    assert_eq!(shown["media"]["removed"], "quarantined");

    // The same bytes, by another user, directly or by a session, are refused and
    // not kept; so are an admin's.
    let (status, body) = upload(&app, &f.service_sid, Some(&bob.token), &bytes).await;
    assert_error(status, &body, 422, Some(20422));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("reported as abuse"),
        "{body}"
    );
    assert_eq!(app.slots(&f.service_sid, "bob").await, 0, "slot given back");
    let session = app
        .uploaded_session(&bob.token, &f.service_sid, "image/png", &bytes)
        .await;
    let complete = format!("{}/{}/Complete", media_path(&f.service_sid), sid(&session));
    let (status, body) = send(app.user(&bob.token, Method::POST, &complete)).await;
    assert_error(status, &body, 422, Some(20422));
    let refused = app.record(sid(&session)).await;
    assert_eq!(refused.status.as_str(), "rejected");
    assert!(!app.object_exists(&refused.object_key).await);
    let (status, body) = upload(&app, &f.service_sid, None, &bytes).await;
    assert_error(status, &body, 422, Some(20422));
    // Other bytes pass, and so do these bytes in another service.
    let (status, body) = upload(&app, &f.service_sid, Some(&bob.token), &unique_png("other")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let other = app.create_service().await;
    let (status, body) = upload(&app, &sid(&other), None, &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The deny-list lists the digest; lifting it lets the bytes in again.
    let (status, list) = send(app.admin(Method::GET, &hashes_path(&f))).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let entries = list["quarantined_hashes"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["sha256"], digest);
    assert_eq!(entries[0]["media_sid"], media_sid.as_str());
    assert_eq!(entries[0]["reason"], "reported as abuse");
    let entry_path = format!("{}/{digest}", hashes_path(&f));
    let upper = format!("{}/{}", hashes_path(&f), digest.to_uppercase());
    let (status, entry) = send(app.admin(Method::GET, &upper)).await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["sha256"], digest, "kept in lowercase");
    let (status, body) = send(app.admin(Method::DELETE, &entry_path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = send(app.admin(Method::DELETE, &entry_path)).await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = send(app.admin(Method::GET, &entry_path)).await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = upload(&app, &f.service_sid, Some(&bob.token), &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The quarantined media itself stays removed.
    assert_eq!(app.record(&media_sid).await.status.as_str(), "quarantined");
}

#[tokio::test]
async fn quarantining_an_unbound_upload_gives_back_its_slot() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, media) =
        upload(&app, &f.service_sid, Some(&f.token), &unique_png("unbound")).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    assert_eq!(app.slots(&f.service_sid, "alice").await, 1);
    let (status, body) = app.quarantine(&f, &sid(&media), "spam").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.slots(&f.service_sid, "alice").await, 0);
    let record = app.record(sid(&media)).await;
    assert!(!record.holds_slot);
    assert!(!app.object_exists(&record.object_key).await);
    // The uploader cannot send it any more.
    let (status, body) = app.post_media(&f, &f.token, &sid(&media)).await;
    assert!(status.is_client_error(), "{status} {body}");
}

#[tokio::test]
async fn quarantine_refuses_what_it_cannot_take_down() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, media) = upload(&app, &f.service_sid, Some(&f.token), &unique_png("r")).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    let media_sid = sid(&media);

    // No reason, an empty or over-long one: 400 naming Reason; nothing changes.
    let path = format!("{}/{media_sid}/Quarantine", media_path(&f.service_sid));
    let (status, body) = send(app.admin(Method::POST, &path).form(&[("x", "")])).await;
    assert_error(status, &body, 400, Some(20001));
    assert!(
        body["message"].as_str().unwrap().contains("Reason"),
        "{body}"
    );
    for bad in ["   ".to_owned(), "x".repeat(1025)] {
        let (status, body) = app.quarantine(&f, &media_sid, &bad).await;
        assert_error(status, &body, 400, Some(20001));
    }
    assert_eq!(app.record(&media_sid).await.status.as_str(), "ready");

    // Unknown media, a media of another service, a bad SID: 404 / 400.
    let other = app.service_with_member("alice").await;
    let (status, foreign) = upload(
        &app,
        &other.service_sid,
        Some(&other.token),
        &unique_png("f"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{foreign}");
    let (status, body) = app.quarantine(&f, &sid(&foreign), "x").await;
    assert_error(status, &body, 404, Some(20404));
    assert_eq!(app.record(sid(&foreign)).await.status.as_str(), "ready");
    let (status, body) = app
        .quarantine(&f, "ME00000000000000000000000000000000", "x")
        .await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = app.quarantine(&f, "not-a-sid", "x").await;
    assert_error(status, &body, 400, None);

    // Twice: the second is a conflict. A media still uploading: a conflict.
    let (status, _) = app.quarantine(&f, &media_sid, "x").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.quarantine(&f, &media_sid, "x").await;
    assert_error(status, &body, 409, Some(20409));
    let (status, session) = send(
        app.user(&f.token, Method::POST, &f.sessions_path())
            .form(&[("Size", "10"), ("ContentType", "image/png")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let (status, body) = app.quarantine(&f, &sid(&session), "x").await;
    assert_error(status, &body, 409, Some(20409));

    // A path digest that is not one: 400.
    for bad in ["abc", &"g".repeat(64)] {
        let p = format!("{}/{bad}", hashes_path(&f));
        let (status, body) = send(app.admin(Method::GET, &p)).await;
        assert_error(status, &body, 400, Some(20001));
        let (status, body) = send(app.admin(Method::DELETE, &p)).await;
        assert_error(status, &body, 400, Some(20001));
    }
}
