//! Twilio's inbound messaging webhook and uploads by URL, against media hosts on
//! 127.0.0.1 (the stand-in for Twilio's media storage): webhooks signed by
//! twilio-python's `RequestValidator`, media fetched, checked and scanned by the
//! real clamd, messages posted in order; duplicates, bad signatures, SSRF
//! attempts, slow and missing media; the answer time.
//!
//! Every test holds `no_sweeps()` while its jobs run (a sweep of another test
//! would resume them with that test's allow list); the crash test sweeps itself.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use chat_media::config::Settings;
use chat_media::fetch::FetchTimeouts;
use chat_media::model::{InboundJob, InboundKind, InboundMedia, InboundStatus};
use chat_media::sid::ServiceSid;
use chat_media_tests::clamd::{eicar, shared_scanner};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{
    credentials, media_path, no_sweeps, png_like, send, sid, sweeping, twilio_python, TestApp,
};
use serde_json::{json, Value};

/// Size of the video the media host serves: more than two S3 parts.
const VIDEO_BYTES: usize = 20 * 1024 * 1024;

/// Requests a media host received: path and `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

#[derive(Clone)]
struct Host {
    port: u16,
    other: Option<SocketAddr>,
    seen: Seen,
}

/// A media host on 127.0.0.1.
struct MediaHost {
    addr: SocketAddr,
    seen: Seen,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MediaHost {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MediaHost {
    async fn start(other: Option<SocketAddr>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        let host = Host {
            port: addr.port(),
            other,
            seen: seen.clone(),
        };
        let app = axum::Router::new().fallback(serve).with_state(host);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, server }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The `Authorization` headers of the requests for `path`.
    fn auth_of(&self, path: &str) -> Vec<Option<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, a)| a.clone())
            .collect()
    }

    fn requests_for(&self, path: &str) -> usize {
        self.auth_of(path).len()
    }
}

/// The first bytes of an MP4 (`ftyp` box, brand `isom`), then zeros.
fn mp4_head() -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0x20];
    v.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2avc1mp41");
    v.resize(64 * 1024, 0);
    v
}

fn redirect(to: String) -> Response {
    (AxStatus::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn serve(State(host): State<Host>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    host.seen.lock().unwrap().push((path.clone(), auth));
    let port = host.port;
    match path.as_str() {
        p if p.starts_with("/png") => {
            ([(header::CONTENT_TYPE, "image/png")], png_like(4096)).into_response()
        }
        "/video" => {
            // Streamed in 1 MiB chunks: the fetcher never sees it whole.
            let chunks = (0..VIDEO_BYTES / (1024 * 1024)).map(|i| {
                let mut chunk = vec![0u8; 1024 * 1024];
                if i == 0 {
                    let head = mp4_head();
                    chunk[..head.len()].copy_from_slice(&head);
                }
                Ok::<_, std::io::Error>(bytes::Bytes::from(chunk))
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "video/mp4")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap()
        }
        "/eicar" => ([(header::CONTENT_TYPE, "text/plain")], eicar()).into_response(),
        "/missing" => AxStatus::NOT_FOUND.into_response(),
        "/slow" => {
            // The headers and a first chunk, then nothing.
            let body = futures::stream::unfold(0, |n| async move {
                if n > 0 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0x89u8; 100])),
                    n + 1,
                ))
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "image/png")
                .body(Body::from_stream(body))
                .unwrap()
        }
        "/to-localhost" => redirect(format!("https://localhost:{port}/png")),
        "/to-metadata" => redirect("https://169.254.169.254/latest/meta-data/".into()),
        "/to-unlisted" => redirect(format!("http://127.0.0.2:{port}/png")),
        "/to-other" => redirect(format!("http://{}/png-other", host.other.unwrap())),
        "/loop" => redirect("/loop".into()),
        _ => AxStatus::NOT_FOUND.into_response(),
    }
}

