//! Test harness: spawns the real app (every function's routes, as the local runner
//! serves them) on a random port, against the DynamoDB and S3 servers that
//! `scripts/test` started once for the whole run. Each test makes its own service,
//! so tests run in parallel without seeing each other's data.

use std::collections::HashMap;
use std::net::SocketAddr;

use chat_media::config::{AwsOptions, Settings};
use chat_media::filename::Filename;
use chat_media::model::{Media, MediaStatus, NewUpload};
use chat_media::scan::Scanner;
use chat_media::sid::{AccountSid, ApiKeySid, ChannelSid, MediaSid, MemberSid, ServiceSid};
use chat_media::store::{keys, AttributeValue};
use chat_media::{AppState, Credentials, Identity};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tokio::sync::{OnceCell, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub mod audit;
pub mod clamd;
pub mod faults;
pub mod flex;
pub mod hooks;

/// A complete 1×1 PNG (the local runner's events fixture uploads the same bytes).
pub use chat_media_local::fixture::PNG;

/// The wall clock in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Hex SHA-256, as a media record stores it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `size` bytes that start with a PNG signature (what the benchmarks upload):
/// from 57 bytes on, a well-formed chunk sequence (IHDR, a private `teSt` chunk
/// of filler, IEND) with no metadata, so metadata stripping keeps it as it is.
pub fn png_like(size: usize) -> Vec<u8> {
    let mut data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let sig = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    data[..sig.len()].copy_from_slice(sig);
    // signature 8 + IHDR 25 + filler chunk 12 + n + IEND 12
    if let Some(filler) = size.checked_sub(57) {
        let at = 8 + 25;
        data[at..at + 4].copy_from_slice(&(filler as u32).to_be_bytes());
        data[at + 4..at + 8].copy_from_slice(b"teSt");
        data[size - 12..].copy_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    }
    data
}

/// A PE header padded to 2 KiB: an executable whatever it is declared as.
pub fn exe() -> Vec<u8> {
    let mut b = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0\xb8\0\0\0\0\0\0\0@\0".to_vec();
    b.resize(2048, 0x90);
    b
}

/// Sweeps (`media_events::sweep`, the pending-deletion sweep) act on the whole
/// shared table, not on one test's service: they expire, rescan and clear records
/// of every test in the process. A test that runs one holds [`sweeping`]; a test
/// that expects a record a sweep would change to stay as it is (a `failed` media,
/// a pending deletion) holds [`no_sweeps`]. Each test takes one guard, once.
static SWEEPS: RwLock<()> = RwLock::const_new(());

/// Exclusive: no test that relies on sweep-sensitive state runs meanwhile.
pub async fn sweeping() -> RwLockWriteGuard<'static, ()> {
    SWEEPS.write().await
}

/// Shared with other such tests: no sweep runs meanwhile.
pub async fn no_sweeps() -> RwLockReadGuard<'static, ()> {
    SWEEPS.read().await
}

pub use reqwest;
pub use serde_json::json;

pub const TABLE: &str = "chat-media-test";
pub const BUCKET: &str = "chat-media-test";

/// The keys the S3 server of `scripts/test` checks signatures against
/// (`S3_ACCESS_KEY`, `S3_SECRET_KEY` of `scripts/local.env`).
pub fn s3_keys() -> (String, String) {
    let key = |name| {
        chat_media_local::local_lookup(name)
            .unwrap_or_else(|| panic!("{name} in scripts/local.env"))
    };
    (key("S3_ACCESS_KEY"), key("S3_SECRET_KEY"))
}

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through scripts/test, which starts DynamoDB and S3")
    })
}

pub fn credentials() -> Credentials {
    Credentials {
        account_sid: AccountSid::parse("AC00000000000000000000000000000001").unwrap(),
        auth_token: "test-auth-token-0001".into(),
        api_key_sid: ApiKeySid::parse("SK00000000000000000000000000000001").unwrap(),
        api_key_secret: "test-api-key-secret-0001".into(),
        clock_skew_secs: chat_media::auth::DEFAULT_CLOCK_SKEW_SECS,
    }
}

