//! Replays every sample event in `events/` against the app: each must deserialize as
//! Lambda delivers it (HTTP API payload v2, base64 form bodies), reach a route, and
//! answer with the status its file name ends with. Placeholder SIDs are mapped to
//! freshly seeded records and tokens re-minted with the test key.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{credentials, send, sid, TestApp};
use serde_json::Value;

fn placeholder(prefix: &str, n: u32) -> String {
    format!("{prefix}{n:032x}")
}

/// Placeholder → real, for one seeded service.
struct Seeded {
    map: Vec<(String, String)>,
    service_sid: String,
}

impl Seeded {
    fn apply(&self, text: &str) -> String {
        self.map
            .iter()
            .fold(text.to_owned(), |t, (from, to)| t.replace(from, to))
    }
}

/// The records the events name: a channel with alice, bob and an agent (channel
/// admin), alice's ready upload, a message by each of alice and bob.
async fn seed(app: &TestApp) -> Seeded {
    let f = app.service_with_member("alice").await;
    let (bob, bob_token) = app.add_member(&f, "bob", None).await;
    let admin_role = f.service["default_channel_creator_role_sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (agent, _) = app.add_member(&f, "agent", Some(&admin_role)).await;
    let media = app
        .ready_media(&f.service_sid, "alice", "image/png", Some("a.png"), b"png")
        .await;
    let mut messages = Vec::new();
    for token in [&f.token, &bob_token] {
        let (status, m) = send(
            app.user(token, Method::POST, &f.messages_path())
                .form(&[("Body", "seed")]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        messages.push(sid(&m));
    }
    let other = app.create_service().await;
    Seeded {
        map: vec![
            (placeholder("IS", 1), f.service_sid.clone()),
            (placeholder("CH", 1), f.channel_sid.clone()),
            (placeholder("ME", 1), media.sid.to_string()),
            (placeholder("IM", 1), messages[0].clone()),
            (placeholder("IM", 2), messages[1].clone()),
            (placeholder("MB", 1), sid(&f.member)),
            (placeholder("MB", 2), sid(&bob)),
            (placeholder("MB", 3), sid(&agent)),
            (placeholder("RL", 1), admin_role),
            (
                placeholder("RL", 2),
                other["default_channel_role_sid"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
        ],
        service_sid: f.service_sid.clone(),
    }
}

/// The identity an event's token was minted for.
fn token_identity(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["grants"]["identity"].as_str().unwrap().to_owned()
}

fn fresh_token(app: &TestApp, seeded: &Seeded, old: &str) -> String {
    app.token(&seeded.service_sid.parse().unwrap(), &token_identity(old))
}

fn event_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).expect("events/ exists") {
        let dir = dir.unwrap().path();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "json") {
                files.push(file);
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn every_sample_event_is_served_with_the_status_in_its_name() {
    let app = TestApp::spawn().await;
    let files = event_files();
    assert!(files.len() >= 24, "{files:?}");
    for file in files {
        let name = file.file_stem().unwrap().to_str().unwrap().to_owned();
        let expected: u16 = name
            .rsplit('-')
            .next()
            .unwrap()
            .parse()
            .expect("status suffix");
        let text = std::fs::read_to_string(&file).unwrap();
        let raw: Value = serde_json::from_str(&text).unwrap();

        // As Lambda hands it to the function.
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(request.uri().path(), raw["rawPath"], "{name}");
        assert_eq!(
            request.method().as_str(),
            raw["requestContext"]["http"]["method"]
        );
        let body: Vec<u8> = request.body().to_vec();
        if raw["isBase64Encoded"] == true {
            assert_eq!(
                body,
                STANDARD.decode(raw["body"].as_str().unwrap()).unwrap(),
                "{name}"
            );
        }
        for (k, v) in raw["pathParameters"].as_object().into_iter().flatten() {
            assert!(
                raw["rawPath"]
                    .as_str()
                    .unwrap()
                    .contains(v.as_str().unwrap()),
                "{name}: {k}"
            );
        }

        // Replayed against seeded data, with this run's credentials.
        let seeded = seed(&app).await;
        let path = seeded.apply(request.uri().path());
        let mut req = app.anon(request.method().clone(), &path);
        for (header, value) in request.headers() {
            let value = value.to_str().unwrap();
            match header.as_str() {
                "host" | "content-length" => continue,
                "authorization" => {
                    let c = credentials();
                    req = req.basic_auth(c.account_sid.as_str(), Some(&c.auth_token));
                }
                "x-twilio-token" => {
                    req = req.header(header.as_str(), fresh_token(&app, &seeded, value));
                }
                _ => req = req.header(header.as_str(), value),
            }
        }
        let form: Vec<(String, String)> = form_urlencoded::parse(&body)
            .map(|(k, v)| {
                let v = if k == "Token" {
                    fresh_token(&app, &seeded, &v)
                } else {
                    seeded.apply(&v)
                };
                (k.into_owned(), v)
            })
            .collect();
        if !body.is_empty() {
            req = req.body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&form)
                    .finish(),
            );
        }
        let (status, response) = send(req).await;
        assert_eq!(status.as_u16(), expected, "{name}: {response}");
        if !status.is_success() && !status.is_redirection() {
            assert!(
                !response["message"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("The requested resource"),
                "{name} reached no route: {response}"
            );
        }
    }
}
