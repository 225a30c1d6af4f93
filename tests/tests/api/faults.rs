//! Dependencies failing mid-operation, through the harness's fault proxy
//! (`chat_media_tests::faults`): callers get a Twilio 503 (never a 500, never a
//! hang), nothing is half-written, nothing internal leaks, and one sweep after the
//! dependency returns leaves no orphan object, no dangling media and no upload
//! stuck in `uploading` or `scanning`. Also: a finalizer that lost its lease
//! deletes nothing.

use chat_media::config::{AwsOptions, Settings};
use chat_media::model::MediaStatus;
use chat_media::upload::FINALIZE_LEASE_SECS;
use chat_media_tests::faults::{Fault, FaultProxy};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{aws_options, json, now, send, sid, state_with, TestApp, PNG};

/// The S3 endpoint the tests run against.
fn s3_endpoint() -> String {
    aws_options().s3_endpoint.expect("an S3 endpoint")
}

#[tokio::test]
async fn a_finalizer_that_lost_its_lease_deletes_nothing() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, session) = send(app.user(&f.token, Method::POST, &f.sessions_path()).form(&[
        ("Size", PNG.len().to_string().as_str()),
        ("ContentType", "image/png"),
    ]))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let (status, _) = app
        .put_part(&session["upload"]["parts"][0], PNG.to_vec())
        .await;
    assert!(status.is_success());
    let media = sid(&session);
    let key = app.record(&media).await.object_key;

    // Finalizer A (the S3 event) reaches S3 through a proxy that holds its calls,
    // and works at a `now` so far back that its lease has already run out.
    let proxy = FaultProxy::start(&s3_endpoint()).await;
    let slow = state_with(
        &AwsOptions {
            s3_endpoint: Some(proxy.url()),
            ..aws_options()
        },
        Settings::default(),
    )
    .await;
    proxy.set(Fault::Stall);
    let stale = now() - 2 * FINALIZE_LEASE_SECS;
    let event = app.s3_object_created(&key);
    let a = tokio::spawn(async move { media_events::handle(&slow, event, stale).await });
    // A holds the (lapsed) lease and waits on S3.
    for _ in 0..200 {
        if app.record(&media).await.finalizing_until == Some(stale + FINALIZE_LEASE_SECS) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.record(&media).await.finalizing_until,
        Some(stale + FINALIZE_LEASE_SECS),
        "finalizer A claimed the upload"
    );

    // Finalizer B (the complete call) takes the lapsed lease over and finishes.
    let complete = format!("{}/Complete", f.media_path(&media.parse().unwrap()));
    let (status, body) = send(app.user(&f.token, Method::POST, &complete)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");

    // A goes on, loses its write, and must leave B's media alone.
    proxy.set(Fault::Pass);
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), a)
        .await
        .expect("finalizer A ends")
        .unwrap()
        .expect("a lost lease is not an error to retry");
    assert_eq!(report["orphans_deleted"], json!([]), "{report}");
    assert_eq!(report["in_progress"], json!([key]), "{report}");
    assert_eq!(app.record(&media).await.status, MediaStatus::Ready);
    assert_eq!(
        app.object(&key).await.as_deref(),
        Some(PNG),
        "the ready media keeps its object"
    );
    let (status, body) = app.post_media(&f, &f.token, &media).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