pub fn aws_options() -> AwsOptions {
    AwsOptions {
        region: Some("us-east-1".into()),
        dynamodb_endpoint: Some(endpoint("CHAT_MEDIA_TEST_DYNAMODB")),
        s3_endpoint: Some(endpoint("CHAT_MEDIA_TEST_S3")),
        static_credentials: Some(s3_keys()),
    }
}

/// Builds app state against the shared servers (table and bucket created once).
pub async fn state_with(aws: &AwsOptions, settings: Settings) -> AppState {
    state_with_credentials(aws, settings, credentials()).await
}

/// As [`state_with`], answering to other account credentials.
pub async fn state_with_credentials(
    aws: &AwsOptions,
    settings: Settings,
    credentials: Credentials,
) -> AppState {
    static READY: OnceCell<()> = OnceCell::const_new();
    let sdk = aws.sdk_config().await;
    let state = AppState::new(&sdk, aws, TABLE, BUCKET, credentials, settings);
    READY
        .get_or_init(|| async {
            let fresh = {
                let sdk = aws_options().sdk_config().await;
                AppState::new(
                    &sdk,
                    &aws_options(),
                    TABLE,
                    BUCKET,
                    self::credentials(),
                    Settings::default(),
                )
            };
            fresh.store.ensure_table().await.expect("create test table");
            fresh
                .blob
                .ensure_bucket()
                .await
                .expect("create test bucket");
        })
        .await;
    state
}

