//! Domain records (stored as-is in DynamoDB) and their Twilio JSON views.

mod channel;
mod channel_webhook;
mod inbound;
mod media;
mod member;
mod message;
mod quarantine;
mod refusal;
mod role;
mod service;
mod user;
mod webhook;

pub use channel::{Channel, ChannelType, NewChannel};
pub use channel_webhook::{
    ChannelWebhook, ChannelWebhookType, ChannelWebhooks, MAX_CHANNEL_WEBHOOKS, MAX_FILTERS,
    MAX_TRIGGERS, MAX_TRIGGER_CHARS,
};
pub use inbound::{
    parse_inbound_sid, InboundJob, InboundKind, InboundMedia, InboundStatus, MediaOutcome,
    MAX_INBOUND_MEDIA,
};
pub use media::{Media, MediaStatus, NewUpload, QuotaCharge, UploadSession};
pub use member::Member;
pub use message::{Message, MessageMedia};
pub use quarantine::{QuarantinedHash, Sha256, Sha256Error};
pub use refusal::{infected_reason, Refusal};
pub use role::Role;
pub use service::{
    ChatSettings, MediaQuotas, MediaSettings, NotificationSettings, Notifications, Service,
    ServiceLimits, DEFAULT_QUOTA_WINDOW_HOURS, MAX_MEDIA_SIZE_MB, MAX_QUOTA_WINDOW_HOURS,
    MAX_RETENTION_DAYS, MAX_SERVICE_LIMIT,
};
pub use user::User;
pub use webhook::{
    event_name, is_event, is_post_event, OutboxEvent, WebhookConfig, WebhookMethod, WebhookUrl,
    WebhookUrlError, MAX_RETRY_COUNT, MAX_WEBHOOK_URL,
};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::sid::AccountSid;

/// What a JSON view needs besides the record: where the API lives and whose account it is.
#[derive(Debug, Clone, Copy)]
pub struct ViewCtx<'a> {
    /// Absolute base such as `https://api.example.com`, or empty for path-only URLs.
    pub base_url: &'a str,
    pub account_sid: &'a AccountSid,
}

impl ViewCtx<'_> {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

/// Twilio's ISO-8601 UTC form, to the second: `2015-12-16T22:18:37Z`.
pub fn iso(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A record date.
pub type Timestamp = DateTime<Utc>;

/// Now, to the millisecond (what DynamoDB keeps and the views round).
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}
