//! Configuration from the environment, turned once per cold start into the
//! [`AppState`] every handler shares.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::auth::{Credentials, CredentialsError};
use crate::blob::Blob;
use crate::fetch::{AllowedHosts, FetchTimeouts, Fetcher};
use crate::flex::{FlexConfig, FlexValidator, DEFAULT_MODERATOR_ROLES};
use crate::scan::{ClamdAddress, Scanner, DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT};
use crate::store::Store;
use crate::webhook::WebhookClient;

/// The longest one DynamoDB or S3 call may take, retries included, before it is
/// a 503. Every HTTP function's Lambda timeout must exceed it, or a hung
/// dependency ends as API Gateway's bare error instead of a Twilio 503
/// (`tests/tests/api/template_defaults.rs` checks template.yaml).
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(25);

/// Tunables with production defaults; each has an environment variable (README).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Prefix of every `url` in responses (`PUBLIC_BASE_URL`); empty gives paths only.
    pub base_url: String,
    /// Lifetime of presigned download URLs (`DOWNLOAD_URL_TTL_SECS`, 300).
    pub download_url_ttl: Duration,
    /// Longest a thumbnail may take to make (`THUMBNAIL_TIME_LIMIT_SECS`, 10).
    pub thumbnail_time_limit: Duration,
    /// How long an upload may stay unbound before it is swept (`UNBOUND_MEDIA_TTL_SECS`, 24 h).
    pub unbound_media_ttl: Duration,
    /// Unbound uploads one identity may hold at once (`MAX_UNBOUND_UPLOADS`, 20).
    pub max_unbound_uploads: u32,
    /// Largest direct upload body (`DIRECT_UPLOAD_MAX_BYTES`, 4 MiB): API Gateway hands
    /// Lambda binary bodies base64-encoded inside a 6 MB payload. Larger files use
    /// upload sessions.
    pub direct_upload_max_bytes: u64,
    /// Largest upload session served by one presigned PUT (`UPLOAD_SINGLE_PUT_MAX_BYTES`,
    /// 16 MiB); larger sessions get multipart part URLs.
    pub single_put_max_bytes: u64,
    /// Bytes per multipart part (`UPLOAD_PART_SIZE_BYTES`, 8 MiB; 5 MiB to 5 GiB).
    pub upload_part_size: u64,
    /// Lifetime of presigned upload URLs (`UPLOAD_URL_TTL_SECS`, 900).
    pub upload_url_ttl: Duration,
    /// How long an upload session may stay unfinished before it is swept
    /// (`UPLOAD_SESSION_TTL_SECS`, 3600; more than `UPLOAD_URL_TTL_SECS`).
    pub upload_session_ttl: Duration,
    /// Webhook URLs may use plain `http` to any host (`WEBHOOK_ALLOW_HTTP=true`);
    /// otherwise only to localhost.
    pub webhook_allow_http: bool,
    /// One webhook attempt's timeout (`WEBHOOK_TIMEOUT_MS`, 5000 as Twilio).
    pub webhook_timeout: Duration,
    /// Hosts media may be fetched from (`INGEST_ALLOWED_HOSTS`; Twilio's media hosts).
    pub ingest_allowed_hosts: AllowedHosts,
    /// Connect and stalled-body timeouts of those fetches
    /// (`INGEST_CONNECT_TIMEOUT_SECS`, 5; `INGEST_STALL_TIMEOUT_SECS`, 15).
    pub ingest_timeouts: FetchTimeouts,
    /// Who runs inbound jobs (`INBOUND_DISPATCH`).
    pub inbound_dispatch: InboundDispatch,
    /// Flex tokens at `/block-user` and `/unblock-user`: accepted only when set
    /// (`FLEX_TOKEN_VALIDATION_URL`, `FLEX_MODERATOR_ROLES`).
    pub flex: Option<FlexConfig>,
}

