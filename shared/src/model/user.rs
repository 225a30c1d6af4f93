use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{iso, ViewCtx};
use crate::identity::Identity;
use crate::sid::{RoleSid, ServiceSid, UserSid};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub sid: UserSid,
    pub service_sid: ServiceSid,
    pub identity: Identity,
    pub role_sid: RoleSid,
    pub friendly_name: Option<String>,
    pub attributes: String,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

impl User {
    pub fn new(
        sid: UserSid,
        service_sid: ServiceSid,
        identity: Identity,
        role_sid: RoleSid,
        friendly_name: Option<String>,
        attributes: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            sid,
            service_sid,
            identity,
            role_sid,
            friendly_name,
            attributes,
            date_created: now,
            date_updated: now,
        }
    }

    pub fn to_json(&self, ctx: ViewCtx<'_>) -> Value {
        let url = ctx.url(&format!(
            "/v2/Services/{}/Users/{}",
            self.service_sid, self.sid
        ));
        json!({
            "sid": self.sid,
            "account_sid": ctx.account_sid,
            "service_sid": self.service_sid,
            "identity": self.identity,
            "role_sid": self.role_sid,
            "friendly_name": self.friendly_name,
            "attributes": self.attributes,
            "is_online": null,
            "is_notifiable": null,
            "joined_channels_count": null,
            "date_created": iso(&self.date_created),
            "date_updated": iso(&self.date_updated),
            "url": url,
            "links": {
                "user_channels": format!("{url}/Channels"),
                "user_bindings": format!("{url}/Bindings"),
            },
        })
    }
}
