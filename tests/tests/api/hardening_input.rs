//! Bad input refused cleanly (issue 11, items 1, 2, 4, 7 and 10): page tokens that
//! are not the list's own cursor, disguised filenames, values over their length
//! limits (in characters, and in bytes where they become DynamoDB keys), axum's
//! own rejections, and the clock-skew leeway of access tokens. Every refusal is a
//! Twilio error body naming what to fix; nothing answers 500 or drops the
//! connection.

use chat_media::auth::{sign_jwt, TOKEN_CONTENT_TYPE};
use chat_media::model::MediaStatus;
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{
    assert_error, credentials, json, media_path, now, send, send_full, sid, Fixture, TestApp, PNG,
};
use serde_json::Value;

/// A 400 (20001; Twilio's 50303 for `Attributes` too long) whose message names `param`.
#[track_caller]
fn assert_names(status: StatusCode, body: &Value, param: &str) {
    let code = if param == "Attributes" { 50303 } else { 20001 };
    assert_error(status, body, 400, Some(code));
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(param), "names {param}: {body}");
}

/// The `PageToken` of a list's `next_page_url`.
async fn next_token(app: &TestApp, path: &str) -> String {
    let (status, body) = send(app.admin(Method::GET, &format!("{path}?PageSize=1"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let next = body["meta"]["next_page_url"]
        .as_str()
        .unwrap_or_else(|| panic!("a second page of {path}: {body}"));
    next.split("PageToken=").nth(1).unwrap().to_owned()
}

/// A direct upload of a PNG as `token`'s user, named by the `Filename` query
/// parameter (already percent-encoded) if given.
async fn upload_png(
    app: &TestApp,
    token: &str,
    service: &impl std::fmt::Display,
    filename: Option<&str>,
) -> (StatusCode, Value) {
    let mut path = media_path(service);
    if let Some(name) = filename {
        path = format!("{path}?Filename={name}");
    }
    send(
        app.user(token, Method::POST, &path)
            .header("Content-Type", "image/png")
            .body(PNG.to_vec()),
    )
    .await
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn page_tokens_that_are_not_the_lists_own_cursor_are_400() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    app.add_member(&f, "bob", None).await;
    let other = app
        .channel_with_member(&f.service, &[("FriendlyName", "other")], "carol")
        .await;
    app.add_member(&other, "dave", None).await;
    for chan in [&f, &other] {
        for body in ["one", "two"] {
            app.send_text(chan, &chan.token, body).await;
        }
    }
    let members = |c: &Fixture| format!("{}/Members", c.channel_path());
    let channels = format!("{}/Channels", f.service_path());
    let lists = [members(&f), f.messages_path(), channels.clone()];
    let mut tokens = Vec::new();
    for list in &lists {
        tokens.push(next_token(&app, list).await);
    }
    let other_members = next_token(&app, &members(&other)).await;
    let other_messages = next_token(&app, &other.messages_path()).await;

    // Each list's own cursor works.
    for (list, token) in lists.iter().zip(&tokens) {
        let (status, body) = send(app.admin(
            Method::GET,
            &format!("{list}?PageSize=1&Page=1&PageToken={token}"),
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{list}: {body}");
    }

    let forged_members = b64(&json!({"PK": f.channel_sid, "SK": "MEMBER#"}));
    let empty_key = b64(&json!({"PK": "", "SK": "MEMBER#bob"}));
    let huge_key = b64(&json!({"PK": f.channel_sid, "SK": format!("MEMBER#{}", "x".repeat(2000))}));
    for (i, list) in lists.iter().enumerate() {
        let mut bad = vec![
            "e30".to_owned(), // {}: no SK (this one panicked)
            "garbage!!".to_owned(),
            b64(&json!(["PK", "SK"])),
            b64(&json!({"PK": 1, "SK": 2})),
            empty_key.clone(),
            huge_key.clone(),
        ];
        // The other lists' cursors, and the same list's cursor of another channel.
        bad.extend(
            tokens
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, t)| t.clone()),
        );
        match i {
            0 => bad.push(other_members.clone()),
            1 => bad.extend([other_messages.clone(), forged_members.clone()]),
            _ => bad.push(forged_members.clone()),
        }
        for token in bad {
            let path = format!("{list}?PageSize=1&Page=1&PageToken={token}");
            let (status, body) = send(app.admin(Method::GET, &path)).await;
            assert_names(status, &body, "PageToken");
            if list != &channels {
                // A member reading the list gets the same answer.
                let (status, body) = send(app.user(&f.token, Method::GET, &path)).await;
                assert_names(status, &body, "PageToken");
            }
        }
    }
}

#[tokio::test]
async fn invisible_characters_cannot_smuggle_a_blocked_extension() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("mallory").await;
    for name in [
        "payload.bat%E2%80%8B",        // zero-width space
        "payload.bat%EF%BB%BF",        // zero-width no-break space
        "payload.b%E2%81%A0at",        // word joiner inside the extension
        "payload%E2%80%AEtab.txt.bat", // right-to-left override
    ] {
        for request in [
            app.user(
                &f.token,
                Method::POST,
                &format!("{}?Filename={name}", f.uploads_path()),
            ),
            app.admin(
                Method::POST,
                &format!("{}?Filename={name}", f.uploads_path()),
            ),
        ] {
            let (status, body) =
                send(request.header("Content-Type", "text/plain").body("echo hi")).await;
            assert_error(status, &body, 415, Some(20415));
            assert!(body["message"].as_str().unwrap().contains("bat"), "{body}");
        }
    }
    assert!(app.objects_of(&f.service_sid).await.is_empty());
    assert!(app.media_records(&f.service_sid).await.is_empty());
    assert_eq!(app.slots(&f.service_sid, "mallory").await, 0);
}

#[tokio::test]
async fn a_right_to_left_override_reaches_neither_the_json_nor_the_download() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let rlo = '\u{202E}';
    let by_query = app
        .user(
            &f.token,
            Method::POST,
            &format!("{}?Filename=photo%E2%80%AEgnp.png", f.uploads_path()),
        )
        .header("Content-Type", "image/png");
    let by_header = app
        .user(&f.token, Method::POST, &f.uploads_path())
        .header("Content-Type", "image/png")
        .header(
            "Content-Disposition",
            "attachment; filename*=UTF-8''photo%E2%80%AEgnp.png",
        );
    for request in [by_query, by_header] {
        let (status, media) = send(request.body(PNG.to_vec())).await;
        assert_eq!(status, StatusCode::CREATED, "{media}");
        assert_eq!(media["filename"], "photognp.png", "{media}");
        let me: chat_media::sid::MediaSid = sid(&media).parse().unwrap();
        assert_eq!(app.record(&me).await.status, MediaStatus::Ready);

        let (status, fetched) = send(app.user(&f.token, Method::GET, &f.media_path(&me))).await;
        assert_eq!(status, StatusCode::OK, "{fetched}");
        assert_eq!(fetched["filename"], "photognp.png");
        let url = fetched["links"]["content_direct_temporary"]
            .as_str()
            .expect("a download URL");
        let signed = chat_media_tests::reqwest::Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "response-content-disposition")
            .map(|(_, v)| v.into_owned())
            .expect("a signed Content-Disposition");
        assert!(signed.contains("photognp.png"), "{signed}");
        assert!(
            !signed.contains(rlo) && !signed.contains("%E2%80%AE"),
            "{signed}"
        );
        let (status, headers, _) = send_full(app.http.get(url)).await;
        assert_eq!(status, StatusCode::OK);
        let served = headers["content-disposition"].to_str().unwrap();
        assert!(served.contains("photognp.png"), "{served}");
        assert!(
            !served.to_ascii_uppercase().contains("%E2%80%AE"),
            "{served}"
        );
    }
}