/// Who processes an inbound job once it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InboundDispatch {
    /// A task of this process (the local runner and tests): the answer does not
    /// wait for it.
    #[default]
    InProcess,
    /// The table's DynamoDB stream invokes media-events with the new job
    /// (`INBOUND_DISPATCH=stream`, as deployed: Lambda freezes a function once it
    /// has answered, so no task may outlive the answer).
    Stream,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            download_url_ttl: Duration::from_secs(300),
            thumbnail_time_limit: crate::thumbnail::TIME_LIMIT,
            unbound_media_ttl: Duration::from_secs(24 * 3600),
            max_unbound_uploads: 20,
            direct_upload_max_bytes: 4 * 1024 * 1024,
            single_put_max_bytes: 16 * 1024 * 1024,
            upload_part_size: 8 * 1024 * 1024,
            upload_url_ttl: Duration::from_secs(900),
            upload_session_ttl: Duration::from_secs(3600),
            webhook_allow_http: false,
            webhook_timeout: crate::webhook::DEFAULT_TIMEOUT,
            ingest_allowed_hosts: AllowedHosts::default(),
            ingest_timeouts: FetchTimeouts::default(),
            inbound_dispatch: InboundDispatch::InProcess,
            flex: None,
        }
    }
}

/// Where the AWS services are; endpoints are overridden for local runs and tests.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub dynamodb_endpoint: Option<String>,
    pub s3_endpoint: Option<String>,
    /// Fixed keys (local S3 checks SigV4 against them); otherwise the default chain.
    pub static_credentials: Option<(String, String)>,
}

/// Everything a handler needs, cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub blob: Blob,
    pub credentials: Arc<Credentials>,
    pub settings: Arc<Settings>,
    /// clamd, when configured; then no media becomes ready without a clean scan.
    pub scanner: Option<Scanner>,
    /// Calls service webhooks (signed, retried, bounded).
    pub webhooks: WebhookClient,
    /// The client for media URLs (uploads by URL, inbound messages).
    pub fetcher: Fetcher,
    /// Flex token validation with its cache, when `settings.flex` is set.
    pub flex: Option<Arc<FlexValidator>>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str) -> Result<String, ConfigError> {
    var(name).ok_or_else(|| ConfigError(format!("{name} must be set")))
}

fn bytes(name: &str, default: u64) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ConfigError(format!("{name} must be a whole number of bytes"))),
    }
}

fn secs(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| ConfigError(format!("{name} must be a whole number of seconds"))),
    }
}

/// `FLEX_TOKEN_VALIDATION_URL` (unset: Flex tokens are refused like any bad token;
/// `{AccountSid}` in it becomes the account's SID, e.g. Twilio's
/// [`crate::flex::DEFAULT_VALIDATION_URL`]) and `FLEX_MODERATOR_ROLES`
/// (comma-separated Flex roles that may moderate, default `supervisor,admin`).
pub fn flex_from_env() -> Result<Option<FlexConfig>, ConfigError> {
    let Some(url) = var("FLEX_TOKEN_VALIDATION_URL") else {
        return Ok(None);
    };
    let url = url.trim().to_owned();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError(
            "FLEX_TOKEN_VALIDATION_URL must be an http(s) URL".into(),
        ));
    }
    let moderator_roles: Vec<String> = match var("FLEX_MODERATOR_ROLES") {
        None => DEFAULT_MODERATOR_ROLES
            .iter()
            .map(|r| r.to_string())
            .collect(),
        Some(v) => v
            .split(',')
            .map(|r| r.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .collect(),
    };
    if moderator_roles.is_empty() {
        return Err(ConfigError(
            "FLEX_MODERATOR_ROLES must name at least one Flex role".into(),
        ));
    }
    Ok(Some(FlexConfig {
        validation_url: url,
        moderator_roles,
    }))
}

