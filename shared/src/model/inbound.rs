//! The durable record of an inbound message (Twilio's messaging webhook) or of an
//! upload by URL: what arrived, and how far its processing got. Its media SIDs
//! and message SIDs are derived from the inbound `MessageSid`, so processing it
//! again (a crash resumed by the sweep, a duplicated stream event) finds what an
//! earlier run made instead of making it twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{iso, ViewCtx};
use crate::identity::Identity;
use crate::sid::{ChannelSid, MediaSid, MessageSid, ServiceSid};

/// Twilio Messaging sends at most 10 media per message.
pub const MAX_INBOUND_MEDIA: usize = 10;

/// Where the job came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundKind {
    /// Twilio's inbound messaging webhook: messages in a channel.
    Webhook,
    /// `POST …/Media` with `MediaUrl`: one media, no message.
    Url,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundStatus {
    Pending,
    Done,
    Failed,
}

impl InboundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InboundStatus::Pending => "pending",
            InboundStatus::Done => "done",
            InboundStatus::Failed => "failed",
        }
    }
}

/// How one media ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaOutcome {
    /// Checked, scanned and bound to its message.
    Ready,
    /// Refused: too large, a type the service refuses, infected, or a URL we may
    /// not fetch.
    Refused,
    /// Could not be fetched or stored after retries.
    Failed,
}

/// One media of an inbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMedia {
    pub index: u32,
    pub url: String,
    /// `MediaContentType{N}` as Twilio sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub media_sid: MediaSid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<MediaOutcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The job of one inbound message or upload by URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundJob {
    pub service_sid: ServiceSid,
    /// Twilio's `MessageSid` (`SM…`/`MM…`), or the media SID of an upload by URL.
    pub key: String,
    pub kind: InboundKind,
    /// The sender (`From`), a member of the channel; `system` for uploads by URL.
    pub from: Identity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `ChannelSid` of the webhook URL (a SID or unique name), when the caller
    /// chose the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub media: Vec<InboundMedia>,
    pub status: InboundStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_sid: Option<ChannelSid>,
    /// Messages posted so far, in order.
    #[serde(default)]
    pub messages: Vec<MessageSid>,
    /// Runs started (the first by the webhook, more by the sweep after a crash).
    #[serde(default)]
    pub attempts: u32,
    /// Lease of the run in progress (epoch seconds); 0 when none holds it.
    #[serde(default)]
    pub working_until: i64,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

/// A Twilio message SID as the webhook sends it: `SM` or `MM` and 32 hex digits.
pub fn parse_inbound_sid(s: &str) -> Result<String, String> {
    let ok = s.len() == 34
        && (s.starts_with("SM") || s.starts_with("MM"))
        && s[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(s.to_owned())
    } else {
        Err("must be SM or MM followed by 32 hexadecimal digits".into())
    }
}

/// A SID with `prefix` derived from `parts`: the same inputs give the same SID.
fn derived(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    format!("{prefix}{}", &hex::encode(h.finalize())[..32])
}

impl InboundJob {
    /// The media SID of media `index` of an inbound message of `service`.
    pub fn media_sid_for(service: &ServiceSid, key: &str, index: u32) -> MediaSid {
        MediaSid::parse(&derived("ME", &[service.as_str(), key, &index.to_string()]))
            .expect("a derived SID is well formed")
    }

    /// The SID of the message for `part` (`body`, or `media-<index>`).
    pub fn message_sid_for(&self, part: &str) -> MessageSid {
        MessageSid::parse(&derived(
            "IM",
            &[self.service_sid.as_str(), &self.key, part],
        ))
        .expect("a derived SID is well formed")
    }

    pub fn path(&self) -> String {
        format!(
            "/v2/Services/{}/InboundMessages/{}",
            self.service_sid, self.key
        )
    }

    /// The status view (`GET …/InboundMessages/{MessageSid}`).
    pub fn to_json(&self, ctx: ViewCtx<'_>) -> Value {
        json!({
            "message_sid": self.key,
            "account_sid": ctx.account_sid,
            "service_sid": self.service_sid,
            "kind": self.kind,
            "from": self.from,
            "to": self.to,
            "channel_sid": self.channel_sid,
            "status": self.status.as_str(),
            "status_reason": self.status_reason,
            "media": self.media.iter().map(|m| json!({
                "index": m.index,
                "media_sid": m.media_sid,
                "content_type": m.content_type,
                "outcome": m.outcome,
                "reason": m.reason,
            })).collect::<Vec<_>>(),
            "messages": self.messages,
            "attempts": self.attempts,
            "date_created": iso(&self.date_created),
            "date_updated": iso(&self.date_updated),
            "url": ctx.url(&self.path()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_sids_are_twilio_message_sids() {
        assert!(parse_inbound_sid(&format!("SM{}", "a".repeat(32))).is_ok());
        assert!(parse_inbound_sid(&format!("MM{}", "0".repeat(32))).is_ok());
        assert!(parse_inbound_sid(&format!("IM{}", "0".repeat(32))).is_err());
        assert!(parse_inbound_sid("SM123").is_err());
        assert!(parse_inbound_sid(&format!("SM{}", "g".repeat(32))).is_err());
    }

    #[test]
    fn derived_sids_are_stable_and_distinct() {
        let service = ServiceSid::generate();
        let a = InboundJob::media_sid_for(&service, "SM1", 0);
        assert_eq!(a, InboundJob::media_sid_for(&service, "SM1", 0));
        assert_ne!(a, InboundJob::media_sid_for(&service, "SM1", 1));
        assert_ne!(
            a,
            InboundJob::media_sid_for(&ServiceSid::generate(), "SM1", 0)
        );
    }
}
