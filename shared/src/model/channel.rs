use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{iso, ViewCtx};
use crate::identity::Identity;
use crate::sid::{ChannelSid, ServiceSid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    Public,
    Private,
}

impl std::str::FromStr for ChannelType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "public" => Ok(ChannelType::Public),
            "private" => Ok(ChannelType::Private),
            other => Err(format!(
                "'{other}' is not a channel type (public or private)"
            )),
        }
    }
}

impl ChannelType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Public => "public",
            ChannelType::Private => "private",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub sid: ChannelSid,
    pub service_sid: ServiceSid,
    pub friendly_name: Option<String>,
    pub unique_name: Option<String>,
    pub attributes: String,
    #[serde(rename = "type")]
    pub channel_type: ChannelType,
    pub created_by: Identity,
    pub members_count: u64,
    pub messages_count: u64,
    /// The index the next message gets; only ever grows.
    pub next_message_index: u64,
    /// Set when a delete has started: no message or member may be added any more,
    /// and a repeated delete resumes the cascade.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

/// What a new channel is made of; the rest starts empty.
#[derive(Debug, Clone)]
pub struct NewChannel {
    pub friendly_name: Option<String>,
    pub unique_name: Option<String>,
    pub attributes: String,
    pub channel_type: ChannelType,
    pub created_by: Identity,
}

impl Channel {
    /// A new, empty channel.
    pub fn new(
        sid: ChannelSid,
        service_sid: ServiceSid,
        new: NewChannel,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            sid,
            service_sid,
            friendly_name: new.friendly_name,
            unique_name: new.unique_name,
            attributes: new.attributes,
            channel_type: new.channel_type,
            created_by: new.created_by,
            members_count: 0,
            messages_count: 0,
            next_message_index: 0,
            deleting: false,
            date_created: now,
            date_updated: now,
        }
    }

    pub fn path(&self) -> String {
        format!("/v2/Services/{}/Channels/{}", self.service_sid, self.sid)
    }

    pub fn to_json(&self, ctx: ViewCtx<'_>) -> Value {
        let url = ctx.url(&self.path());
        json!({
            "sid": self.sid,
            "account_sid": ctx.account_sid,
            "service_sid": self.service_sid,
            "friendly_name": self.friendly_name,
            "unique_name": self.unique_name,
            "attributes": self.attributes,
            "type": self.channel_type.as_str(),
            "created_by": self.created_by,
            "members_count": self.members_count,
            "messages_count": self.messages_count,
            "date_created": iso(&self.date_created),
            "date_updated": iso(&self.date_updated),
            "url": url,
            "links": {
                "members": format!("{url}/Members"),
                "messages": format!("{url}/Messages"),
                "invites": format!("{url}/Invites"),
                "webhooks": format!("{url}/Webhooks"),
                "last_message": null,
            },
        })
    }
}