/// `CLAMD_ADDRESS` (`host:port` or `unix:/path`), `CLAMD_CONNECT_TIMEOUT_MS`,
/// `CLAMD_READ_TIMEOUT_MS`. `None` when no address is set: scanning is off.
pub fn scanner_from_env() -> Result<Option<Scanner>, ConfigError> {
    let millis = |name: &str, default: Duration| match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| {
                ConfigError(format!("{name} must be a positive number of milliseconds"))
            }),
    };
    let Some(address) = var("CLAMD_ADDRESS") else {
        return Ok(None);
    };
    let address = address
        .parse::<ClamdAddress>()
        .map_err(|e| ConfigError(format!("CLAMD_ADDRESS: {e}")))?;
    Ok(Some(Scanner::new(address).with_timeouts(
        millis("CLAMD_CONNECT_TIMEOUT_MS", DEFAULT_CONNECT_TIMEOUT)?,
        millis("CLAMD_READ_TIMEOUT_MS", DEFAULT_READ_TIMEOUT)?,
    )))
}

/// `CHAT_MEDIA_ACCOUNT_SID`, `CHAT_MEDIA_AUTH_TOKEN`, `CHAT_MEDIA_API_KEY_SID`,
/// `CHAT_MEDIA_API_KEY_SECRET` from the environment.
pub fn credentials_from_env() -> Result<Credentials, ConfigError> {
    Ok(Credentials::from_lookup(var)?)
}

impl From<CredentialsError> for ConfigError {
    fn from(e: CredentialsError) -> Self {
        ConfigError(e.to_string())
    }
}

