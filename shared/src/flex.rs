//! Flex's own tokens: a deployed Flex plugin sends the agent's Flex token (a JWE
//! Twilio issued) in the `Token` form field. Nothing here can decrypt it; Twilio's
//! token validation API says whether it is valid and whose it is, exactly as npm
//! `twilio-flex-token-validator` asks it: `POST {url}` with HTTP Basic
//! `AccountSid:AuthToken` and the JSON body `{"token": "…"}`; the answer is JSON
//! `{"valid", "code", "message", "expiration", "identity", "roles", "worker_sid", …}`.
//!
//! A valid answer is cached until the token's `expiration`, so a moderator's
//! clicks cost one validation per token, not one per click. Invalid answers are
//! not cached (a typo must not linger). Only callers whose Flex roles include one
//! of the configured moderator roles (`supervisor`, `admin` by default) may
//! moderate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Twilio's validation endpoint; `{AccountSid}` is replaced by the account's SID.
pub const DEFAULT_VALIDATION_URL: &str =
    "https://iam.twilio.com/v1/Accounts/{AccountSid}/Tokens/validate";

/// Flex roles that may moderate unless configured otherwise.
pub const DEFAULT_MODERATOR_ROLES: &[&str] = &["supervisor", "admin"];

/// Cached validations at most: beyond, expired entries go, then the oldest.
const MAX_CACHED: usize = 10_000;

/// How long one validation call may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a token is a compact JWE (five dot-separated parts), the shape of a
/// Flex token; our own access tokens are JWS (three parts).
pub fn looks_like_flex_token(token: &str) -> bool {
    token.split('.').count() == 5
}

/// How Flex tokens are checked (`FLEX_TOKEN_VALIDATION_URL`, `FLEX_MODERATOR_ROLES`).
#[derive(Debug, Clone, PartialEq)]
pub struct FlexConfig {
    /// The validation endpoint; `{AccountSid}` in it stands for the account's SID.
    pub validation_url: String,
    /// Flex roles that may moderate (lower case).
    pub moderator_roles: Vec<String>,
}

/// A Flex user whose token Twilio said is valid.
#[derive(Debug, Clone, PartialEq)]
pub struct FlexUser {
    pub identity: String,
    pub roles: Vec<String>,
    /// Unix seconds after which the token is no longer valid.
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FlexError {
    /// Twilio said the token is not valid (its message), or it has expired.
    #[error("the Flex token is not valid: {0}")]
    Invalid(String),
    /// The validation API could not be asked or gave no usable answer.
    #[error("the Flex token could not be validated: {0}")]
    Unavailable(String),
    /// Valid, but none of the user's Flex roles may moderate.
    #[error("Flex role(s) {0} may not moderate")]
    NotModerator(String),
}

/// Validates Flex tokens against Twilio's API, with a cache per process.
pub struct FlexValidator {
    config: FlexConfig,
    account_sid: String,
    auth_token: String,
    http: reqwest::Client,
    cache: Mutex<HashMap<[u8; 32], FlexUser>>,
}

impl std::fmt::Debug for FlexValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlexValidator")
            .field("config", &self.config)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct Answer {
    #[serde(default)]
    valid: bool,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

impl FlexValidator {
    pub fn new(config: FlexConfig, account_sid: &str, auth_token: &str) -> Self {
        let config = FlexConfig {
            validation_url: config.validation_url.replace("{AccountSid}", account_sid),
            ..config
        };
        Self {
            config,
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client without custom TLS settings builds"),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &FlexConfig {
        &self.config
    }

    /// The Flex user of a valid token whose roles may moderate.
    pub async fn moderator(&self, token: &str, now: i64) -> Result<FlexUser, FlexError> {
        let user = self.validate(token, now).await?;
        if user.roles.iter().any(|r| {
            self.config
                .moderator_roles
                .contains(&r.to_ascii_lowercase())
        }) {
            Ok(user)
        } else {
            Err(FlexError::NotModerator(if user.roles.is_empty() {
                "(none)".into()
            } else {
                user.roles.join(", ")
            }))
        }
    }

    /// Whose token this is, from the cache or from Twilio's validation API.
    pub async fn validate(&self, token: &str, now: i64) -> Result<FlexUser, FlexError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(user) = self.cached(&key, now) {
            return Ok(user);
        }
        let resp = self
            .http
            .post(&self.config.validation_url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header("Cache-Control", "no-cache")
            .json(&serde_json::json!({ "token": token }))
            .send()
            .await
            .map_err(|e| FlexError::Unavailable(without_url(e)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| FlexError::Unavailable(without_url(e)))?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            FlexError::Unavailable(format!("the validation API answered {status} without JSON"))
        })?;
        if !answer.valid {
            // The validator library rejects with the API's message; so do we.
            return Err(match (status.is_server_error(), answer.message) {
                (true, _) => {
                    FlexError::Unavailable(format!("the validation API answered {status}"))
                }
                (false, m) => FlexError::Invalid(m.unwrap_or_else(|| "not valid".into())),
            });
        }
        let expires_at = answer
            .expiration
            .as_deref()
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok())
            .map(|t| t.timestamp())
            .ok_or_else(|| FlexError::Unavailable("a valid answer without an expiration".into()))?;
        if expires_at <= now {
            return Err(FlexError::Invalid("the token has expired".into()));
        }
        let user = FlexUser {
            identity: answer.identity.filter(|i| !i.is_empty()).ok_or_else(|| {
                FlexError::Unavailable("a valid answer without an identity".into())
            })?,
            roles: answer.roles.unwrap_or_default(),
            expires_at,
        };
        self.remember(key, user.clone(), now);
        Ok(user)
    }

    fn cached(&self, key: &[u8; 32], now: i64) -> Option<FlexUser> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).filter(|u| u.expires_at > now).cloned()
    }

    fn remember(&self, key: [u8; 32], user: FlexUser, now: i64) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, u| u.expires_at > now);
        }
        if cache.len() >= MAX_CACHED {
            if let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, u)| u.expires_at)
                .map(|(k, _)| *k)
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(key, user);
    }
}

/// A transport error without the URL (which names the account).
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_tokens_are_told_from_ours_by_shape() {
        assert!(looks_like_flex_token("a.b.c.d.e"));
        assert!(!looks_like_flex_token("a.b.c"));
        assert!(!looks_like_flex_token(""));
    }
}
