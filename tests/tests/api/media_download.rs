//! get-media: who may read a media, temporary download URLs against the real S3
//! server (content, headers, tampering, expiry) and the DynamoDB call budget.

use std::time::Duration;

use chat_media::config::Settings;
use chat_media::model::{Media, MediaStatus};
use chat_media::sid::MediaSid;
use chat_media_tests::reqwest::{header, Method, StatusCode};
use chat_media_tests::{assert_error, aws_options, dynamodb_calls, send, send_full, sid, TestApp};
use serde_json::Value;

/// A plain GET of a presigned URL, as a browser would make it.
async fn download(url: &str) -> (StatusCode, header::HeaderMap, Vec<u8>) {
    let resp = chat_media_tests::reqwest::get(url)
        .await
        .expect("S3 answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn temporary_url(media_json: &Value) -> String {
    media_json["links"]["content_direct_temporary"]
        .as_str()
        .unwrap_or_else(|| panic!("a temporary URL in {media_json}"))
        .to_owned()
}

/// The URL re-encoded, with the disposition override replaced if asked.
fn with_disposition(url: &str, disposition: Option<&str>) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match (k.as_ref(), disposition) {
            ("response-content-disposition", Some(d)) => out.append_pair(&k, d),
            _ => out.append_pair(&k, &v),
        };
    }
    format!("{base}?{}", out.finish())
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn members_get_media_json_and_a_working_temporary_url() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (_, bob) = app.add_member(&f, "bob", None).await;
    let bytes = b"\x89PNG\r\n\x1a\nnot really a png".to_vec();
    let media = app
        .ready_media(
            &f.service_sid,
            "alice",
            "image/png",
            Some("cat.png"),
            &bytes,
        )
        .await;
    let message = app.send_media(&f, &f.token, &media).await;

    let (status, headers, json) =
        send_full(app.user(&bob, Method::GET, &f.media_path(&media.sid))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-store");
    assert_eq!(json["sid"], media.sid.as_str());
    assert_eq!(json["service_sid"], f.service_sid.as_str());
    assert_eq!(json["message_sid"], message["sid"]);
    assert_eq!(json["channel_sid"], f.channel_sid.as_str());
    assert_eq!(json["content_type"], "image/png");
    assert_eq!(json["filename"], "cat.png");
    assert_eq!(json["size"], bytes.len());
    assert_eq!(json["status"], "ready");
    assert_eq!(json["author"], "alice");
    assert_eq!(json["url"], app.url(&f.media_path(&media.sid)));
    assert_eq!(
        json["links"]["content"],
        app.url(&format!("{}/Content", f.media_path(&media.sid)))
    );

    let url = temporary_url(&json);
    assert_eq!(query_param(&url, "X-Amz-Expires").as_deref(), Some("300"));
    assert_eq!(
        query_param(&url, "response-content-type").as_deref(),
        Some("image/png")
    );
    let (status, headers, body) = download(&url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);
    assert_eq!(headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "inline; filename=\"cat.png\""
    );

    // .../Content redirects to a URL that serves the same bytes.
    let (status, headers, _) = send_full(app.user(
        &bob,
        Method::GET,
        &format!("{}/Content", f.media_path(&media.sid)),
    ))
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-store");
    let location = headers[header::LOCATION].to_str().unwrap();
    let (status, _, body) = download(location).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, bytes);
}

#[tokio::test]
async fn who_may_read_a_media() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (_, bob) = app.add_member(&f, "bob", None).await;
    let blocked_role = f.role("blocked_channel_role_sid");
    let (_, blocked) = app.add_member(&f, "blocked", Some(&blocked_role)).await;
    let outsider = app.token(&f.service_sid, "outsider");
    let unbound = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"u")
        .await;
    let bound = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"b")
        .await;
    app.send_media(&f, &f.token, &bound).await;
    let other = app.service_with_member("alice").await;
    let foreign = app
        .ready_media(&other.service_sid, "alice", "image/png", None, b"f")
        .await;

    let get = |token: Option<&str>, path: String| {
        let req = match token {
            Some(t) => app.user(t, Method::GET, &path),
            None => app.admin(Method::GET, &path),
        };
        send(req)
    };

    // Allowed: admins; the uploader while unbound; members of the message's
    // channel, blocked ones included (a block stops sending, not reading).
    for (token, media) in [
        (None, &unbound),
        (None, &bound),
        (Some(f.token.as_str()), &unbound),
        (Some(f.token.as_str()), &bound),
        (Some(bob.as_str()), &bound),
        (Some(blocked.as_str()), &bound),
    ] {
        for suffix in ["", "/Content"] {
            let (status, body) = get(token, format!("{}{suffix}", f.media_path(&media.sid))).await;
            assert!(
                status == StatusCode::OK || status == StatusCode::FOUND,
                "{status} {body}"
            );
        }
    }

    // Refused within the service → 403 naming why, on both routes alike.
    for (token, media, code) in [
        (bob.as_str(), &unbound, 20403),
        (outsider.as_str(), &unbound, 20403),
        (outsider.as_str(), &bound, 50400),
    ] {
        for suffix in ["", "/Content"] {
            let (status, body) =
                get(Some(token), format!("{}{suffix}", f.media_path(&media.sid))).await;
            assert_error(status, &body, 403, Some(code));
            assert!(body.get("links").is_none());
        }
    }

    // Another service's media does not exist here (404), for admins too; an
    // unknown SID is 404; a token of another service is 403; a bad SID is 400.
    let (status, body) = get(None, f.media_path(&foreign.sid)).await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = get(Some(&f.token), f.media_path(&foreign.sid)).await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = get(Some(&f.token), f.media_path(&MediaSid::generate())).await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = get(Some(&other.token), f.media_path(&bound.sid)).await;
    assert_error(status, &body, 403, None);
    let (status, body) = get(None, format!("/v1/Services/{}/Media/ME12", f.service_sid)).await;
    assert_error(status, &body, 400, Some(20001));
    let (status, body) = send(app.anon(Method::GET, &f.media_path(&bound.sid))).await;
    assert_error(status, &body, 401, None);
}

