use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{iso, Channel, ViewCtx};
use crate::identity::Identity;
use crate::sid::{ChannelSid, MemberSid, RoleSid, ServiceSid};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub sid: MemberSid,
    pub service_sid: ServiceSid,
    pub channel_sid: ChannelSid,
    pub identity: Identity,
    pub role_sid: RoleSid,
    /// The role held before a block, restored by unblock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_before_block: Option<RoleSid>,
    pub attributes: String,
    /// The consumption horizon: the index of the last message the member read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_consumed_message_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_consumption_timestamp: Option<DateTime<Utc>>,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

impl Member {
    /// `identity` joining `channel` with `role_sid`.
    pub fn new(
        sid: MemberSid,
        channel: &Channel,
        identity: Identity,
        role_sid: RoleSid,
        attributes: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            sid,
            service_sid: channel.service_sid.clone(),
            channel_sid: channel.sid.clone(),
            identity,
            role_sid,
            role_before_block: None,
            attributes,
            last_consumed_message_index: None,
            last_consumption_timestamp: None,
            date_created: now,
            date_updated: now,
        }
    }

    pub fn to_json(&self, ctx: ViewCtx<'_>) -> Value {
        json!({
            "sid": self.sid,
            "account_sid": ctx.account_sid,
            "service_sid": self.service_sid,
            "channel_sid": self.channel_sid,
            "identity": self.identity,
            "role_sid": self.role_sid,
            "attributes": self.attributes,
            "last_consumed_message_index": self.last_consumed_message_index,
            "last_consumption_timestamp": self.last_consumption_timestamp.as_ref().map(iso),
            "date_created": iso(&self.date_created),
            "date_updated": iso(&self.date_updated),
            "url": ctx.url(&format!(
                "/v2/Services/{}/Channels/{}/Members/{}",
                self.service_sid, self.channel_sid, self.sid
            )),
        })
    }
}
