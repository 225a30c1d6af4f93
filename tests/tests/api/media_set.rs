//! `POST /v1/Services/{ServiceSid}/MediaSet` over HTTP: each entry answers as a
//! single media GET would (its own code, in the order asked), the request itself
//! succeeds; the `onMediaDownload` pre-hook decides per entry; the list is bounded.
//! (The MCS clients' own calls are in `twilio_clients.rs`.)

use std::sync::{Arc, Mutex};

use chat_media::limits::MEDIA_SET_ENTRIES;
use chat_media::model::Media;
use chat_media_tests::hooks::{HookReceiver, Reply};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, send, Fixture, TestApp, PNG};
use serde_json::{json, Value};

fn set_path(f: &Fixture) -> String {
    format!("/v1/Services/{}/MediaSet", f.service_sid)
}

fn get(sids: &[&str]) -> Value {
    let list: Vec<Value> = sids.iter().map(|s| json!({"media_sid": s})).collect();
    json!({"command": "get", "list": list})
}

async fn media_set(app: &TestApp, token: &str, f: &Fixture, body: &Value) -> (StatusCode, Value) {
    send(app.user(token, Method::POST, &set_path(f)).json(body)).await
}

async fn ready(app: &TestApp, f: &Fixture, author: &str) -> Media {
    app.ready_media(&f.service_sid, author, "image/png", Some("a.png"), PNG)
        .await
}

#[tokio::test]
async fn each_entry_is_authorized_as_a_single_get_with_its_own_code() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let bob = app.join(&f, "bob", None).await;
    // Sent to alice's channel: she may read it.
    let sent = ready(&app, &f, "bob").await;
    app.send_media(&f, &bob.token, &sent).await;
    // Carol's upload, attached to nothing: only carol may read it.
    let unattached = ready(&app, &f, "carol").await;
    // Sent to a channel alice is not in.
    let dave = app
        .channel_with_member(&f.service, &[("FriendlyName", "elsewhere")], "dave")
        .await;
    let elsewhere = ready(&app, &f, "dave").await;
    app.send_media(&dave, &dave.token, &elsewhere).await;
    let g = app.service_with_member("dave").await;
    // Of another service.
    let foreign = ready(&app, &g, "dave").await;
    let missing = "ME0123456789abcdef0123456789abcdef";
    let asked = [
        sent.sid.as_str(),
        unattached.sid.as_str(),
        elsewhere.sid.as_str(),
        foreign.sid.as_str(),
        missing,
        "not-a-sid",
    ];
    let (status, body) = media_set(&app, &f.token, &f, &get(&asked)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries = body.as_array().unwrap_or_else(|| panic!("{body}"));
    let codes: Vec<&Value> = entries.iter().map(|e| &e["code"]).collect();
    assert_eq!(codes, [200, 403, 403, 404, 404, 400], "{body}");
    let sids: Vec<&str> = entries
        .iter()
        .map(|e| e["media_record"]["sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, asked, "{body}");
    // The readable one is the single GET's Media, with its download URL.
    let (_, single) = send(app.user(&f.token, Method::GET, &f.media_path(&sent.sid))).await;
    let record = &entries[0]["media_record"];
    assert_eq!(record["size"], single["size"]);
    assert_eq!(record["url"], single["url"]);
    let url = record["links"]["content_direct_temporary"]
        .as_str()
        .unwrap_or_else(|| panic!("{record}"));
    let bytes = chat_media_tests::reqwest::get(url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), PNG);
    // A refusal is Twilio's error of the single GET, and shows nothing of the media.
    assert_eq!(entries[2]["error"]["code"], 50400, "{body}");
    assert_eq!(entries[1]["error"]["status"], 403, "{body}");
    for e in &entries[1..] {
        assert_eq!(e["media_record"].as_object().map(|o| o.len()), Some(1));
        assert!(!e.to_string().contains("X-Amz-Signature"), "{e}");
    }
    // An admin reads all of the service's, not another service's.
    let admin = send(app.admin(Method::POST, &set_path(&f)).json(&get(&asked))).await;
    let codes: Vec<&Value> = admin
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["code"])
        .collect();
    assert_eq!(codes, [200, 200, 200, 404, 404, 400], "{}", admin.1);
}

#[tokio::test]
async fn the_download_pre_hook_decides_each_entry() {
    let app = TestApp::spawn().await;
    // The hook refuses the media named in `refused` (filled below).
    let refused: Arc<Mutex<Vec<String>>> = Arc::default();
    let list = refused.clone();
    let hook = HookReceiver::start(move |r, _| {
        let no = r
            .param("MediaSid")
            .is_some_and(|sid| list.lock().unwrap().iter().any(|x| x == sid));
        if no {
            Reply::json(403, json!({"reason": "not this one"}))
        } else {
            Reply::ok()
        }
    })
    .await;
    let f = app.service_with_member("alice").await;
    let (status, body) = send(app.admin(Method::POST, &f.service_path()).form(&[
        ("PreWebhookUrl", hook.url("/media").as_str()),
        ("WebhookFilters", "onMediaDownload"),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut media = Vec::new();
    while media.len() < 4 {
        media.push(ready(&app, &f, "alice").await);
    }
    let sids: Vec<&str> = media.iter().map(|m| m.sid.as_str()).collect();
    // The first and third.
    refused
        .lock()
        .unwrap()
        .extend([sids[0].to_owned(), sids[2].to_owned()]);
    let (status, body) = media_set(&app, &f.token, &f, &get(&sids)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (i, entry) in body.as_array().unwrap().iter().enumerate() {
        let refused = i % 2 == 0;
        assert_eq!(entry["code"], if refused { 403 } else { 200 }, "{entry}");
        assert_eq!(
            entry["media_record"]["links"]["content_direct_temporary"].is_string(),
            !refused,
            "{entry}"
        );
    }
    let asked: Vec<String> = hook
        .requests()
        .iter()
        .filter(|r| r.param("EventType") == Some("onMediaDownload"))
        .map(|r| r.param("MediaSid").unwrap().to_owned())
        .collect();
    assert_eq!(asked.len(), sids.len(), "one pre-event per entry");
}

#[tokio::test]
async fn malformed_or_oversized_sets_are_refused_whole() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let m = ready(&app, &f, "alice").await;
    let too_many: Vec<&str> = vec![m.sid.as_str(); MEDIA_SET_ENTRIES + 1];
    let (status, body) = media_set(&app, &f.token, &f, &get(&too_many)).await;
    assert_error(status, &body, 400, Some(20001));
    assert!(body["message"].as_str().unwrap().contains("100"), "{body}");
    let exactly: Vec<&str> = vec![m.sid.as_str(); MEDIA_SET_ENTRIES];
    let (status, body) = media_set(&app, &f.token, &f, &get(&exactly)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(MEDIA_SET_ENTRIES));
    for bad in [
        json!({"command": "delete", "list": []}),
        json!({"list": []}),
        json!({"command": "get", "list": [{"sid": m.sid}]}),
        json!([1, 2]),
    ] {
        let (status, body) = media_set(&app, &f.token, &f, &bad).await;
        assert_error(status, &body, 400, Some(20001));
    }
    let (status, body) = send(
        app.user(&f.token, Method::POST, &set_path(&f))
            .header("Content-Type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    let (status, body) = media_set(&app, &f.token, &f, &get(&[])).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
}
