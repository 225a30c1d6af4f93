//! Twilio's channel-scoped webhooks (`/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Webhooks`):
//! up to five per channel, each receiving the post-events of its channel. All of
//! a channel's webhooks live in one item of the channel's partition, so a send
//! reads them in the same BatchGetItem as the channel, and they go with it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::webhook::{WebhookMethod, WebhookUrl};
use super::{iso, ViewCtx};
use crate::sid::{ChannelSid, ServiceSid, WebhookSid};

/// Twilio's limit of webhooks per channel.
pub const MAX_CHANNEL_WEBHOOKS: usize = 5;

/// Longest trigger keyword, and most keywords or filters per webhook.
pub const MAX_TRIGGER_CHARS: usize = 256;
/// Most trigger keywords per webhook (Twilio's limit on conversation webhooks: 5).
pub const MAX_TRIGGERS: usize = 5;
pub const MAX_FILTERS: usize = 32;

/// Twilio's `Type`: `webhook` (filtered events), `trigger` (keywords in a
/// message body), `studio` (a Studio flow: stored and rendered, never invoked
/// here, since Studio is Twilio's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelWebhookType {
    Webhook,
    Trigger,
    Studio,
}

impl ChannelWebhookType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Trigger => "trigger",
            Self::Studio => "studio",
        }
    }
}

impl FromStr for ChannelWebhookType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "webhook" => Ok(Self::Webhook),
            "trigger" => Ok(Self::Trigger),
            "studio" => Ok(Self::Studio),
            _ => Err("must be webhook, trigger or studio".into()),
        }
    }
}

impl fmt::Display for ChannelWebhookType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One channel-scoped webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelWebhook {
    pub sid: WebhookSid,
    #[serde(rename = "type")]
    pub kind: ChannelWebhookType,
    /// `Configuration.Url` (required for `webhook` and `trigger`).
    pub url: Option<WebhookUrl>,
    pub method: WebhookMethod,
    /// `Configuration.Filters`: post-event names (`webhook` type).
    pub filters: Vec<String>,
    /// `Configuration.Triggers`: keywords (`trigger` type).
    pub triggers: Vec<String>,
    /// `Configuration.FlowSid` (`studio` type).
    pub flow_sid: Option<String>,
    pub retry_count: u32,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

impl ChannelWebhook {
    /// Whether this webhook receives `event` about a message with `body`:
    /// `webhook` type when its filters list the event; `trigger` type for
    /// `onMessageSent` whose body holds one of its keywords as a word (case
    /// ignored); `studio` never (not invoked here).
    pub fn receives(&self, event: &str, body: Option<&str>) -> bool {
        match self.kind {
            ChannelWebhookType::Webhook => self.filters.iter().any(|f| f == event),
            ChannelWebhookType::Trigger => {
                event == "onMessageSent"
                    && body.is_some_and(|b| {
                        b.split(|c: char| !c.is_alphanumeric() && c != '_' && c != '-')
                            .filter(|w| !w.is_empty())
                            .any(|w| self.triggers.iter().any(|t| t.eq_ignore_ascii_case(w)))
                    })
            }
            ChannelWebhookType::Studio => false,
        }
    }

    /// Twilio's ChannelWebhook JSON.
    pub fn to_json(&self, service: &ServiceSid, channel: &ChannelSid, ctx: ViewCtx<'_>) -> Value {
        let mut configuration = serde_json::Map::new();
        if let Some(url) = &self.url {
            configuration.insert("url".into(), json!(url.as_str()));
            configuration.insert("method".into(), json!(self.method.as_str()));
        }
        if self.kind == ChannelWebhookType::Webhook {
            configuration.insert("filters".into(), json!(self.filters));
        }
        if self.kind == ChannelWebhookType::Trigger {
            configuration.insert("triggers".into(), json!(self.triggers));
        }
        if let Some(flow) = &self.flow_sid {
            configuration.insert("flow_sid".into(), json!(flow));
        }
        configuration.insert("retry_count".into(), json!(self.retry_count));
        json!({
            "sid": self.sid,
            "account_sid": ctx.account_sid,
            "service_sid": service,
            "channel_sid": channel,
            "type": self.kind.as_str(),
            "configuration": configuration,
            "date_created": iso(&self.date_created),
            "date_updated": iso(&self.date_updated),
            "url": ctx.url(&format!(
                "/v2/Services/{service}/Channels/{channel}/Webhooks/{}",
                self.sid
            )),
        })
    }
}

/// All webhooks of one channel, as stored (one item); `version` guards
/// concurrent changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelWebhooks {
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub webhooks: Vec<ChannelWebhook>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(kind: ChannelWebhookType) -> ChannelWebhook {
        ChannelWebhook {
            sid: WebhookSid::generate(),
            kind,
            url: Some(WebhookUrl::parse("https://h.example/x", false).unwrap()),
            method: WebhookMethod::Post,
            filters: vec!["onMessageSent".into()],
            triggers: vec!["help".into(), "urgent".into()],
            flow_sid: None,
            retry_count: 0,
            date_created: crate::model::now(),
            date_updated: crate::model::now(),
        }
    }

    #[test]
    fn triggers_match_whole_words_in_the_body() {
        let t = hook(ChannelWebhookType::Trigger);
        assert!(t.receives("onMessageSent", Some("I need HELP now")));
        assert!(t.receives("onMessageSent", Some("urgent!")));
        assert!(!t.receives("onMessageSent", Some("helpful")));
        assert!(!t.receives("onMessageUpdated", Some("help")));
        let w = hook(ChannelWebhookType::Webhook);
        assert!(w.receives("onMessageSent", None));
        assert!(!w.receives("onMemberAdded", None));
        assert!(!hook(ChannelWebhookType::Studio).receives("onMessageSent", Some("help")));
    }
}
