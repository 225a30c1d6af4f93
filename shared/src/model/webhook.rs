//! A service's webhook settings (Twilio's `PreWebhookUrl`, `PostWebhookUrl`,
//! `WebhookMethod`, `WebhookFilters`, retry counts) plus two of ours
//! (`PreWebhookFailOpen`, `PreWebhookForRest`), kept apart from the other
//! service settings so each can grow without touching the other.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Longest webhook URL accepted (Twilio's URL parameters).
pub const MAX_WEBHOOK_URL: usize = 2048;

/// Most retries of one delivery: with a 5 s timeout, more would outlive a Lambda.
pub const MAX_RETRY_COUNT: u32 = 3;

/// Twilio's pre-events (blocking; the hook may veto or modify the action).
pub const PRE_EVENTS: &[&str] = &[
    "onMessageSend",
    "onMediaMessageSend",
    "onMessageUpdate",
    "onMessageRemove",
    "onChannelAdd",
    "onChannelUpdate",
    "onChannelDestroy",
    "onMemberAdd",
    "onMemberUpdate",
    "onMemberRemove",
    "onUserUpdate",
];

/// Twilio's post-events (informational, after the commit).
pub const POST_EVENTS: &[&str] = &[
    "onMessageSent",
    "onMediaMessageSent",
    "onMessageUpdated",
    "onMessageRemoved",
    "onChannelAdded",
    "onChannelUpdated",
    "onChannelDestroyed",
    "onMemberAdded",
    "onMemberUpdated",
    "onMemberRemoved",
    "onUserAdded",
    "onUserUpdated",
];

/// Ours: Flex's client-side before-action hooks, run on the server (pre-events).
pub const MEDIA_EVENTS: &[&str] = &["onMediaUpload", "onMediaDownload"];

/// Whether `name` is a post-event (what a channel webhook's filters may list).
pub fn is_post_event(name: &str) -> bool {
    POST_EVENTS.contains(&name)
}

/// Whether `name` is an event a filter may list.
pub fn is_event(name: &str) -> bool {
    PRE_EVENTS
        .iter()
        .chain(POST_EVENTS)
        .chain(MEDIA_EVENTS)
        .any(|e| *e == name)
}

/// The `&'static` name of a known event (stored events come back as text).
pub fn event_name(name: &str) -> Option<&'static str> {
    PRE_EVENTS
        .iter()
        .chain(POST_EVENTS)
        .chain(MEDIA_EVENTS)
        .find(|e| **e == name)
        .copied()
}

/// A post-event waiting in the outbox: written in the same transaction as the
/// change it reports, delivered (at least once) by the dispatcher, deleted once
/// the hook answered 2xx or its retries ran out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Random, unique; also the delivery's `I-Twilio-Idempotency-Token`, the same
    /// on every retry and redelivery.
    pub id: String,
    pub service_sid: crate::sid::ServiceSid,
    /// Events of one channel are delivered in the order they were written.
    pub channel_sid: Option<crate::sid::ChannelSid>,
    pub event: String,
    pub url: WebhookUrl,
    pub method: WebhookMethod,
    pub params: Vec<(String, String)>,
    pub retry_count: u32,
    /// When written, in milliseconds: the delivery order.
    pub created_ms: i64,
    #[serde(default)]
    pub attempts: u32,
    /// Epoch seconds before which it is not retried (backoff).
    #[serde(default)]
    pub next_attempt_at: i64,
    /// Epoch seconds until which a dispatcher holds it.
    #[serde(default)]
    pub lease_until: i64,
}

impl OutboxEvent {
    pub fn new_id() -> String {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }
}

/// How the hook is called: `POST` (form body) or `GET` (query string).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookMethod {
    #[default]
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "GET")]
    Get,
}

impl WebhookMethod {
    pub fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_uppercase().as_str() {
            "POST" => Some(Self::Post),
            "GET" => Some(Self::Get),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Get => "GET",
        }
    }
}

/// A URL a webhook may be sent to: absolute `https`, or `http` to the local
/// machine (development) or where the deployment allows it; at most 2048 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookUrl(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    #[error("must be at most {MAX_WEBHOOK_URL} characters")]
    TooLong,
    #[error("must be an absolute URL such as https://hooks.example.com/chat")]
    NotAbsolute,
    #[error("must use https (http only to localhost or 127.0.0.1)")]
    NotHttps,
    #[error("must not carry a fragment")]
    Fragment,
}