#[tokio::test]
async fn media_that_is_not_ready_gets_no_url() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    for status in [MediaStatus::Scanning, MediaStatus::Rejected] {
        let media = app
            .media_with_status(&f.service_sid, "alice", "image/png", None, b"x", status)
            .await;
        let (code, json) = send(app.user(&f.token, Method::GET, &f.media_path(&media.sid))).await;
        assert_eq!(code, StatusCode::OK, "{json}");
        assert_eq!(json["status"], status.as_str());
        assert_eq!(json["links"]["content_direct_temporary"], Value::Null);
        let (code, body) = send(app.user(
            &f.token,
            Method::GET,
            &format!("{}/Content", f.media_path(&media.sid)),
        ))
        .await;
        assert_error(code, &body, 409, None);
    }
}

#[tokio::test]
async fn active_content_downloads_as_an_attachment_and_overrides_cannot_be_tampered_with() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let cases = [
        (
            "text/html",
            Some("page.html"),
            "attachment; filename=\"page.html\"",
        ),
        (
            "image/svg+xml",
            Some("logo.svg"),
            "attachment; filename=\"logo.svg\"",
        ),
        (
            "application/javascript",
            None,
            "attachment; filename=\"{sid}\"",
        ),
        // A name can carry no line break (refused at upload, and no stored Filename
        // has one); quotes and separators cannot close or add a parameter.
        (
            "application/pdf",
            Some("Zoë\"; X-Evil: 1.pdf"),
            "inline; filename=\"Zo_'_ X-Evil: 1.pdf\"; filename*=UTF-8''Zo%C3%AB%27%3B%20X-Evil%3A%201.pdf",
        ),
    ];
    for (content_type, filename, expected) in cases {
        let media = app
            .ready_media(
                &f.service_sid,
                "alice",
                content_type,
                filename,
                b"<script>alert(1)</script>",
            )
            .await;
        let (_, json) = send(app.user(&f.token, Method::GET, &f.media_path(&media.sid))).await;
        let url = temporary_url(&json);
        let (status, headers, _) = download(&url).await;
        assert_eq!(status, StatusCode::OK);
        let expected = expected.replace("{sid}", media.sid.as_str());
        assert_eq!(headers[header::CONTENT_DISPOSITION], expected.as_str());
        assert_eq!(headers[header::CONTENT_TYPE], content_type);

        // The overrides are signed: turning the attachment inline breaks the URL
        // (re-encoding it unchanged does not).
        assert_eq!(
            download(&with_disposition(&url, None)).await.0,
            StatusCode::OK
        );
        let (status, _, body) = download(&with_disposition(&url, Some("inline"))).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[tokio::test]
async fn a_download_url_stops_working_after_its_lifetime() {
    let settings = Settings {
        download_url_ttl: Duration::from_secs(3),
        ..Settings::default()
    };
    let app = TestApp::spawn_with(aws_options(), settings).await;
    let f = app.service_with_member("alice").await;
    let media = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"short-lived")
        .await;
    let (_, json) = send(app.user(&f.token, Method::GET, &f.media_path(&media.sid))).await;
    let url = temporary_url(&json);
    assert_eq!(query_param(&url, "X-Amz-Expires").as_deref(), Some("3"));
    let (status, _, body) = download(&url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"short-lived");

    tokio::time::sleep(Duration::from_millis(4500)).await;
    let (status, _, body) = download(&url).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(!String::from_utf8_lossy(&body).contains("short-lived"));
    // A fresh request gets a fresh URL.
    let (_, json) = send(app.user(&f.token, Method::GET, &f.media_path(&media.sid))).await;
    let (status, _, _) = download(&temporary_url(&json)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn get_media_stays_within_its_dynamodb_call_budget() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (_, bob) = app.add_member(&f, "bob", None).await;
    let unbound = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"u")
        .await;
    let bound = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"b")
        .await;
    let message = app.send_media(&f, &f.token, &bound).await;
    assert_eq!(message["media"]["sid"], bound.sid.as_str());

    let cases = [
        // A member reading an attached media: BatchGetItem + GetItem (membership).
        (app.user(&bob, Method::GET, &f.media_path(&bound.sid)), 2),
        (
            app.user(
                &bob,
                Method::GET,
                &format!("{}/Content", f.media_path(&bound.sid)),
            ),
            2,
        ),
        // The uploader of an unbound media, and admins: the BatchGetItem only.
        (
            app.user(&f.token, Method::GET, &f.media_path(&unbound.sid)),
            1,
        ),
        (app.admin(Method::GET, &f.media_path(&bound.sid)), 1),
    ];
    for (req, expected) in cases {
        let (status, headers, body) = send_full(req).await;
        assert!(
            status.is_success() || status.is_redirection(),
            "{status} {body}"
        );
        assert_eq!(dynamodb_calls(&headers), expected, "{body}");
    }
    assert_eq!(sid(&message), bound_message_sid(&app, &bound).await);
}

async fn bound_message_sid(app: &TestApp, media: &Media) -> String {
    let stored = app.media_record(&media.sid).await.unwrap();
    stored.message_sid.unwrap().to_string()
}
