//! The sample events under `events/` are what API Gateway, S3 and EventBridge send:
//! each one, pointed at a real service and media, goes through the function as
//! Lambda would run it (lambda_http's event parsing, then the function's router).

use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{credentials, send, sid, TestApp};
use serde_json::Value;
use tower::ServiceExt;

const SAMPLE_SERVICE: &str = "IS0123456789abcdef0123456789abcdef";
const SAMPLE_MEDIA: &str = "ME0123456789abcdef0123456789abcdef";

fn sample(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("events/{path}: {e}"))
}

/// Runs an API Gateway HTTP API (v2) event through upload-media's Lambda router.
async fn invoke(app: &TestApp, event: &str) -> (StatusCode, Value) {
    let c = credentials();
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.account_sid, c.auth_token))
    );
    let mut json: Value = serde_json::from_str(event).unwrap();
    json["headers"]["authorization"] = Value::String(basic);
    let request =
        lambda_http::request::from_str(&json.to_string()).expect("a valid HTTP API event");
    let response = upload_media::router(app.state.clone())
        .oneshot(request.map(axum::body::Body::new))
        .await
        .unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn upload_media_sample_events_run_through_the_function() {
    let app = TestApp::spawn().await;
    let service = sid(&app.create_service().await);
    let event =
        |name: &str| sample(&format!("upload-media/{name}")).replace(SAMPLE_SERVICE, &service);

    let (status, body) = invoke(&app, &event("direct-raw.json")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["filename"], "€ cat.png");
    assert_eq!(body["status"], "ready");
    let (status, body) = invoke(&app, &event("direct-form-data.json")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["filename"], "cat.png");
    let (status, body) = invoke(&app, &event("direct-raw-filename-query.json")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["filename"], "notes v2.txt");

    let (status, single) = invoke(&app, &event("create-session-single.json")).await;
    assert_eq!(status, StatusCode::CREATED, "{single}");
    assert_eq!(single["upload"]["type"], "single");
    let (status, multi) = invoke(&app, &event("create-session-multipart.json")).await;
    assert_eq!(status, StatusCode::CREATED, "{multi}");
    assert_eq!(multi["upload"]["type"], "multipart");

    // Complete: nothing uploaded yet for the single PUT (409); three ETags for a
    // session of more parts (400). Both answered by the handler, not a fallback.
    let complete = |name: &str, media: &Value| event(name).replace(SAMPLE_MEDIA, &sid(media));
    let (status, body) = invoke(&app, &complete("complete-single.json", &single)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = invoke(&app, &complete("complete-multipart.json", &multi)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("PartETag"),
        "{body}"
    );
}

#[tokio::test]
async fn media_events_sample_events_are_handled() {
    let app = TestApp::spawn().await;
    let service = sid(&app.create_service().await);
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let (status, session) = send(
        app.admin(
            Method::POST,
            &format!("/v1/Services/{service}/MediaUploads"),
        )
        .form(&[
            ("Size", png.len().to_string()),
            ("ContentType", "image/png".into()),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let part = &session["upload"]["parts"][0];
    let mut put = app.http.put(part["url"].as_str().unwrap());
    for (k, v) in part["headers"].as_object().unwrap() {
        put = put.header(k, v.as_str().unwrap());
    }
    assert!(put
        .body(png.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .is_success());

    let event = sample("media-events/s3-object-created.json")
        .replace(SAMPLE_SERVICE, &service)
        .replace(SAMPLE_MEDIA, &sid(&session))
        .replace(
            "\"chat-media\"",
            &format!("\"{}\"", app.state.blob.bucket()),
        );
    let report = media_events::handle(
        &app.state,
        serde_json::from_str(&event).unwrap(),
        chrono::Utc::now().timestamp(),
    )
    .await
    .unwrap();
    assert_eq!(report["finalized"].as_array().unwrap().len(), 1, "{report}");

    let scheduled: Value =
        serde_json::from_str(&sample("media-events/scheduled-sweep.json")).unwrap();
    let report = media_events::handle(&app.state, scheduled, chrono::Utc::now().timestamp())
        .await
        .unwrap();
    assert!(report["expired_media"].is_u64(), "{report}");

    let unknown = media_events::handle(&app.state, serde_json::json!({"hello": 1}), 0).await;
    assert!(unknown.is_err());
}
