//! Authentication rules and error handling over HTTP: every refusal is a Twilio
//! error body with the right status, and an unreachable store is a 503.

use chat_media::auth::{sign_jwt, TOKEN_CONTENT_TYPE};
use chat_media::config::{AwsOptions, Settings};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, credentials, json, send, sid, TestApp};

#[tokio::test]
async fn missing_and_wrong_credentials_are_401() {
    let app = TestApp::spawn().await;
    let (status, body) = send(app.anon(Method::GET, "/v2/Services")).await;
    assert_error(status, &body, 401, Some(20003));
    let (status, body) = send(
        app.anon(Method::GET, "/v2/Services")
            .basic_auth("AC00000000000000000000000000000001", Some("wrong")),
    )
    .await;
    assert_error(status, &body, 401, Some(20003));
    // API key credentials are admin too.
    let c = credentials();
    let (status, _) = send(
        app.anon(Method::GET, "/v2/Services")
            .basic_auth(c.api_key_sid.as_str(), Some(&c.api_key_secret)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_tokens_are_refused_with_distinct_codes() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let c = credentials();
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64, nbf: i64| {
        json!({"iss": c.api_key_sid.as_str(), "sub": c.account_sid.as_str(), "exp": exp, "nbf": nbf,
        "grants": {"identity": "alice", "chat": {"service_sid": f.service_sid}}})
    };
    let header = json!({"alg": "HS256", "cty": TOKEN_CONTENT_TYPE, "typ": "JWT"});
    use base64::Engine;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let cases = [
        (
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "cty": TOKEN_CONTENT_TYPE})),
                b64(&claims(now + 60, now))
            ),
            20102,
        ),
        (
            sign_jwt(
                &json!({"alg": "HS384", "cty": TOKEN_CONTENT_TYPE}),
                &claims(now + 60, now),
                &c.api_key_secret,
            ),
            20102,
        ),
        (
            sign_jwt(&header, &claims(now + 60, now), "not-the-secret"),
            20107,
        ),
        (
            sign_jwt(&header, &claims(now - 10, now - 100), &c.api_key_secret),
            20104,
        ),
        (
            sign_jwt(&header, &claims(now + 900, now + 600), &c.api_key_secret),
            20105,
        ),
    ];
    let mut messages = Vec::new();
    for (token, code) in cases {
        for (name, value) in [
            ("X-Twilio-Token", token.clone()),
            ("Authorization", format!("Bearer {token}")),
        ] {
            let (status, body) =
                send(app.anon(Method::GET, &f.channel_path()).header(name, value)).await;
            assert_error(status, &body, 401, Some(code));
            messages.push(body["message"].as_str().unwrap().to_owned());
        }
    }
    messages.dedup();
    assert_eq!(messages.len(), 5, "each refusal says why: {messages:?}");
    // The good token works in both headers.
    for (name, value) in [
        ("X-Twilio-Token", f.token.clone()),
        ("Authorization", format!("Bearer {}", f.token)),
    ] {
        let (status, _) = send(app.anon(Method::GET, &f.channel_path()).header(name, value)).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn malformed_sids_and_unknown_resources() {
    let app = TestApp::spawn().await;
    let (status, body) = send(app.admin(Method::GET, "/v2/Services/IS123")).await;
    assert_error(status, &body, 400, Some(20001));
    assert!(body["message"].as_str().unwrap().contains("ServiceSid"));
    let (status, body) = send(app.admin(
        Method::GET,
        "/v2/Services/CH0123456789abcdef0123456789abcdef",
    ))
    .await;
    assert_error(status, &body, 400, Some(20001));
    let (status, body) = send(app.admin(
        Method::GET,
        "/v2/Services/IS0123456789abcdef0123456789abcdef",
    ))
    .await;
    assert_error(status, &body, 404, Some(20404));
    let service = sid(&app.create_service().await);
    let (status, body) = send(app.admin(
        Method::GET,
        &format!("/v2/Services/{service}/Channels/CH0123456789abcdef0123456789abcdef"),
    ))
    .await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = send(app.admin(Method::GET, "/v2/NoSuchThing")).await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = send(app.admin(Method::PUT, "/v2/Services")).await;
    assert_error(status, &body, 405, None);
}

#[tokio::test]
async fn wrong_content_type_and_oversized_bodies() {
    let app = TestApp::spawn().await;
    let (status, body) = send(
        app.admin(Method::POST, "/v2/Services")
            .header("content-type", "application/json")
            .body(r#"{"FriendlyName":"x"}"#),
    )
    .await;
    assert_error(status, &body, 415, None);
    let (status, body) = send(
        app.admin(Method::POST, "/v2/Services")
            .form(&[("FriendlyName", "x".repeat(300 * 1024))]),
    )
    .await;
    assert_error(status, &body, 413, None);
    let (status, body) = send(
        app.admin(Method::POST, "/v2/Services")
            .form(&[("FriendlyName", "x".repeat(300))]),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    let (status, body) = send(app.admin(Method::POST, "/v2/Services")).await;
    assert_error(status, &body, 400, Some(20001));
    assert!(body["message"].as_str().unwrap().contains("FriendlyName"));
    // charset parameters are fine.
    let (status, _) = send(
        app.admin(Method::POST, "/v2/Services")
            .header(
                "content-type",
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body("FriendlyName=ok"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn unreachable_dynamodb_is_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let aws = AwsOptions {
        dynamodb_endpoint: Some(format!("http://127.0.0.1:{port}")),
        ..chat_media_tests::aws_options()
    };
    let app = TestApp::spawn_with(aws, Settings::default()).await;
    let (status, body) = send(
        app.admin(Method::POST, "/v2/Services")
            .form(&[("FriendlyName", "x")]),
    )
    .await;
    assert_error(status, &body, 503, Some(20503));
    // What the caller can act on, nothing of the SDK's error or the address.
    assert_eq!(
        body["message"],
        "The data store is unavailable; retry later"
    );
    let (status, body) = send(app.admin(Method::GET, "/v2/Services")).await;
    assert_error(status, &body, 503, Some(20503));
    let text = body.to_string();
    for leak in [
        "127.0.0.1",
        &port.to_string(),
        "dispatch",
        "DynamoDB",
        "error sending",
    ] {
        assert!(!text.contains(leak), "{leak:?} leaked: {text}");
    }
}