/// The JSON object of the Secrets Manager secret `arn`: in a deployment the
/// credentials' secrets live there (`CHAT_MEDIA_SECRET_ARN`), read once per cold
/// start, instead of in plain Lambda environment variables. Its keys are the
/// variable names (`CHAT_MEDIA_AUTH_TOKEN`, `CHAT_MEDIA_API_KEY_SECRET`, …).
pub async fn secret_values(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<HashMap<String, String>, ConfigError> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            ConfigError(format!(
                "cannot read the secret CHAT_MEDIA_SECRET_ARN ({arn}): {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))
        })?;
    let text = out
        .secret_string()
        .ok_or_else(|| ConfigError(format!("the secret {arn} has no SecretString")))?;
    serde_json::from_str(text).map_err(|_| {
        ConfigError(format!(
            "the secret {arn} must be a JSON object of strings, e.g. {{\"CHAT_MEDIA_AUTH_TOKEN\": \"…\"}}"
        ))
    })
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Settings::default();
        Self {
            base_url: var("PUBLIC_BASE_URL")
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_default(),
            download_url_ttl: secs("DOWNLOAD_URL_TTL_SECS", d.download_url_ttl)?,
            thumbnail_time_limit: secs("THUMBNAIL_TIME_LIMIT_SECS", d.thumbnail_time_limit)?,
            unbound_media_ttl: secs("UNBOUND_MEDIA_TTL_SECS", d.unbound_media_ttl)?,
            max_unbound_uploads: match var("MAX_UNBOUND_UPLOADS") {
                None => d.max_unbound_uploads,
                Some(v) => v
                    .parse()
                    .map_err(|_| ConfigError("MAX_UNBOUND_UPLOADS must be a number".into()))?,
            },
            direct_upload_max_bytes: bytes("DIRECT_UPLOAD_MAX_BYTES", d.direct_upload_max_bytes)?,
            single_put_max_bytes: bytes("UPLOAD_SINGLE_PUT_MAX_BYTES", d.single_put_max_bytes)?,
            upload_part_size: bytes("UPLOAD_PART_SIZE_BYTES", d.upload_part_size)?,
            upload_url_ttl: secs("UPLOAD_URL_TTL_SECS", d.upload_url_ttl)?,
            upload_session_ttl: secs("UPLOAD_SESSION_TTL_SECS", d.upload_session_ttl)?,
            webhook_allow_http: var("WEBHOOK_ALLOW_HTTP").is_some_and(|v| v == "true"),
            webhook_timeout: match var("WEBHOOK_TIMEOUT_MS") {
                None => d.webhook_timeout,
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| (1..=10_000).contains(ms))
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        ConfigError("WEBHOOK_TIMEOUT_MS must be from 1 to 10000".into())
                    })?,
            },
            ingest_allowed_hosts: match var("INGEST_ALLOWED_HOSTS") {
                None => d.ingest_allowed_hosts,
                Some(v) => v
                    .parse()
                    .map_err(|e| ConfigError(format!("INGEST_ALLOWED_HOSTS: {e}")))?,
            },
            ingest_timeouts: FetchTimeouts {
                connect: secs("INGEST_CONNECT_TIMEOUT_SECS", d.ingest_timeouts.connect)?,
                stall: secs("INGEST_STALL_TIMEOUT_SECS", d.ingest_timeouts.stall)?,
            },
            inbound_dispatch: match var("INBOUND_DISPATCH").as_deref() {
                None | Some("in-process") => InboundDispatch::InProcess,
                Some("stream") => InboundDispatch::Stream,
                Some(_) => {
                    return Err(ConfigError(
                        "INBOUND_DISPATCH must be in-process or stream".into(),
                    ))
                }
            },
            flex: flex_from_env()?,
        }
        .checked()
    }

    /// Refuses upload settings S3 or the sweep cannot honour.
    pub fn checked(self) -> Result<Self, ConfigError> {
        const MIB: u64 = 1024 * 1024;
        if !(5 * MIB..=5 * 1024 * MIB).contains(&self.upload_part_size) {
            return Err(ConfigError(
                "UPLOAD_PART_SIZE_BYTES must be from 5 MiB to 5 GiB (S3's part sizes)".into(),
            ));
        }
        if self.single_put_max_bytes == 0 || self.direct_upload_max_bytes == 0 {
            return Err(ConfigError(
                "DIRECT_UPLOAD_MAX_BYTES and UPLOAD_SINGLE_PUT_MAX_BYTES must be positive".into(),
            ));
        }
        // A session must outlive its URLs, or the sweep could delete an object that a
        // still-valid URL then recreates.
        if self.upload_session_ttl <= self.upload_url_ttl
            || self.upload_url_ttl.is_zero()
            || self.upload_url_ttl > Duration::from_secs(7 * 24 * 3600)
        {
            return Err(ConfigError(
                "UPLOAD_URL_TTL_SECS must be from 1 s to 7 days and less than UPLOAD_SESSION_TTL_SECS"
                    .into(),
            ));
        }
        Ok(self)
    }
}

impl AwsOptions {
    /// `AWS_REGION`, `DYNAMODB_ENDPOINT`, `S3_ENDPOINT`.
    pub fn from_env() -> Self {
        Self {
            region: var("AWS_REGION"),
            dynamodb_endpoint: var("DYNAMODB_ENDPOINT"),
            s3_endpoint: var("S3_ENDPOINT"),
            static_credentials: None,
        }
    }

    /// Short timeouts and few retries: an unreachable store becomes a 503 in seconds.
    pub async fn sdk_config(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(
                self.region.clone().unwrap_or_else(|| "us-east-1".into()),
            ))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some((ak, sk)) = &self.static_credentials {
            loader = loader.credentials_provider(aws_credential_types::Credentials::from_keys(
                ak.clone(),
                sk.clone(),
                None,
            ));
        }
        loader.load().await
    }
}

