use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{iso, ViewCtx};
use super::{Channel, Media};
use crate::filename::Filename;
use crate::identity::Identity;
use crate::sid::{ChannelSid, MediaSid, MessageSid, ServiceSid};

/// The media summary a message carries, copied from the Media when bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageMedia {
    pub sid: MediaSid,
    pub size: u64,
    pub content_type: String,
    pub filename: Option<Filename>,
    /// Set when the media's content is gone but the message stays: `quarantined`
    /// (taken down by an admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<String>,
    /// The media's bytes count in the service's stored total
    /// (`Media.QuotaBytesPerService`): deleting the message gives them back.
    /// Cleared when the content is removed another way (quarantine, retention).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quota_counted: bool,
}

impl MessageMedia {
    /// The summary as a message shows it: the stored fields but the quota bookkeeping.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = out.as_object_mut() {
            o.remove("quota_counted");
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub sid: MessageSid,
    pub service_sid: ServiceSid,
    pub channel_sid: ChannelSid,
    pub index: u64,
    pub from: Identity,
    pub body: Option<String>,
    pub attributes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MessageMedia>,
    pub was_edited: bool,
    /// Who last changed the message (Twilio's `last_updated_by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_by: Option<String>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

impl Message {
    /// A text message at the channel's next index.
    pub fn text(
        sid: MessageSid,
        channel: &Channel,
        from: Identity,
        body: String,
        attributes: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            sid,
            service_sid: channel.service_sid.clone(),
            channel_sid: channel.sid.clone(),
            index: channel.next_message_index,
            from,
            body: Some(body),
            attributes,
            media: None,
            was_edited: false,
            last_updated_by: None,
            date_created: now,
            date_updated: now,
        }
    }

    /// A media message at the channel's next index; its body is the service's
    /// placeholder text.
    pub fn media(
        sid: MessageSid,
        channel: &Channel,
        from: Identity,
        placeholder: String,
        media: &Media,
        attributes: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            media: Some(MessageMedia {
                sid: media.sid.clone(),
                size: media.size,
                content_type: media.content_type.clone(),
                filename: media.filename.clone(),
                removed: None,
                quota_counted: media.quota.is_some_and(|q| q.service),
            }),
            ..Self::text(sid, channel, from, placeholder, attributes, now)
        }
    }

    pub fn to_json(&self, ctx: ViewCtx<'_>) -> Value {
        json!({
            "sid": self.sid,
            "account_sid": ctx.account_sid,
            "service_sid": self.service_sid,
            "channel_sid": self.channel_sid,
            "to": self.channel_sid,
            "from": self.from,
            "body": self.body,
            "attributes": self.attributes,
            "index": self.index,
            "type": if self.media.is_some() { "media" } else { "text" },
            "media": self.media.as_ref().map(MessageMedia::to_json),
            "was_edited": self.was_edited,
            "last_updated_by": self.last_updated_by,
            "date_created": iso(&self.date_created),
            "date_updated": iso(&self.date_updated),
            "url": ctx.url(&format!(
                "/v2/Services/{}/Channels/{}/Messages/{}",
                self.service_sid, self.channel_sid, self.sid
            )),
        })
    }
}