/// An app scanning with the test clamd, fetching from `hosts` (exactly), from
/// `localhost` and `169.254.169.254` over https (allowed names whose addresses
/// are internal), with a 1 s stall timeout.
async fn app_for(hosts: &[&MediaHost]) -> TestApp {
    let mut allowed: Vec<String> = hosts.iter().map(|h| format!("http://{}", h.addr)).collect();
    allowed.push("localhost".into());
    allowed.push("169.254.169.254".into());
    let settings = Settings {
        ingest_allowed_hosts: allowed.join(",").parse().unwrap(),
        ingest_timeouts: FetchTimeouts {
            connect: Duration::from_secs(2),
            stall: Duration::from_secs(1),
        },
        ..Settings::default()
    };
    TestApp::spawn_scanning_with(settings, shared_scanner()).await
}

fn message_sid() -> String {
    format!("MM{}", &ServiceSid::generate().as_str()[2..])
}

fn sender() -> String {
    format!("whatsapp:+1415{:07}", rand_digits())
}

fn rand_digits() -> u32 {
    (chat_media_tests::now() as u32 ^ std::process::id()).wrapping_mul(2654435761) % 10_000_000
        + COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn webhook_path(service: &str) -> String {
    format!("/v2/Services/{service}/InboundMessages")
}

/// The webhook's form, as Twilio Messaging sends it.
fn webhook_form(
    sid: &str,
    from: &str,
    body: Option<&str>,
    media: &[(String, &str)],
) -> Vec<(String, String)> {
    let mut p = vec![
        ("MessageSid".to_owned(), sid.to_owned()),
        ("SmsMessageSid".to_owned(), sid.to_owned()),
        (
            "AccountSid".to_owned(),
            credentials().account_sid.to_string(),
        ),
        ("From".to_owned(), from.to_owned()),
        ("To".to_owned(), "whatsapp:+14155238886".to_owned()),
        ("ProfileName".to_owned(), "Ada".to_owned()),
        ("NumMedia".to_owned(), media.len().to_string()),
    ];
    if let Some(body) = body {
        p.push(("Body".to_owned(), body.to_owned()));
    }
    for (i, (url, t)) in media.iter().enumerate() {
        p.push((format!("MediaUrl{i}"), url.clone()));
        p.push((format!("MediaContentType{i}"), (*t).to_owned()));
    }
    p
}

/// Twilio's signature of a POST to `url` with `params`, computed by twilio-python.
fn twilio_signature(url: &str, params: &[(String, String)]) -> String {
    let wire: Vec<[&String; 2]> = params.iter().map(|(k, v)| [k, v]).collect();
    let answer = twilio_python(
        "validate.py",
        &json!({"op": "sign", "token": credentials().auth_token, "url": url, "params": wire}),
    );
    answer["signature"].as_str().unwrap().to_owned()
}

/// Posts a webhook signed for `path_and_query`; returns status, body and the time to the answer.
async fn deliver(
    app: &TestApp,
    path_and_query: &str,
    params: &[(String, String)],
    signature: Option<String>,
) -> (StatusCode, String, Duration) {
    let signature = signature.unwrap_or_else(|| twilio_signature(&app.url(path_and_query), params));
    let started = Instant::now();
    let response = app
        .anon(Method::POST, path_and_query)
        .header("X-Twilio-Signature", signature)
        .form(params)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    if status == StatusCode::OK {
        assert_eq!(content_type.as_deref(), Some("text/xml"));
        assert!(body.ends_with("<Response/>"), "{body}");
    }
    (status, body, took)
}

/// The job's status once it is no longer pending.
async fn settled(app: &TestApp, service: &str, key: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let (status, job) =
            send(app.admin(Method::GET, &format!("{}/{key}", webhook_path(service)))).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if job["status"] != "pending" {
            return job;
        }
        assert!(Instant::now() < deadline, "job still pending: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn messages(app: &TestApp, service: &str, channel: &str) -> Vec<Value> {
    let (status, page) = send(app.admin(
        Method::GET,
        &format!("/v2/Services/{service}/Channels/{channel}/Messages?PageSize=100"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["messages"].as_array().unwrap().clone()
}

fn attributes(message: &Value) -> Value {
    serde_json::from_str(message["attributes"].as_str().unwrap()).unwrap()
}

/// The bytes behind a media, through its download redirect.
async fn download(app: &TestApp, service: &str, media: &str) -> Vec<u8> {
    let response = app
        .admin(
            Method::GET,
            &format!("{}/{media}/Content", media_path(&service)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let url = response.headers()["location"].to_str().unwrap().to_owned();
    reqwest_get(&url).await
}

async fn reqwest_get(url: &str) -> Vec<u8> {
    let response = chat_media_tests::reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap().to_vec()
}

fn basic() -> String {
    use base64::Engine as _;
    let c = credentials();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", c.account_sid, c.auth_token))
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test]
async fn a_whatsapp_message_with_media_becomes_ordered_messages_with_the_media_bound() {
    let _guard = no_sweeps().await;
    let host = MediaHost::start(None).await;
    let app = app_for(&[&host]).await;
    let service = sid(&app.create_service().await);
    let from = sender();
    let key = message_sid();
    let params = webhook_form(
        &key,
        &from,
        Some("Here are the photos"),
        &[
            (host.url("/png"), "image/png"),
            (host.url("/video"), "video/mp4"),
            (host.url("/eicar"), "text/plain"),
            (host.url("/missing"), "image/jpeg"),
        ],
    );
    let path = webhook_path(&service);
    let (status, _, took) = deliver(&app, &path, &params, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(took < Duration::from_secs(2), "answered in {took:?}");

    let job = settled(&app, &service, &key).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["attempts"], 1);
    let outcomes: Vec<&str> = job["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ready", "ready", "refused", "refused"], "{job}");

    // The channel is the sender's, found by its unique name, and the sender is in it.
    let channel = job["channel_sid"].as_str().unwrap().to_owned();
    let (status, ch) = send(app.admin(
        Method::GET,
        &format!("/v2/Services/{service}/Channels/{channel}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ch["unique_name"], from.as_str());
    assert_eq!(ch["friendly_name"], "Ada");
    let (_, members) = send(app.admin(
        Method::GET,
        &format!("/v2/Services/{service}/Channels/{channel}/Members"),
    ))
    .await;
    let identities: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["identity"].as_str().unwrap())
        .collect();
    assert_eq!(identities, [from.as_str()]);

    // Text, then one message per media, in the order they arrived.
    let list = messages(&app, &service, &channel).await;
    assert_eq!(list.len(), 5, "{list:#?}");
    for (i, m) in list.iter().enumerate() {
        assert_eq!(m["index"], i as u64);
        assert_eq!(m["from"], from.as_str());
        assert_eq!(attributes(m)["inbound_message_sid"], key.as_str());
    }
    assert_eq!(list[0]["body"], "Here are the photos");
    assert_eq!(list[0]["type"], "text");
    for (m, index, content_type, size) in [
        (&list[1], 0, "image/png", 4096),
        (&list[2], 1, "video/mp4", VIDEO_BYTES),
    ] {
        assert_eq!(m["type"], "media", "{m}");
        assert_eq!(attributes(m)["media_index"], index);
        assert_eq!(attributes(m)["media_status"], "ready");
        assert_eq!(m["media"]["content_type"], content_type);
        assert_eq!(m["media"]["size"], size as u64);
    }
    let png = download(&app, &service, list[1]["media"]["sid"].as_str().unwrap()).await;
    assert_eq!(png, png_like(4096));
    let video = download(&app, &service, list[2]["media"]["sid"].as_str().unwrap()).await;
    assert_eq!(video.len(), VIDEO_BYTES);
    assert_eq!(&video[..64], &mp4_head()[..64]);

    // EICAR is a "refused" message, not a media; its object is gone.
    let infected = attributes(&list[3]);
    assert_eq!(list[3]["type"], "text");
    assert_eq!(infected["media_index"], 2);
    assert_eq!(infected["media_status"], "refused");
    assert!(
        infected["media_reason"]
            .as_str()
            .unwrap()
            .contains("infected"),
        "{infected}"
    );
    let eicar_media = InboundJob::media_sid_for(&service.parse().unwrap(), &key, 2);
    let record = app.record(&eicar_media).await;
    assert_eq!(record.status.as_str(), "rejected");
    assert!(!app.object_exists(&record.object_key).await);
    // A 404 is said so.
    let missing = attributes(&list[4]);
    assert_eq!(missing["media_status"], "refused");
    assert!(
        missing["media_reason"].as_str().unwrap().contains("404"),
        "{missing}"
    );
    assert!(list[4]["body"]
        .as_str()
        .unwrap()
        .contains("could not be delivered"));

    // Twilio's media URLs need the account's credentials: sent to the media host.
    assert_eq!(host.auth_of("/png"), [Some(basic())]);

    // A repeated delivery (Twilio retries) answers the same and adds nothing.
    let (status, _, took) = deliver(&app, &path, &params, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(took < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(messages(&app, &service, &channel).await.len(), 5);
    assert_eq!(host.requests_for("/png"), 1, "fetched once");
    assert_eq!(settled(&app, &service, &key).await["attempts"], 1);

    // The same sender again: the same channel, no second membership.
    let second = message_sid();
    let params = webhook_form(&second, &from, Some("and one more"), &[]);
    assert_eq!(deliver(&app, &path, &params, None).await.0, StatusCode::OK);
    let job = settled(&app, &service, &second).await;
    assert_eq!(job["channel_sid"], channel.as_str());
    let list = messages(&app, &service, &channel).await;
    assert_eq!(list.len(), 6);
    assert_eq!(list[5]["body"], "and one more");
}

#[tokio::test]
async fn a_missing_or_wrong_signature_is_403_and_fetches_nothing() {
    let _guard = no_sweeps().await;
    let host = MediaHost::start(None).await;
    let app = app_for(&[&host]).await;
    let service = sid(&app.create_service().await);
    let key = message_sid();
    let path = webhook_path(&service);
    let params = webhook_form(
        &key,
        &sender(),
        Some("hi"),
        &[(host.url("/png-unsigned"), "image/png")],
    );
    let good = twilio_signature(&app.url(&path), &params);

    // No signature, another token's, another URL's, a changed form.
    let other_token = {
        let wire: Vec<[&String; 2]> = params.iter().map(|(k, v)| [k, v]).collect();
        twilio_python(
            "validate.py",
            &json!({"op": "sign", "token": "another-token", "url": app.url(&path), "params": wire}),
        )["signature"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let other_url = twilio_signature(&app.url(&format!("{path}?ChannelSid=elsewhere")), &params);
    let no_signature = app.anon(Method::POST, &path).form(&params);
    let (status, body) = send(no_signature).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["status"], 403);
    for signature in [other_token, other_url, "".into(), "garbage".into()] {
        let (status, body, _) = deliver(&app, &path, &params, Some(signature)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let mut changed = params.clone();
    changed.push(("MediaUrl1".into(), host.url("/png-unsigned")));
    let (status, _, _) = deliver(&app, &path, &changed, Some(good.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A user token is no substitute for Twilio's signature.
    let token = app.token(&service.parse().unwrap(), "alice");
    let (status, _) = send(app.user(&token, Method::POST, &path).form(&params)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(host.requests_for("/png-unsigned"), 0, "nothing fetched");
    let (status, _) = send(app.admin(Method::GET, &format!("{path}/{key}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing recorded");

    // The right signature is accepted; so are an admin's credentials.
    let (status, _, _) = deliver(&app, &path, &params, Some(good)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(settled(&app, &service, &key).await["status"], "done");
    let by_admin = message_sid();
    let params = webhook_form(&by_admin, &sender(), Some("from a script"), &[]);
    let response = app
        .admin(Method::POST, &path)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(settled(&app, &service, &by_admin).await["status"], "done");

    // Bad parameters are named, before anything is recorded.
    let bad = webhook_form("SM123", &sender(), Some("x"), &[]);
    let (status, body) = send(app.admin(Method::POST, &path).form(&bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("MessageSid"),
        "{body}"
    );
}

#[tokio::test]
async fn ssrf_attempts_slow_bodies_and_credentials_across_redirects() {
    let _guard = no_sweeps().await;
    let other = MediaHost::start(None).await;
    let host = MediaHost::start(Some(other.addr)).await;
    let app = app_for(&[&host, &other]).await;
    let service = sid(&app.create_service().await);
    let key = message_sid();
    let media: Vec<(String, &str)> = vec![
        (host.url("/to-localhost"), "image/png"),
        (host.url("/to-metadata"), "image/png"),
        (host.url("/to-unlisted"), "image/png"),
        ("http://10.0.0.1:8080/x.png".into(), "image/png"),
        (
            "https://169.254.169.254/latest/meta-data/iam".into(),
            "image/png",
        ),
        (host.url("/loop"), "image/png"),
        (host.url("/slow"), "image/png"),
        (host.url("/to-other"), "image/png"),
    ];
    let params = webhook_form(&key, &sender(), None, &media);
    let (status, _, took) = deliver(&app, &webhook_path(&service), &params, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(took < Duration::from_secs(2), "answered in {took:?}");

    let job = settled(&app, &service, &key).await;
    assert_eq!(job["status"], "done", "{job}");
    let reasons: Vec<String> = job["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m["outcome"].as_str().unwrap(),
                m["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    let expect = [
        "refused The media could not be fetched: host localhost resolves to an internal address",
        "refused The media could not be fetched: host 169.254.169.254 resolves to an internal address",
        "refused The media could not be fetched: host 127.0.0.2 is not in INGEST_ALLOWED_HOSTS",
        "refused The media could not be fetched: host 10.0.0.1 is not in INGEST_ALLOWED_HOSTS",
        "refused The media could not be fetched: host 169.254.169.254 resolves to an internal address",
        "refused The media could not be fetched: more than 3 redirects",
        "refused The media could not be fetched: the media host stopped sending (after 3 attempts)",
        "ready ",
    ];
    assert_eq!(reasons, expect, "{job:#}");

    // Each refusal is a message saying so, in order; the last media arrived.
    let list = messages(&app, &service, job["channel_sid"].as_str().unwrap()).await;
    assert_eq!(list.len(), 8);
    for (i, m) in list.iter().take(7).enumerate() {
        let a = attributes(m);
        assert_eq!(a["media_index"], i, "{m}");
        assert_eq!(a["media_status"], "refused");
        assert_eq!(m["type"], "text");
    }
    assert_eq!(list[7]["type"], "media");
    // Refused media are recorded as such, with no object.
    let refused = app
        .record(InboundJob::media_sid_for(
            &service.parse().unwrap(),
            &key,
            1,
        ))
        .await;
    assert_eq!(refused.status.as_str(), "rejected");
    assert!(refused.status_reason.unwrap().contains("internal address"));

    // The slow body was tried three times; the loop stopped after 3 redirects.
    assert_eq!(host.requests_for("/slow"), 3);
    assert_eq!(host.requests_for("/loop"), 4);
    // Credentials went to the first host only, never across the redirect.
    assert_eq!(host.auth_of("/to-other"), [Some(basic())]);
    assert_eq!(other.auth_of("/png-other"), [None]);
}

#[tokio::test]
async fn uploads_by_url_are_for_admins_and_become_ready_when_checked() {
    let _guard = no_sweeps().await;
    let host = MediaHost::start(None).await;
    let app = app_for(&[&host]).await;
    let created = app.create_service().await;
    let service = sid(&created);
    let path = media_path(&service);

    let (status, media) = send(app.admin(Method::POST, &path).form(&[
        ("MediaUrl", host.url("/png")),
        ("Filename", "cat.png".into()),
    ]))
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{media}");
    assert_eq!(media["status"], "uploading");
    assert_eq!(media["author"], "system");
    let me = sid(&media);
    let deadline = Instant::now() + Duration::from_secs(180);
    let ready = loop {
        let (_, m) = send(app.admin(Method::GET, &format!("{path}/{me}"))).await;
        if m["status"] != "uploading" && m["status"] != "scanning" {
            break m;
        }
        assert!(Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["content_type"], "image/png");
    assert_eq!(ready["filename"], "cat.png");
    assert_eq!(download(&app, &service, &me).await, png_like(4096));

    // An infected file by URL ends rejected with the signature.
    let (status, media) = send(
        app.admin(Method::POST, &path)
            .form(&[("MediaUrl", host.url("/eicar"))]),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let me = sid(&media);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, m) = send(app.admin(Method::GET, &format!("{path}/{me}"))).await;
        if m["status"] == "rejected" {
            assert!(
                m["status_reason"].as_str().unwrap().contains("infected"),
                "{m}"
            );
            break;
        }
        if Instant::now() > deadline {
            let job = app
                .state
                .store
                .get_inbound(&service.parse().unwrap(), &me)
                .await;
            panic!("{m} {job:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Users may not; hosts off the list and literal internal addresses are 400 at once.
    let token = app.token(&service.parse().unwrap(), "alice");
    let (status, body) = send(
        app.user(&token, Method::POST, &path)
            .form(&[("MediaUrl", host.url("/png"))]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for url in [
        "https://evil.example/x.png",
        "https://169.254.169.254/latest/meta-data/",
        "ftp://x/y",
        "not a url",
    ] {
        let (status, body) = send(app.admin(Method::POST, &path).form(&[("MediaUrl", url)])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("MediaUrl"),
            "{body}"
        );
    }
    let (status, _) = send(app.admin(Method::POST, &path).form(&[("Filename", "x")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_job_whose_run_died_is_resumed_by_the_sweep() {
    let host = MediaHost::start(None).await;
    let app = app_for(&[&host]).await;
    let service: ServiceSid = sid(&app.create_service().await).parse().unwrap();
    let key = message_sid();
    let from = sender();
    // As a run that crashed left it: claimed once, its lease run out.
    let now = chrono::Utc::now();
    let job = InboundJob {
        service_sid: service.clone(),
        key: key.clone(),
        kind: InboundKind::Webhook,
        from: chat_media::Identity::parse(&from).unwrap(),
        to: None,
        account_sid: None,
        profile_name: None,
        body: Some("before the crash".into()),
        channel: None,
        media: vec![InboundMedia {
            index: 0,
            url: host.url("/png"),
            content_type: Some("image/png".into()),
            media_sid: InboundJob::media_sid_for(&service, &key, 0),
            outcome: None,
            reason: None,
        }],
        status: InboundStatus::Pending,
        status_reason: None,
        channel_sid: None,
        messages: vec![],
        attempts: 1,
        working_until: now.timestamp() - 5,
        date_created: now,
        date_updated: now,
    };
    // The lock first: a job claimable before it is held would be resumed by
    // another test's sweep, with that test's allowed hosts.
    let _sweep = sweeping().await;
    assert!(app.state.store.create_inbound(&job).await.unwrap());
    let ended = chat_media::inbound::resume(&app.state, chrono::Utc::now().timestamp())
        .await
        .unwrap();
    assert!(ended >= 1);
    let job = settled(&app, service.as_str(), &key).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["attempts"], 2);
    let list = messages(&app, service.as_str(), job["channel_sid"].as_str().unwrap()).await;
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["type"], "media");
    // Resuming again does nothing.
    assert!(chat_media::inbound::process(
        &app.state,
        &service,
        &key,
        chrono::Utc::now().timestamp()
    )
    .await
    .unwrap()
    .is_none());
}

#[tokio::test]
async fn the_webhook_answers_in_under_two_seconds() {
    // Alone among the tests that take the sweep lock, so the figure is the
    // answer's, not the shared machine's.
    let _guard = sweeping().await;
    let host = MediaHost::start(None).await;
    let app = app_for(&[&host]).await;
    let service = sid(&app.create_service().await);
    let path = webhook_path(&service);
    let mut times = Vec::new();
    let mut keys = Vec::new();
    for i in 0..20 {
        let key = message_sid();
        let media = [(host.url(&format!("/png-{i}")), "image/png")];
        let params = webhook_form(&key, &sender(), Some("hello"), &media);
        let (status, _, took) = deliver(&app, &path, &params, None).await;
        assert_eq!(status, StatusCode::OK);
        times.push(took);
        keys.push(key);
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    println!(
        "inbound webhook answer time over {} deliveries: p50 {p50:?}, p99 {p99:?}, max {:?}",
        times.len(),
        times.last().unwrap()
    );
    assert!(*times.last().unwrap() < Duration::from_secs(2), "{times:?}");
    for key in keys {
        assert_eq!(settled(&app, &service, &key).await["status"], "done");
    }
}
