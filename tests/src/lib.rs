//! Test harness: spawns the real app (every function's routes, as the local runner
//! serves them) on a random port, against the DynamoDB and S3 servers that
//! `scripts/test` started once for the whole run. Each test makes its own service,
//! so tests run in parallel without seeing each other's data.

use std::net::SocketAddr;

use chat_media::config::{AwsOptions, Settings};
use chat_media::filename::Filename;
use chat_media::model::{Media, MediaStatus, NewUpload};
use chat_media::scan::Scanner;
use chat_media::sid::{AccountSid, ApiKeySid, MediaSid, ServiceSid};
use chat_media::{AppState, Credentials, Identity};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tokio::sync::OnceCell;

pub mod clamd;

pub use reqwest;
pub use serde_json::json;

pub const TABLE: &str = "chat-media-test";
pub const BUCKET: &str = "chat-media-test";
pub const S3_ACCESS_KEY: &str = "chat-media-local";
pub const S3_SECRET_KEY: &str = "chat-media-local-secret";

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
    }
}

pub fn aws_options() -> AwsOptions {
    AwsOptions {
        region: Some("us-east-1".into()),
        dynamodb_endpoint: Some(endpoint("CHAT_MEDIA_TEST_DYNAMODB")),
        s3_endpoint: Some(endpoint("CHAT_MEDIA_TEST_S3")),
        static_credentials: Some((S3_ACCESS_KEY.into(), S3_SECRET_KEY.into())),
    }
}

/// Builds app state against the shared servers (table and bucket created once).
pub async fn state_with(aws: &AwsOptions, settings: Settings) -> AppState {
    static READY: OnceCell<()> = OnceCell::const_new();
    let sdk = aws.sdk_config().await;
    let state = AppState::new(&sdk, aws, TABLE, BUCKET, credentials(), settings);
    READY
        .get_or_init(|| async {
            let fresh = {
                let sdk = aws_options().sdk_config().await;
                AppState::new(
                    &sdk,
                    &aws_options(),
                    TABLE,
                    BUCKET,
                    credentials(),
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
    pub async fn spawn() -> Self {
        Self::spawn_with(aws_options(), Settings::default()).await
    }

    pub async fn spawn_with(aws: AwsOptions, settings: Settings) -> Self {
        Self::spawn_inner(aws, settings, None).await
    }

    /// An app whose uploads are scanned by `scanner` (scanning mandatory).
    pub async fn spawn_scanning(scanner: Scanner) -> Self {
        Self::spawn_scanning_with(Settings::default(), scanner).await
    }

    pub async fn spawn_scanning_with(settings: Settings, scanner: Scanner) -> Self {
        Self::spawn_inner(aws_options(), settings, Some(scanner)).await
    }

    async fn spawn_inner(
        aws: AwsOptions,
        mut settings: Settings,
        scanner: Option<Scanner>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        settings.base_url = base.clone();
        let state = state_with(&aws, settings).await;
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
        let c = credentials();
        self.anon(method, path)
            .basic_auth(c.account_sid.as_str(), Some(&c.auth_token))
    }

    /// A request carrying `token` in `X-Twilio-Token`.
    pub fn user(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).header("X-Twilio-Token", token)
    }

    pub fn token(&self, service: &ServiceSid, identity: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        credentials().mint_token(service, &Identity::parse(identity).unwrap(), now, 3600)
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

    /// A service with a channel and a member `identity` in it: (service, channel, token).
    pub async fn service_with_member(&self, identity: &str) -> Fixture {
        let service = self.create_service().await;
        let service_sid = sid(&service);
        let (status, channel) = send(
            self.admin(
                Method::POST,
                &format!("/v2/Services/{service_sid}/Channels"),
            )
            .form(&[("FriendlyName", "general")]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{channel}");
        let channel_sid = sid(&channel);
        let (status, member) = send(
            self.admin(
                Method::POST,
                &format!("/v2/Services/{service_sid}/Channels/{channel_sid}/Members"),
            )
            .form(&[("Identity", identity)]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{member}");
        let token = self.token(&ServiceSid::parse(&service_sid).unwrap(), identity);
        Fixture {
            service,
            service_sid,
            channel,
            channel_sid,
            member,
            token,
        }
    }
}

impl TestApp {
    /// A ready, unbound media as a finished upload leaves it: the bytes in the real
    /// S3 server at the media's key, and the record (with its expiry) in DynamoDB.
    pub async fn ready_media(
        &self,
        service_sid: &str,
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
        service_sid: &str,
        author: &str,
        content_type: &str,
        filename: Option<&str>,
        bytes: &[u8],
        status: MediaStatus,
    ) -> Media {
        let service_sid = ServiceSid::parse(service_sid).unwrap();
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
        (member, self.token(&f.service_sid(), identity))
    }

    /// Creates a channel role with these permissions; returns its SID.
    pub async fn create_channel_role(
        &self,
        service_sid: &str,
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

    /// Whether the object exists in the real S3 server.
    pub async fn object_exists(&self, key: &str) -> bool {
        self.state
            .blob
            .size(key)
            .await
            .expect("S3 answers")
            .is_some()
    }

    /// Whether a pending deletion of `key` is recorded (strongly consistent read).
    pub async fn deletion_pending(&self, key: &str) -> bool {
        use chat_media::store::AttributeValue;
        let out = self
            .state
            .store
            .client()
            .get_item()
            .table_name(self.state.store.table())
            .key("PK", AttributeValue::S(format!("DELETE#{key}")))
            .key("SK", AttributeValue::S("OBJECT".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("DynamoDB answers");
        out.item.is_some()
    }

    /// Every object key under a service's media prefix in the real S3 server.
    pub async fn media_objects(&self, service_sid: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .state
                .blob
                .client()
                .list_objects_v2()
                .bucket(self.state.blob.bucket())
                .prefix(format!("services/{service_sid}/media/"))
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

    /// Runs the pending-deletion sweep until nothing is left to retry.
    /// Every media record of a service, read with a (test-only) consistent scan: a
    /// refused direct upload's SID is only in its error message.
    pub async fn media_records(&self, service: &str) -> Vec<Media> {
        use chat_media::store::AttributeValue;
        let out = self
            .state
            .store
            .client()
            .scan()
            .table_name(self.state.store.table())
            .filter_expression("SK = :media AND service_sid = :service")
            .expression_attribute_values(":media", AttributeValue::S("MEDIA".into()))
            .expression_attribute_values(":service", AttributeValue::S(service.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("scan the media records");
        out.items()
            .iter()
            .map(|i| serde_dynamo::from_item(i.clone()).expect("a media record"))
            .collect()
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

pub struct Fixture {
    pub service: Value,
    pub service_sid: String,
    pub channel: Value,
    pub channel_sid: String,
    pub member: Value,
    pub token: String,
}

impl Fixture {
    pub fn channel_path(&self) -> String {
        format!(
            "/v2/Services/{}/Channels/{}",
            self.service_sid, self.channel_sid
        )
    }

    pub fn service_sid(&self) -> ServiceSid {
        ServiceSid::parse(&self.service_sid).unwrap()
    }

    pub fn messages_path(&self) -> String {
        format!("{}/Messages", self.channel_path())
    }

    pub fn media_path(&self, media: &MediaSid) -> String {
        format!("/v1/Services/{}/Media/{media}", self.service_sid)
    }
}

pub fn sid(v: &Value) -> String {
    v["sid"].as_str().expect("a sid").to_owned()
}

/// Sends and returns status and JSON body (`Null` for an empty body).
pub async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp: Response = req.send().await.expect("request sent");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body read");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
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