impl AppState {
    pub fn new(
        sdk: &SdkConfig,
        aws: &AwsOptions,
        table: &str,
        bucket: &str,
        credentials: Credentials,
        settings: Settings,
    ) -> Self {
        let mut dynamo = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(crate::metrics::CountDynamoDbCalls);
        if let Some(endpoint) = &aws.dynamodb_endpoint {
            dynamo = dynamo.endpoint_url(endpoint);
        }
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk);
        if let Some(endpoint) = &aws.s3_endpoint {
            s3 = s3.endpoint_url(endpoint).force_path_style(true);
        }
        let webhooks = WebhookClient::new(settings.webhook_timeout);
        Self {
            webhooks,
            store: Store::new(aws_sdk_dynamodb::Client::from_conf(dynamo.build()), table),
            blob: Blob::new(aws_sdk_s3::Client::from_conf(s3.build()), bucket),
            flex: settings.flex.clone().map(|config| {
                Arc::new(FlexValidator::new(
                    config,
                    credentials.account_sid.as_str(),
                    &credentials.auth_token,
                ))
            }),
            credentials: Arc::new(credentials),
            fetcher: Fetcher::new(
                settings.ingest_allowed_hosts.clone(),
                settings.ingest_timeouts,
            ),
            settings: Arc::new(settings),
            scanner: None,
        }
    }

    /// Makes scanning mandatory with this clamd.
    pub fn with_scanner(mut self, scanner: Scanner) -> Self {
        self.scanner = Some(scanner);
        self
    }

    /// The state a Lambda cold start builds: `TABLE_NAME`, `BUCKET_NAME`, the above,
    /// and the scanner (`CLAMD_ADDRESS`, see [`scanner_from_env`]; `SCAN_REQUIRED=true`
    /// refuses to start without one).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let aws = AwsOptions::from_env();
        let sdk = aws.sdk_config().await;
        let scanner = scanner_from_env()?;
        if scanner.is_none() && var("SCAN_REQUIRED").is_some_and(|v| v == "true") {
            return Err(ConfigError(
                "SCAN_REQUIRED is true but CLAMD_ADDRESS is not set".into(),
            ));
        }
        let secrets = match var("CHAT_MEDIA_SECRET_ARN") {
            Some(arn) => {
                let client = aws_sdk_secretsmanager::Client::new(&sdk);
                secret_values(&client, &arn).await?
            }
            None => HashMap::new(),
        };
        // The secret's values win; what it lacks comes from the environment.
        let credentials =
            Credentials::from_lookup(|name| secrets.get(name).cloned().or_else(|| var(name)))?;
        let mut state = Self::new(
            &sdk,
            &aws,
            &required("TABLE_NAME")?,
            &required("BUCKET_NAME")?,
            credentials,
            Settings::from_env()?,
        );
        state.scanner = scanner;
        Ok(state)
    }

    /// Fires the pre-event `event` for an action on `service` by `who`: the one
    /// call an operation makes before it writes anything.
    pub async fn pre_event(
        &self,
        config: &crate::model::WebhookConfig,
        who: crate::webhook::Firing,
        event: &crate::webhook::Event,
    ) -> Result<crate::webhook::Proceed, crate::webhook::Refused> {
        self.webhooks
            .pre_event(&self.credentials.auth_token, config, who, event)
            .await
    }

    /// A new event with the service's common parameters.
    pub fn event(
        &self,
        name: &'static str,
        service: &crate::sid::ServiceSid,
        client_identity: Option<&crate::Identity>,
    ) -> crate::webhook::Event {
        crate::webhook::Event::new(
            name,
            self.credentials.account_sid.as_str(),
            service.as_str(),
            client_identity.map(|i| i.as_str()),
        )
    }

    /// The JSON view context with `PUBLIC_BASE_URL` (empty when unset: path-only
    /// URLs). Handlers render with [`AppState::view_at`] and the request's
    /// public origin instead, so URLs are absolute in every deployment.
    pub fn view(&self) -> crate::model::ViewCtx<'_> {
        self.view_at(&self.settings.base_url)
    }

    /// The JSON view context for a request whose public origin is `base_url`.
    pub fn view_at<'a>(&'a self, base_url: &'a str) -> crate::model::ViewCtx<'a> {
        crate::model::ViewCtx {
            base_url,
            account_sid: &self.credentials.account_sid,
        }
    }
}
