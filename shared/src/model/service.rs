use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{iso, Role, ViewCtx, WebhookConfig};
use crate::permission::{DefaultRoles, RoleType};
use crate::sid::{RoleSid, ServiceSid};

/// Largest media a service may accept: 150 MB, as Twilio.
pub const MAX_MEDIA_SIZE_MB: u32 = 150;
pub const DEFAULT_COMPATIBILITY_MESSAGE: &str = "Media message";

/// The media rules of one service; the content policy reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaSettings {
    /// The body every media message of the service carries.
    pub compatibility_message: String,
    pub size_limit_mb: u32,
    /// Media type patterns such as `image/*`; empty means all types.
    #[serde(default)]
    pub allowed_types: Vec<String>,
    /// Filename extensions (lower case, no dot) refused whatever the type.
    #[serde(default)]
    pub blocked_extensions: Vec<String>,
    // --- issue 17 §1 (s20-images): metadata stripping ---
    /// `Media.StripMetadata`: EXIF, XMP and IPTC are removed from JPEG, PNG and
    /// WebP at finalize ([`crate::imagemeta`]). On unless a service turns it off.
    #[serde(default = "strip_by_default")]
    pub strip_metadata: bool,
}

fn strip_by_default() -> bool {
    true
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            compatibility_message: DEFAULT_COMPATIBILITY_MESSAGE.into(),
            size_limit_mb: MAX_MEDIA_SIZE_MB,
            allowed_types: Vec::new(),
            blocked_extensions: [
                "exe", "dll", "bat", "cmd", "com", "scr", "msi", "ps1", "vbs", "js", "jar", "sh",
            ]
            .map(String::from)
            .to_vec(),
            strip_metadata: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub sid: ServiceSid,
    pub friendly_name: String,
    pub default_service_role_sid: RoleSid,
    pub default_channel_role_sid: RoleSid,
    pub default_channel_creator_role_sid: RoleSid,
    /// The channel role members are moved to when blocked.
    pub blocked_channel_role_sid: RoleSid,
    pub media: MediaSettings,
    /// Pre- and post-event webhooks (`PreWebhookUrl`, `WebhookFilters`, …).
    #[serde(default)]
    pub webhooks: WebhookConfig,
    /// Set when a delete has started: no channel may be added any more, and a
    /// repeated delete resumes the cascade.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
    pub date_created: DateTime<Utc>,
    pub date_updated: DateTime<Utc>,
}

impl Service {
    /// A new service with Twilio's default roles (channel user, channel admin,
    /// service user, service admin) and the blocked role; `role_sid` names each
    /// role in that order (fresh SIDs, or fixed ones for fixtures).
    pub fn with_default_roles(
        sid: ServiceSid,
        friendly_name: String,
        mut role_sid: impl FnMut() -> RoleSid,
        now: DateTime<Utc>,
    ) -> (Self, Vec<Role>) {
        let d = DefaultRoles::twilio();
        let roles: Vec<Role> = [
            ("channel user", RoleType::Channel, d.channel_user),
            ("channel admin", RoleType::Channel, d.channel_admin),
            ("service user", RoleType::Deployment, d.service_user),
            ("service admin", RoleType::Deployment, d.service_admin),
            ("blocked user", RoleType::Channel, d.blocked_user),
        ]
        .into_iter()
        .map(|(name, role_type, permissions)| {
            Role::new(role_sid(), sid.clone(), name, role_type, permissions, now)
        })
        .collect();
        let service = Self {
            sid,
            friendly_name,
            default_channel_role_sid: roles[0].sid.clone(),
            default_channel_creator_role_sid: roles[1].sid.clone(),
            default_service_role_sid: roles[2].sid.clone(),
            blocked_channel_role_sid: roles[4].sid.clone(),
            media: MediaSettings::default(),
            webhooks: WebhookConfig::default(),
            deleting: false,
            date_created: now,
            date_updated: now,
        };
        (service, roles)
    }

    pub fn path(&self) -> String {
        format!("/v2/Services/{}", self.sid)
    }

    pub fn to_json(&self, ctx: ViewCtx<'_>) -> Value {
        let url = ctx.url(&self.path());
        let mut out = json!({
            "sid": self.sid,
            "account_sid": ctx.account_sid,
            "friendly_name": self.friendly_name,
            "date_created": iso(&self.date_created),
            "date_updated": iso(&self.date_updated),
            "default_service_role_sid": self.default_service_role_sid,
            "default_channel_role_sid": self.default_channel_role_sid,
            "default_channel_creator_role_sid": self.default_channel_creator_role_sid,
            "blocked_channel_role_sid": self.blocked_channel_role_sid,
            "read_status_enabled": false,
            "reachability_enabled": false,
            "typing_indicator_timeout": 5,
            "consumption_report_interval": 10,
            "limits": {"channel_members": 100, "user_channels": 250},
            "notifications": {},
            "media": {
                "size_limit_mb": self.media.size_limit_mb,
                "compatibility_message": self.media.compatibility_message,
                "allowed_types": self.media.allowed_types,
                "blocked_extensions": self.media.blocked_extensions,
                "strip_metadata": self.media.strip_metadata,
            },
            "url": url,
            "links": {
                "channels": format!("{url}/Channels"),
                "roles": format!("{url}/Roles"),
                "users": format!("{url}/Users"),
                "media": ctx.url(&format!("/v1/Services/{}/Media", self.sid)),
            },
        });
        if let (Some(out), Value::Object(hooks)) =
            (out.as_object_mut(), self.webhooks.json_fields())
        {
            out.extend(hooks);
        }
        out
    }
}