#[tokio::test]
async fn filenames_are_nfc_and_encoded_words_are_refused() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // "e" + combining acute is stored as the one character "é".
    let (status, media) = upload_png(&app, &f.token, &f.service_sid, Some("cafe%CC%81.png")).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    assert_eq!(media["filename"], "caf\u{e9}.png");
    // An RFC 2047 encoded-word ("payload.bat" in base64) is refused, not stored.
    for (query, header) in [
        (Some("%3D%3FUTF-8%3FB%3FcGF5bG9hZC5iYXQ%3D%3F%3D"), None),
        (
            None,
            Some("attachment; filename=\"=?UTF-8?Q?payload=2Ebat?=\""),
        ),
    ] {
        let path = match query {
            Some(q) => format!("{}?Filename={q}", f.uploads_path()),
            None => f.uploads_path(),
        };
        let mut request = app
            .user(&f.token, Method::POST, &path)
            .header("Content-Type", "text/plain");
        if let Some(h) = header {
            request = request.header("Content-Disposition", h);
        }
        let (status, body) = send(request.body("echo hi")).await;
        assert_names(status, &body, "Filename");
        assert!(
            body["message"].as_str().unwrap().contains("RFC 2047"),
            "{body}"
        );
    }
    assert_eq!(app.media_records(&f.service_sid).await.len(), 1);
}

