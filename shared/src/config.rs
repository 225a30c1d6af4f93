//! Configuration from the environment, turned once per cold start into the
//! [`AppState`] every handler shares.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::auth::{Credentials, DEFAULT_CLOCK_SKEW_SECS, MAX_CLOCK_SKEW_SECS};
use crate::blob::Blob;
use crate::scan::{ClamdAddress, Scanner, DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT};
use crate::sid::{AccountSid, ApiKeySid};
use crate::store::Store;

/// Tunables with production defaults; each has an environment variable (README).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Prefix of every `url` in responses (`PUBLIC_BASE_URL`); empty gives paths only.
    pub base_url: String,
    /// Lifetime of presigned download URLs (`DOWNLOAD_URL_TTL_SECS`, 300).
    pub download_url_ttl: Duration,
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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            download_url_ttl: Duration::from_secs(300),
            unbound_media_ttl: Duration::from_secs(24 * 3600),
            max_unbound_uploads: 20,
            direct_upload_max_bytes: 4 * 1024 * 1024,
            single_put_max_bytes: 16 * 1024 * 1024,
            upload_part_size: 8 * 1024 * 1024,
            upload_url_ttl: Duration::from_secs(900),
            upload_session_ttl: Duration::from_secs(3600),
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

impl Credentials {
    /// `CHAT_MEDIA_ACCOUNT_SID`, `CHAT_MEDIA_AUTH_TOKEN`, `CHAT_MEDIA_API_KEY_SID`,
    /// `CHAT_MEDIA_API_KEY_SECRET`, and `TOKEN_CLOCK_SKEW_SECS` (the leeway for a
    /// token's `nbf`/`iat`, default 60, at most 300).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The same variables, read through `lookup` (blank counts as unset): a caller
    /// with its own defaults passes a lookup that falls back to them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError(format!("{name} must be set")))
        };
        let account_sid = AccountSid::parse(&required("CHAT_MEDIA_ACCOUNT_SID")?)
            .map_err(|e| ConfigError(format!("CHAT_MEDIA_ACCOUNT_SID: {e}")))?;
        let api_key_sid = ApiKeySid::parse(&required("CHAT_MEDIA_API_KEY_SID")?)
            .map_err(|e| ConfigError(format!("CHAT_MEDIA_API_KEY_SID: {e}")))?;
        let auth_token = required("CHAT_MEDIA_AUTH_TOKEN")?;
        let api_key_secret = required("CHAT_MEDIA_API_KEY_SECRET")?;
        if auth_token.len() < 16 || api_key_secret.len() < 16 {
            return Err(ConfigError(
                "CHAT_MEDIA_AUTH_TOKEN and CHAT_MEDIA_API_KEY_SECRET must be at least 16 characters"
                    .into(),
            ));
        }
        let clock_skew_secs = match lookup("TOKEN_CLOCK_SKEW_SECS").filter(|v| !v.trim().is_empty())
        {
            None => DEFAULT_CLOCK_SKEW_SECS,
            Some(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|s| (0..=MAX_CLOCK_SKEW_SECS).contains(s))
                .ok_or_else(|| {
                    ConfigError(format!(
                        "TOKEN_CLOCK_SKEW_SECS must be a whole number of seconds from 0 to {MAX_CLOCK_SKEW_SECS}"
                    ))
                })?,
        };
        Ok(Self {
            account_sid,
            auth_token,
            api_key_sid,
            api_key_secret,
            clock_skew_secs,
        })
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Settings::default();
        Self {
            base_url: var("PUBLIC_BASE_URL")
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_default(),
            download_url_ttl: secs("DOWNLOAD_URL_TTL_SECS", d.download_url_ttl)?,
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
                    .operation_timeout(Duration::from_secs(25))
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
        Self {
            store: Store::new(aws_sdk_dynamodb::Client::from_conf(dynamo.build()), table),
            blob: Blob::new(aws_sdk_s3::Client::from_conf(s3.build()), bucket),
            credentials: Arc::new(credentials),
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
        let mut state = Self::new(
            &sdk,
            &aws,
            &required("TABLE_NAME")?,
            &required("BUCKET_NAME")?,
            Credentials::from_env()?,
            Settings::from_env()?,
        );
        state.scanner = scanner;
        Ok(state)
    }

    pub fn view(&self) -> crate::model::ViewCtx<'_> {
        crate::model::ViewCtx {
            base_url: &self.settings.base_url,
            account_sid: &self.credentials.account_sid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(skew: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
        move |name| {
            match name {
                "CHAT_MEDIA_ACCOUNT_SID" => Some("AC00000000000000000000000000000001"),
                "CHAT_MEDIA_API_KEY_SID" => Some("SK00000000000000000000000000000001"),
                "CHAT_MEDIA_AUTH_TOKEN" | "CHAT_MEDIA_API_KEY_SECRET" => Some("0123456789abcdef"),
                "TOKEN_CLOCK_SKEW_SECS" => skew,
                _ => None,
            }
            .map(str::to_owned)
        }
    }

    #[test]
    fn token_clock_skew_defaults_to_a_minute_and_is_bounded() {
        let skew = |v| Credentials::from_lookup(lookup(v)).map(|c| c.clock_skew_secs);
        assert_eq!(skew(None).unwrap(), 60);
        assert_eq!(skew(Some(" ")).unwrap(), 60);
        assert_eq!(skew(Some("0")).unwrap(), 0);
        assert_eq!(skew(Some("300")).unwrap(), 300);
        for bad in ["301", "-1", "1.5", "soon"] {
            let e = skew(Some(bad)).unwrap_err();
            assert!(e.0.contains("TOKEN_CLOCK_SKEW_SECS"), "{e}");
        }
    }
}