/// A running app on a random port, with an HTTP client and admin credentials.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// An admin's takedown of `media` (issue 17 §3), as `POST …/Media/{sid}/Quarantine`.
    pub async fn quarantine(&self, f: &Fixture, media: &str, reason: &str) -> (StatusCode, Value) {
        let path = format!("{}/{media}/Quarantine", media_path(&f.service_sid));
        send(self.admin(Method::POST, &path).form(&[("Reason", reason)])).await
    }

    pub async fn spawn() -> Self {
        Self::spawn_with(aws_options(), Settings::default()).await
    }

    pub async fn spawn_with(aws: AwsOptions, settings: Settings) -> Self {
        Self::spawn_inner(aws, settings, None, credentials()).await
    }

    /// An app whose account has these credentials (e.g. an auth token in Twilio's
    /// own format, which some of Twilio's tools insist on).
    pub async fn spawn_with_credentials(credentials: Credentials) -> Self {
        Self::spawn_inner(aws_options(), Settings::default(), None, credentials).await
    }

    /// An app whose uploads are scanned by `scanner` (scanning mandatory).
    pub async fn spawn_scanning(scanner: Scanner) -> Self {
        Self::spawn_scanning_with(Settings::default(), scanner).await
    }

    pub async fn spawn_scanning_with(settings: Settings, scanner: Scanner) -> Self {
        Self::spawn_inner(aws_options(), settings, Some(scanner), credentials()).await
    }

    /// An app reaching DynamoDB and S3 at `aws`'s endpoints and scanning with
    /// `scanner`, e.g. all three through fault proxies.
    pub async fn spawn_via(aws: AwsOptions, settings: Settings, scanner: Option<Scanner>) -> Self {
        Self::spawn_inner(aws, settings, scanner, credentials()).await
    }

    async fn spawn_inner(
        aws: AwsOptions,
        mut settings: Settings,
        scanner: Option<Scanner>,
        credentials: Credentials,
    ) -> Self {
        // The process's one tracing subscriber, before any app logs.
        audit::install();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        settings.base_url = base.clone();
        // Tests check what a thumbnail is, not how fast a dev build makes it on a
        // loaded 2-core machine; a test that wants the production limit sets another.
        if settings.thumbnail_time_limit == chat_media::thumbnail::TIME_LIMIT {
            settings.thumbnail_time_limit = std::time::Duration::from_secs(120);
        }
        let state = state_with_credentials(&aws, settings, credentials).await;
        let state = match scanner {
            Some(scanner) => state.with_scanner(scanner),
            None => state,
        };
        let app = chat_media_local::app(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            base,
            state,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with no credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// A request with the account's Basic credentials.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        let c = &self.state.credentials;
        self.anon(method, path)
            .basic_auth(c.account_sid.as_str(), Some(&c.auth_token))
    }

    /// A request carrying `token` in `X-Twilio-Token`.
    pub fn user(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).header("X-Twilio-Token", token)
    }

    pub fn token(&self, service: &ServiceSid, identity: &str) -> String {
        self.state
            .credentials
            .mint_token(service, &Identity::parse(identity).unwrap(), now(), 3600)
    }

    /// Creates a service as admin and returns its JSON.
    pub async fn create_service(&self) -> Value {
        let (status, body) = send(
            self.admin(Method::POST, "/v2/Services")
                .form(&[("FriendlyName", "test service")]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// A new service with a channel ("general") and a member `identity` in it.
    pub async fn service_with_member(&self, identity: &str) -> Fixture {
        let service = self.create_service().await;
        self.channel_with_member(&service, &[("FriendlyName", "general")], identity)
            .await
    }

    /// A new channel of `service` (created with `form`) with a member `identity`.
    pub async fn channel_with_member(
        &self,
        service: &Value,
        form: &[(&str, &str)],
        identity: &str,
    ) -> Fixture {
        let service_sid: ServiceSid = sid(service).parse().unwrap();
        let (status, channel) = send(
            self.admin(
                Method::POST,
                &format!("/v2/Services/{service_sid}/Channels"),
            )
            .form(form),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{channel}");
        let channel_sid = sid(&channel).parse().unwrap();
        let (status, member) = send(
            self.admin(
                Method::POST,
                &format!("/v2/Services/{service_sid}/Channels/{channel_sid}/Members"),
            )
            .form(&[("Identity", identity)]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{member}");
        Fixture {
            token: self.token(&service_sid, identity),
            service: service.clone(),
            service_sid,
            channel,
            channel_sid,
            member_sid: sid(&member).parse().unwrap(),
            member,
        }
    }

    /// `f`'s channel as another member: adds `identity` (with `role`, or the
    /// default) and returns the fixture with its member and token.
    pub async fn join(&self, f: &Fixture, identity: &str, role: Option<&str>) -> Fixture {
        let (member, token) = self.add_member(f, identity, role).await;
        Fixture {
            member_sid: sid(&member).parse().unwrap(),
            member,
            token,
            ..f.clone()
        }
    }

    /// A ready, unbound media as a finished upload leaves it: the bytes in the real
    /// S3 server at the media's key, and the record (with its expiry) in DynamoDB.
    pub async fn ready_media(
        &self,
        service_sid: &ServiceSid,
        author: &str,
        content_type: &str,
        filename: Option<&str>,
        bytes: &[u8],
    ) -> Media {
        self.media_with_status(
            service_sid,
            author,
            content_type,
            filename,
            bytes,
            MediaStatus::Ready,
        )
        .await
    }

    /// As [`TestApp::ready_media`], in any status (e.g. still scanning).
    pub async fn media_with_status(
        &self,
        service_sid: &ServiceSid,
        author: &str,
        content_type: &str,
        filename: Option<&str>,
        bytes: &[u8],
        status: MediaStatus,
    ) -> Media {
        let service_sid = service_sid.clone();
        let sid = MediaSid::generate();
        let object_key = Media::object_key_for(&service_sid, &sid);
        self.state
            .blob
            .put(&object_key, bytes.to_vec().into(), content_type)
            .await
            .expect("put the media object");
        let now = chat_media::model::now();
        let media = Media {
            status,
            ..Media::new_upload(
                sid,
                service_sid,
                NewUpload {
                    author: Identity::parse(author).unwrap(),
                    content_type: content_type.into(),
                    filename: filename.and_then(|f| Filename::parse(f).unwrap()),
                    size: bytes.len() as u64,
                    upload: None,
                    holds_slot: false,
                },
                now.timestamp() + 24 * 3600,
                None,
                now,
            )
        };
        self.state
            .store
            .create_media(&media)
            .await
            .expect("record the media");
        media
    }

    /// Adds `identity` to the fixture's channel (with `role`, or the default) and
    /// returns the member JSON and a token for it.
    pub async fn add_member(
        &self,
        f: &Fixture,
        identity: &str,
        role: Option<&str>,
    ) -> (Value, String) {
        let mut form = vec![("Identity", identity)];
        if let Some(role) = role {
            form.push(("RoleSid", role));
        }
        let (status, member) = send(
            self.admin(Method::POST, &format!("{}/Members", f.channel_path()))
                .form(&form),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{member}");
        (member, self.token(&f.service_sid, identity))
    }

    /// Creates a channel role with these permissions; returns its SID.
    pub async fn create_channel_role(
        &self,
        service_sid: &ServiceSid,
        name: &str,
        permissions: &[&str],
    ) -> String {
        let mut form = vec![("FriendlyName", name), ("Type", "channel")];
        form.extend(permissions.iter().map(|p| ("Permission", *p)));
        let (status, role) = send(
            self.admin(Method::POST, &format!("/v2/Services/{service_sid}/Roles"))
                .form(&form),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{role}");
        sid(&role)
    }

    /// Posts a text message to `f`'s channel as `token`'s user.
    pub async fn post_text(&self, f: &Fixture, token: &str, body: &str) -> (StatusCode, Value) {
        send(
            self.user(token, Method::POST, &f.messages_path())
                .form(&[("Body", body)]),
        )
        .await
    }

    /// Posts a media message binding `media` to `f`'s channel as `token`'s user.
    pub async fn post_media(&self, f: &Fixture, token: &str, media: &str) -> (StatusCode, Value) {
        send(
            self.user(token, Method::POST, &f.messages_path())
                .form(&[("MediaSid", media)]),
        )
        .await
    }

    /// As [`TestApp::post_text`], which must succeed; returns the message JSON.
    pub async fn send_text(&self, f: &Fixture, token: &str, body: &str) -> Value {
        let (status, message) = self.post_text(f, token, body).await;
        assert_eq!(status, StatusCode::CREATED, "{message}");
        message
    }

    /// As [`TestApp::post_media`], which must succeed; returns the message JSON.
    pub async fn send_media(&self, f: &Fixture, token: &str, media: &Media) -> Value {
        let (status, message) = self.post_media(f, token, media.sid.as_str()).await;
        assert_eq!(status, StatusCode::CREATED, "{message}");
        message
    }

    /// The channel record as stored now (strongly consistent); it must exist.
    pub async fn channel_record(&self, sid: &ChannelSid) -> chat_media::model::Channel {
        self.state
            .store
            .find_channel(sid)
            .await
            .expect("DynamoDB answers")
            .expect("the channel exists")
    }

    /// A single-PUT upload session by `token`'s user in `service`, its bytes PUT
    /// (not completed); returns the session's JSON.
    pub async fn uploaded_session(
        &self,
        token: &str,
        service: &ServiceSid,
        content_type: &str,
        bytes: &[u8],
    ) -> Value {
        let (status, session) = send(
            self.user(token, Method::POST, &sessions_path(service))
                .form(&[
                    ("Size", bytes.len().to_string().as_str()),
                    ("ContentType", content_type),
                ]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        let (status, _) = self
            .put_part(&session["upload"]["parts"][0], bytes.to_vec())
            .await;
        assert!(status.is_success(), "PUT of the session's part: {status}");
        session
    }

    /// Sends one presigned request from an upload session's `parts` entry;
    /// returns the status and the ETag S3 answered with.
    pub async fn put_part(&self, part: &Value, body: Vec<u8>) -> (StatusCode, Option<String>) {
        let mut req = self.http.put(part["url"].as_str().unwrap());
        for (k, v) in part["headers"].as_object().unwrap() {
            req = req.header(k, v.as_str().unwrap());
        }
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status();
        let etag = resp
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, etag)
    }

    /// The media record, if any (strongly consistent read).
    pub async fn media_record(&self, media: impl AsRef<str>) -> Option<Media> {
        self.state
            .store
            .get_media(&MediaSid::parse(media.as_ref()).unwrap())
            .await
            .unwrap()
    }

    /// The media record, which must exist.
    pub async fn record(&self, media: impl AsRef<str>) -> Media {
        self.media_record(media)
            .await
            .expect("the media record is kept")
    }

    /// The unbound uploads `identity` holds in `service` (its upload slots).
    pub async fn slots(&self, service: &ServiceSid, identity: &str) -> i64 {
        self.state
            .store
            .unbound_uploads(service, &Identity::parse(identity).unwrap())
            .await
            .unwrap()
    }

    /// Whether the object exists in the real S3 server.
    pub async fn object_exists(&self, key: &str) -> bool {
        self.state
            .blob
            .size(key)
            .await
            .expect("S3 answers")
            .is_some()
    }

    /// The object's bytes in the real S3 server, if it exists.
    pub async fn object(&self, key: &str) -> Option<Vec<u8>> {
        match self
            .state
            .blob
            .client()
            .get_object()
            .bucket(self.state.blob.bucket())
            .key(key)
            .send()
            .await
        {
            Ok(out) => Some(out.body.collect().await.unwrap().into_bytes().to_vec()),
            Err(_) => None,
        }
    }

    /// Whether a pending deletion of `key` is recorded (strongly consistent read).
    pub async fn deletion_pending(&self, key: &str) -> bool {
        let out = self
            .state
            .store
            .client()
            .get_item()
            .table_name(self.state.store.table())
            .key(keys::PK, AttributeValue::S(keys::pending_deletion(key)))
            .key(keys::SK, AttributeValue::S(keys::OBJECT.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("DynamoDB answers");
        out.item.is_some()
    }

    /// Every object key under a service's prefix in the real S3 server (the media
    /// objects, `services/IS…/media/ME…`, are all a service has).
    pub async fn objects_of(&self, service_sid: &ServiceSid) -> Vec<String> {
        // The prefix as the model builds keys: a media key without its last segment.
        let sample = Media::object_key_for(service_sid, &MediaSid::generate());
        let media_dir = sample.rsplit_once('/').unwrap().0;
        let service_dir = media_dir.rsplit_once('/').unwrap().0;
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .state
                .blob
                .client()
                .list_objects_v2()
                .bucket(self.state.blob.bucket())
                .prefix(format!("{service_dir}/"))
                .set_continuation_token(token)
                .send()
                .await
                .expect("S3 lists");
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match out.next_continuation_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return keys,
            }
        }
    }

    /// Every item of a partition (`PK`), read strongly consistently: what a delete
    /// left behind.
    pub async fn partition(&self, pk: &str) -> Vec<HashMap<String, AttributeValue>> {
        self.state
            .store
            .client()
            .query()
            .table_name(self.state.store.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::PK)
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("DynamoDB answers")
            .items
            .unwrap_or_default()
    }

    /// Every media record of a service, read with a (test-only) consistent scan of
    /// every page (a scan page stops at 1 MB): a refused direct upload's SID is only
    /// in its error message.
    pub async fn media_records(&self, service: &ServiceSid) -> Vec<Media> {
        let mut records = Vec::new();
        let mut start = None;
        // Every page: a scan reads 1 MB of the shared table at a time.
        loop {
            let out = self
                .state
                .store
                .client()
                .scan()
                .table_name(self.state.store.table())
                .filter_expression("#sk = :media AND service_sid = :service")
                .expression_attribute_names("#sk", keys::SK)
                .expression_attribute_values(":media", AttributeValue::S(keys::MEDIA.into()))
                .expression_attribute_values(":service", AttributeValue::S(service.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan the media records");
            records.extend(
                out.items()
                    .iter()
                    .map(|i| serde_dynamo::from_item(i.clone()).expect("a media record")),
            );
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return records,
            }
        }
    }

    /// Writes `media` as its record item (keys included), replacing the stored one:
    /// for states no request can reach, such as a scan lease that ran out.
    pub async fn put_media_record(&self, media: &Media) {
        let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(media).unwrap();
        item.insert(keys::PK.into(), AttributeValue::S(media.sid.to_string()));
        item.insert(keys::SK.into(), AttributeValue::S(keys::MEDIA.into()));
        if let (None, Some(expires_at)) = (&media.message_sid, media.expires_at) {
            item.insert(keys::GSI1PK.into(), AttributeValue::S(keys::UNBOUND.into()));
            item.insert(
                keys::GSI1SK.into(),
                AttributeValue::S(keys::unbound_order(expires_at, &media.sid)),
            );
        }
        self.state
            .store
            .client()
            .put_item()
            .table_name(self.state.store.table())
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    /// The S3 `ObjectCreated` notification media-events gets for `key` in this app's bucket.
    pub fn s3_object_created(&self, key: &str) -> Value {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2025-01-01T00:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "1", "x-amz-id-2": "2"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "media-created",
                "bucket": {"name": self.state.blob.bucket(), "arn": "arn:aws:s3:::b"},
                "object": {"key": key, "size": 1, "eTag": "x", "sequencer": "1"}
            }
        }]})
    }

    /// Runs the pending-deletion sweep until nothing is left to retry (hold
    /// [`sweeping`]).
    pub async fn sweep(&self) {
        for _ in 0..100 {
            let removed = chat_media::cleanup::sweep_pending_deletions(&self.state, 100)
                .await
                .expect("sweep reads the table");
            if removed == 0 {
                return;
            }
        }
    }
}

/// The DynamoDB calls the request made, from the local runner's response header.
pub fn dynamodb_calls(headers: &reqwest::header::HeaderMap) -> u32 {
    headers
        .get(chat_media::metrics::DYNAMODB_CALLS_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("the local runner reports DynamoDB calls")
}

/// Access-token claims as `Credentials::mint_token` writes them, for any
/// `identity` (even one `Identity::parse` refuses) in `service`, valid from `nbf`
/// until `exp`: tests forge edge cases from them.
pub fn token_claims(service: &ServiceSid, identity: &str, nbf: i64, exp: i64) -> Value {
    let c = credentials();
    serde_json::json!({
        "jti": format!("{}-{nbf}", c.api_key_sid),
        "iss": c.api_key_sid.as_str(),
        "sub": c.account_sid.as_str(),
        "iat": nbf,
        "nbf": nbf,
        "exp": exp,
        "grants": {"identity": identity, "chat": {"service_sid": service.as_str()}},
    })
}

/// `claims` as an access token (HS256, Twilio's `cty`) signed with `secret`.
pub fn sign_token(claims: &Value, secret: &str) -> String {
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "HS256",
        "cty": chat_media::auth::TOKEN_CONTENT_TYPE,
    });
    chat_media::auth::sign_jwt(&header, claims, secret)
}

/// A service, one of its channels, and one member of it with a token.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub service: Value,
    pub service_sid: ServiceSid,
    pub channel: Value,
    pub channel_sid: ChannelSid,
    pub member: Value,
    pub member_sid: MemberSid,
    pub token: String,
}

impl Fixture {
    pub fn service_path(&self) -> String {
        format!("/v2/Services/{}", self.service_sid)
    }

    pub fn channel_path(&self) -> String {
        format!("{}/Channels/{}", self.service_path(), self.channel_sid)
    }

    pub fn messages_path(&self) -> String {
        format!("{}/Messages", self.channel_path())
    }

    /// The path of a message (its JSON) of this channel.
    pub fn message_path(&self, message: &Value) -> String {
        format!("{}/{}", self.messages_path(), sid(message))
    }

    /// `/v1/Services/IS…/Media`: direct uploads.
    pub fn uploads_path(&self) -> String {
        media_path(&self.service_sid)
    }

    /// `/v1/Services/IS…/MediaUploads`: upload sessions.
    pub fn sessions_path(&self) -> String {
        sessions_path(&self.service_sid)
    }

    pub fn media_path(&self, media: &MediaSid) -> String {
        format!("{}/{media}", media_path(&self.service_sid))
    }

    /// A service role's SID from the service JSON, e.g. `default_channel_creator_role_sid`.
    pub fn role(&self, field: &str) -> String {
        self.service[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} in {}", self.service))
            .to_owned()
    }
}

/// `/v1/Services/{service}/Media`: direct uploads.
pub fn media_path(service: &impl std::fmt::Display) -> String {
    format!("/v1/Services/{service}/Media")
}

/// `/v1/Services/{service}/MediaUploads`: upload sessions.
pub fn sessions_path(service: &impl std::fmt::Display) -> String {
    format!("/v1/Services/{service}/MediaUploads")
}

pub fn sid(v: &Value) -> String {
    v["sid"].as_str().expect("a sid").to_owned()
}

/// Sends and returns status and JSON body (`Null` for an empty body).
pub async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let (status, _, body) = send_full(req).await;
    (status, body)
}

/// Sends and returns status, headers and JSON body.
pub async fn send_full(req: RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp: Response = req.send().await.expect("request sent");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body read");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, headers, body)
}

/// Asserts a Twilio error body with this status (and code, if given).
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, expected: u16, code: Option<u64>) {
    assert_eq!(status.as_u16(), expected, "unexpected status; body: {body}");
    assert_eq!(body["status"], expected, "error body: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["more_info"].as_str().is_some(), "{body}");
    if let Some(code) = code {
        assert_eq!(body["code"], code, "error body: {body}");
    }
}

/// Runs `tests/clients/python/<script>` with the Python that has twilio-python
/// (`CHAT_MEDIA_TEST_PYTHON`, set by scripts/test), `input` as JSON on stdin, and
/// parses its stdout as JSON. Panics with the script's stderr when it fails.
pub fn twilio_python(script: &str, input: &Value) -> Value {
    let python = endpoint("CHAT_MEDIA_TEST_PYTHON");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clients/python")
        .join(script);
    run_json(std::process::Command::new(python).arg(&path), script, input)
}

/// Runs `tests/clients/node/<script>` with Node, next to the Node clients that
/// scripts/test installed from the lock file (`CHAT_MEDIA_TEST_NODE_DIR`): `input`
/// as JSON on stdin, stdout parsed as JSON. Panics with the script's stderr when it
/// fails.
pub fn twilio_node(script: &str, input: &Value) -> Value {
    let dir = std::path::PathBuf::from(endpoint("CHAT_MEDIA_TEST_NODE_DIR"));
    let node = std::env::var("CHAT_MEDIA_TEST_NODE").unwrap_or_else(|_| "node".into());
    run_json(
        std::process::Command::new(node)
            .arg(dir.join(script))
            .current_dir(&dir),
        script,
        input,
    )
}

/// The directory of the Node clients (`CHAT_MEDIA_TEST_NODE_DIR`).
pub fn node_clients_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(endpoint("CHAT_MEDIA_TEST_NODE_DIR"))
}

fn run_json(cmd: &mut std::process::Command, script: &str, input: &Value) -> Value {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("write to {script}: {e}"));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{script} runs: {e}"));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{script} prints JSON, not: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
