use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{iso, ViewCtx};
use crate::permission::{Permission, PermissionSet, RoleType};
use crate::sid::{RoleSid, ServiceSid};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub sid: RoleSid,
    pub service_sid: ServiceSid,
    pub friendly_name: String,
    #[serde(rename = "type", with = "role_type_serde")]
    pub role_type: RoleType,
    pub permissions: PermissionSet,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

impl Role {
    pub fn new(
        sid: RoleSid,
        service_sid: ServiceSid,
        friendly_name: &str,
        role_type: RoleType,
        permissions: PermissionSet,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            sid,
            service_sid,
            friendly_name: friendly_name.into(),
            role_type,
            permissions,
            date_created: now,
            date_updated: now,
        }
    }

    pub fn has(&self, p: Permission) -> bool {
        self.permissions.contains(p)
    }

    pub fn to_json(&self, ctx: ViewCtx<'_>) -> Value {
        json!({
            "sid": self.sid,
            "account_sid": ctx.account_sid,
            "service_sid": self.service_sid,
            "friendly_name": self.friendly_name,
            "type": self.role_type.as_str(),
            "permissions": self.permissions,
            "date_created": iso(&self.date_created),
            "date_updated": iso(&self.date_updated),
            "url": ctx.url(&format!("/v2/Services/{}/Roles/{}", self.service_sid, self.sid)),
        })
    }
}

mod role_type_serde {
    use super::RoleType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &RoleType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RoleType, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