impl WebhookUrl {
    /// `allow_http`: the deployment accepts plain `http` to any host
    /// (`WEBHOOK_ALLOW_HTTP=true`).
    pub fn parse(value: &str, allow_http: bool) -> Result<Self, WebhookUrlError> {
        if value.chars().count() > MAX_WEBHOOK_URL {
            return Err(WebhookUrlError::TooLong);
        }
        let url = url::Url::parse(value).map_err(|_| WebhookUrlError::NotAbsolute)?;
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(WebhookUrlError::NotAbsolute);
        };
        match url.scheme() {
            "https" => {}
            "http" if allow_http || matches!(host, "localhost" | "127.0.0.1" | "[::1]") => {}
            "http" => return Err(WebhookUrlError::NotHttps),
            _ => return Err(WebhookUrlError::NotAbsolute),
        }
        if url.fragment().is_some() {
            return Err(WebhookUrlError::Fragment);
        }
        // Kept as given: the signature covers the URL exactly as configured.
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WebhookUrl {
    type Error = WebhookUrlError;
    /// Stored URLs were checked when set; only the shape is checked again.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value, true)
    }
}

impl From<WebhookUrl> for String {
    fn from(url: WebhookUrl) -> Self {
        url.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The service's webhook settings, stored inside the service record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    pub pre_url: Option<WebhookUrl>,
    pub post_url: Option<WebhookUrl>,
    pub method: Option<WebhookMethod>,
    /// Event names that fire; an event not listed never fires.
    pub filters: Vec<String>,
    pub pre_retry_count: u32,
    pub post_retry_count: u32,
    /// No answer from the pre-event hook lets the action proceed (default: refused).
    pub pre_fail_open: bool,
    /// Admin REST actions fire pre-events too (Twilio's never do).
    pub pre_for_rest: bool,
}

impl WebhookConfig {
    pub fn method(&self) -> WebhookMethod {
        self.method.unwrap_or_default()
    }

    /// Whether `event` is listed in the filters.
    pub fn fires(&self, event: &str) -> bool {
        self.filters.iter().any(|f| f == event)
    }

    /// The pre-event hook to call for `event`, if one is set and the event is listed.
    pub fn pre_hook(&self, event: &str) -> Option<&WebhookUrl> {
        self.pre_url.as_ref().filter(|_| self.fires(event))
    }

    /// The post-event hook to call for `event`, if one is set and the event is listed.
    pub fn post_hook(&self, event: &str) -> Option<&WebhookUrl> {
        self.post_url.as_ref().filter(|_| self.fires(event))
    }

    /// The service JSON's webhook fields, as Twilio names them (plus ours).
    pub fn json_fields(&self) -> Value {
        json!({
            "pre_webhook_url": self.pre_url.as_ref().map(WebhookUrl::as_str),
            "post_webhook_url": self.post_url.as_ref().map(WebhookUrl::as_str),
            "webhook_method": self.method.map(WebhookMethod::as_str),
            "webhook_filters": self.filters,
            "pre_webhook_retry_count": self.pre_retry_count,
            "post_webhook_retry_count": self.post_retry_count,
            "pre_webhook_fail_open": self.pre_fail_open,
            "pre_webhook_for_rest": self.pre_for_rest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_local_http() {
        assert!(WebhookUrl::parse("https://hooks.example.com/chat?x=1", false).is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", false).is_ok());
        assert!(WebhookUrl::parse("http://localhost/hook", false).is_ok());
        assert_eq!(
            WebhookUrl::parse("http://hooks.example.com/", false),
            Err(WebhookUrlError::NotHttps)
        );
        assert!(WebhookUrl::parse("http://hooks.example.com/", true).is_ok());
        for bad in [
            "",
            "/relative",
            "ftp://x.example/",
            "https://",
            "javascript:alert(1)",
        ] {
            assert!(WebhookUrl::parse(bad, true).is_err(), "{bad}");
        }
        assert!(WebhookUrl::parse("https://x.example/#frag", false).is_err());
        let long = format!("https://x.example/{}", "a".repeat(MAX_WEBHOOK_URL));
        assert_eq!(
            WebhookUrl::parse(&long, false),
            Err(WebhookUrlError::TooLong)
        );
    }

    #[test]
    fn only_listed_events_fire() {
        let cfg = WebhookConfig {
            pre_url: Some(WebhookUrl::parse("https://h.example/pre", false).unwrap()),
            filters: vec!["onMessageSend".into()],
            ..Default::default()
        };
        assert!(cfg.pre_hook("onMessageSend").is_some());
        assert!(cfg.pre_hook("onMemberAdd").is_none());
        assert!(cfg.post_hook("onMessageSend").is_none());
        assert!(is_event("onMediaUpload") && is_event("onUserAdded") && !is_event("onFoo"));
    }
}