/// 256 three-byte characters: at both limits of a keyed value (256 characters, 768 bytes).
fn at_key_limit() -> String {
    "\u{20ac}".repeat(256)
}

/// 193 four-byte characters: under 256 characters, over 768 bytes.
fn over_key_bytes() -> String {
    "\u{1F600}".repeat(193)
}

/// A JSON document of exactly `len` bytes.
fn attributes_of(len: usize) -> String {
    format!(r#"{{"a":"{}"}}"#, "x".repeat(len - 8))
}

#[tokio::test]
async fn channel_parameters_over_their_limits_are_400_and_at_them_accepted() {
    let app = TestApp::spawn().await;
    let service = app.create_service().await;
    let channels = format!("/v2/Services/{}/Channels", sid(&service));
    let create =
        |form: Vec<(&'static str, String)>| send(app.admin(Method::POST, &channels).form(&form));
    for (param, over) in [
        ("UniqueName", "u".repeat(257)),
        ("UniqueName", over_key_bytes()),
        ("UniqueName", "x".repeat(2000)),
        ("FriendlyName", "f".repeat(257)),
        ("Attributes", attributes_of(16 * 1024 + 1)),
    ] {
        let (status, body) = create(vec![(param, over)]).await;
        assert_names(status, &body, param);
    }
    let unique = at_key_limit();
    let (status, channel) = create(vec![
        ("UniqueName", unique.clone()),
        ("FriendlyName", "f".repeat(256)),
        ("Attributes", attributes_of(16 * 1024)),
    ])
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    assert_eq!(channel["unique_name"], unique.as_str());
    // The longest name is a working address; a longer one is simply not found.
    let by_name = format!("{channels}/{}", urlencode(&unique));
    let (status, fetched) = send(app.admin(Method::GET, &by_name)).await;
    assert_eq!((status, sid(&fetched)), (StatusCode::OK, sid(&channel)));
    for name in [over_key_bytes(), "x".repeat(2000)] {
        let path = format!("{channels}/{}", urlencode(&name));
        let (status, body) = send(app.admin(Method::GET, &path)).await;
        assert_error(status, &body, 404, Some(20404));
    }
}

/// Percent-encodes `s` for a path segment or query value (no spaces in these tests).
fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn identities_over_their_limits_are_400_for_members_and_users() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let members = format!("{}/Members", f.channel_path());
    let users = format!("{}/Users", f.service_path());
    for path in [&members, &users] {
        for over in ["i".repeat(257), over_key_bytes(), "x".repeat(2000)] {
            let (status, body) =
                send(app.admin(Method::POST, path).form(&[("Identity", over)])).await;
            assert_names(status, &body, "Identity");
        }
        let (status, created) = send(
            app.admin(Method::POST, path)
                .form(&[("Identity", at_key_limit())]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["identity"], at_key_limit().as_str());
        // Found again by that identity.
        let path = format!("{path}/{}", urlencode(&at_key_limit()));
        let (status, fetched) = send(app.admin(Method::GET, &path)).await;
        assert_eq!(status, StatusCode::OK, "{fetched}");
    }
    let (status, body) = send(
        app.admin(Method::POST, &users)
            .form(&[("Identity", "bob"), ("FriendlyName", &"f".repeat(257))]),
    )
    .await;
    assert_names(status, &body, "FriendlyName");
    let (status, user) = send(
        app.admin(Method::POST, &users)
            .form(&[("Identity", "bob"), ("FriendlyName", &"f".repeat(256))]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
}

#[tokio::test]
async fn message_parameters_over_their_limits_are_400() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    for (param, over) in [
        ("From", "i".repeat(257)),
        ("From", over_key_bytes()),
        ("Attributes", attributes_of(16 * 1024 + 1)),
    ] {
        let (status, body) = send(
            app.admin(Method::POST, &f.messages_path())
                .form(&[("Body", "hi".to_owned()), (param, over)]),
        )
        .await;
        assert_names(status, &body, param);
    }
    let (status, message) = send(app.admin(Method::POST, &f.messages_path()).form(&[
        ("Body", "hi".to_owned()),
        ("From", at_key_limit()),
        ("Attributes", attributes_of(16 * 1024)),
    ]))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["from"], at_key_limit().as_str());
}

#[tokio::test]
async fn upload_filenames_over_255_characters_are_400() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (app, f) = (&app, &f);
    let upload = |name: String| async move {
        upload_png(app, &f.token, &f.service_sid, Some(&urlencode(&name))).await
    };
    let (status, body) = upload(format!("{}.png", "\u{1F600}".repeat(252))).await;
    assert_names(status, &body, "Filename");
    let at_limit = format!("{}.png", "\u{1F600}".repeat(251));
    let (status, media) = upload(at_limit.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    assert_eq!(media["filename"], at_limit.as_str());
    assert_eq!(app.media_records(&f.service_sid).await.len(), 1);
}

/// A correctly signed token for `identity` (any text) in `service`.
fn token_for(service: &impl std::fmt::Display, identity: &str, minted: i64, ttl: i64) -> String {
    let c = credentials();
    sign_jwt(
        &json!({"alg": "HS256", "cty": TOKEN_CONTENT_TYPE, "typ": "JWT"}),
        &json!({"iss": c.api_key_sid.as_str(), "sub": c.account_sid.as_str(),
            "iat": minted, "nbf": minted, "exp": minted + ttl,
            "grants": {"identity": identity, "chat": {"service_sid": service.to_string()}}}),
        &c.api_key_secret,
    )
}

#[tokio::test]
async fn a_token_identity_over_its_limit_is_refused_and_at_it_works() {
    let app = TestApp::spawn().await;
    let service = app.create_service().await;
    let service_sid = sid(&service);
    for over in [over_key_bytes(), "x".repeat(2000)] {
        let token = token_for(&service_sid, &over, now(), 3600);
        let (status, body) = upload_png(&app, &token, &service_sid, None).await;
        assert_error(status, &body, 401, Some(20106));
    }
    // The longest identity uploads (its upload slots are a key with it).
    let token = token_for(&service_sid, &at_key_limit(), now(), 3600);
    let (status, media) = upload_png(&app, &token, &service_sid, None).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    assert_eq!(media["author"], at_key_limit().as_str());
}

#[tokio::test]
async fn axum_rejections_answer_twilio_error_bodies() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let svc = f.service_sid.to_string();
    let cases: Vec<(Method, String, u16)> = vec![
        (Method::GET, "/v2/Services/%FF".into(), 400),
        (
            Method::GET,
            format!("{}?Order=asc&Order=desc", f.messages_path()),
            400,
        ),
        (Method::GET, format!("{}?Order", f.messages_path()), 400),
        (
            Method::POST,
            format!("/v2/Services/{svc}/Channels/%FF/Messages"),
            400,
        ),
        (
            Method::POST,
            format!("/v2/Services/{svc}/Channels/%C3%28/Messages"),
            400,
        ),
        (Method::GET, format!("/v2/Services/{svc}/Users/%FF"), 400),
        (
            Method::POST,
            format!("/v1/Services/{svc}/Media/%FF/Complete"),
            400,
        ),
        (Method::GET, format!("{}/%FF", f.messages_path()), 400),
        (Method::DELETE, format!("{}/%FF", f.messages_path()), 400),
        (
            Method::POST,
            format!("{}/Members/%FF", f.channel_path()),
            400,
        ),
        (Method::GET, "/v2/Nothing/Here".into(), 404),
        (Method::PUT, "/v2/Services".into(), 405),
    ];
    for (method, path, expected) in cases {
        let (status, headers, body) = send_full(
            app.admin(method.clone(), &path)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("Body=hi"),
        )
        .await;
        let content_type = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{method} {path}: {body}"
        );
        assert_error(status, &body, expected, None);
        assert!(body["code"].is_u64(), "{method} {path}: {body}");
    }
    // The repeated parameter is named.
    let (status, body) = send(app.admin(
        Method::GET,
        &format!("{}?Order=asc&Order=desc", f.messages_path()),
    ))
    .await;
    assert_names(status, &body, "Order");
}

#[tokio::test]
async fn tokens_minted_by_a_clock_ahead_within_the_leeway_are_accepted() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let get = |token: String| send(app.user(&token, Method::GET, &f.channel_path()));
    // Minted by a clock 30 s ahead: iat and nbf 30 s in the future.
    let (status, body) = get(token_for(&f.service_sid, "alice", now() + 30, 3600)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Two minutes ahead is beyond the 60 s leeway.
    let (status, body) = get(token_for(&f.service_sid, "alice", now() + 120, 3600)).await;
    assert_error(status, &body, 401, Some(20105));
    // No leeway after expiry: expired a second ago is refused at once.
    let (status, body) = get(token_for(&f.service_sid, "alice", now() - 3601, 3600)).await;
    assert_error(status, &body, 401, Some(20104));
}
