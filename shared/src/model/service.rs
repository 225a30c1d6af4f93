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

// ---- Chat v2 Service parameters (issue 12, s20-service): begin ----

/// Twilio's most members a channel, or channels a user, may be limited to.
pub const MAX_SERVICE_LIMIT: u32 = 1000;

/// `Limits.ChannelMembers` / `Limits.UserChannels`, enforced when a member is
/// added (Twilio's defaults: 100 members per channel, 250 channels per user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLimits {
    pub channel_members: u32,
    pub user_channels: u32,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        Self {
            channel_members: 100,
            user_channels: 250,
        }
    }
}

/// One push notification kind (`Notifications.<Kind>.*`): stored and rendered
/// for Twilio's clients; this backend sends no push notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    /// Only `NewMessage` has it (`Notifications.NewMessage.BadgeCountEnabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge_count_enabled: Option<bool>,
}

impl NotificationSettings {
    fn to_json(&self) -> Value {
        let mut out = json!({
            "enabled": self.enabled,
            "template": self.template,
            "sound": self.sound,
        });
        if let (Some(badge), Some(o)) = (self.badge_count_enabled, out.as_object_mut()) {
            o.insert("badge_count_enabled".into(), badge.into());
        }
        out
    }
}

/// `Notifications.*` of Twilio's spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    pub new_message: NotificationSettings,
    pub added_to_channel: NotificationSettings,
    pub removed_from_channel: NotificationSettings,
    pub invited_to_channel: NotificationSettings,
    pub log_enabled: bool,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            new_message: NotificationSettings {
                badge_count_enabled: Some(false),
                ..NotificationSettings::default()
            },
            added_to_channel: NotificationSettings::default(),
            removed_from_channel: NotificationSettings::default(),
            invited_to_channel: NotificationSettings::default(),
            log_enabled: false,
        }
    }
}

/// The Chat v2 Service parameters other than roles, webhooks and media: stored
/// as given and rendered as Twilio renders them. Only `limits` changes behaviour
/// here (the rest drive Twilio's client SDKs and push notifications).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSettings {
    pub read_status_enabled: bool,
    pub reachability_enabled: bool,
    /// Seconds.
    pub typing_indicator_timeout: u32,
    /// Seconds (deprecated by Twilio, kept for its clients).
    pub consumption_report_interval: u32,
    pub limits: ServiceLimits,
    pub notifications: Notifications,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            read_status_enabled: true,
            reachability_enabled: false,
            typing_indicator_timeout: 5,
            consumption_report_interval: 10,
            limits: ServiceLimits::default(),
            notifications: Notifications::default(),
        }
    }
}

impl ChatSettings {
    /// The service JSON fields these settings render.
    fn json_fields(&self) -> Value {
        let n = &self.notifications;
        json!({
            "read_status_enabled": self.read_status_enabled,
            "reachability_enabled": self.reachability_enabled,
            "typing_indicator_timeout": self.typing_indicator_timeout,
            "consumption_report_interval": self.consumption_report_interval,
            "limits": {
                "channel_members": self.limits.channel_members,
                "user_channels": self.limits.user_channels,
            },
            "notifications": {
                "new_message": n.new_message.to_json(),
                "added_to_channel": n.added_to_channel.to_json(),
                "removed_from_channel": n.removed_from_channel.to_json(),
                "invited_to_channel": n.invited_to_channel.to_json(),
                "log_enabled": n.log_enabled,
            },
        })
    }
}

// ---- Chat v2 Service parameters (issue 12, s20-service): end ----

// ---- s20-quota (issue 17 §4–5): quotas and retention --------------------------

/// The service's upload quotas and media retention; every limit is off when `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaQuotas {
    /// `Media.QuotaBytesPerIdentity`: bytes an identity may upload per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_identity: Option<u64>,
    /// `Media.QuotaWindowHours`: the window's length
    /// ([`DEFAULT_QUOTA_WINDOW_HOURS`] when only the bytes are set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_hours: Option<u32>,
    /// `Media.QuotaBytesPerService`: bytes the service may hold in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_service: Option<u64>,
    /// `Media.RetentionDays`: media of messages older than this are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

/// The quota window when `Media.QuotaBytesPerIdentity` is set without `Media.QuotaWindowHours`.
pub const DEFAULT_QUOTA_WINDOW_HOURS: u32 = 24;
/// The longest quota window (a year) and retention (ten years) accepted.
pub const MAX_QUOTA_WINDOW_HOURS: u32 = 24 * 366;
pub const MAX_RETENTION_DAYS: u32 = 3660;

impl MediaQuotas {
    /// The per-identity quota and its window in seconds, when on.
    pub fn identity_quota(&self) -> Option<(u64, i64)> {
        let hours = self.window_hours.unwrap_or(DEFAULT_QUOTA_WINDOW_HOURS);
        self.bytes_per_identity
            .map(|b| (b, i64::from(hours) * 3600))
    }

    /// The `media` fields of the service JSON.
    fn json_fields(&self) -> Value {
        json!({
            "quota_bytes_per_identity": self.bytes_per_identity,
            "quota_window_hours": self.bytes_per_identity
                .map(|_| self.window_hours.unwrap_or(DEFAULT_QUOTA_WINDOW_HOURS)),
            "quota_bytes_per_service": self.bytes_per_service,
            "retention_days": self.retention_days,
        })
    }
}

// ---- end s20-quota -------------------------------------------------------------

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
    /// Chat v2 parameters (issue 12): limits, read status, notifications, ….
    #[serde(default)]
    pub chat: ChatSettings,
    /// Upload quotas and retention (s20-quota).
    #[serde(default)]
    pub quotas: MediaQuotas,
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
            chat: ChatSettings::default(),
            quotas: MediaQuotas::default(),
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
        if let (Some(out), Value::Object(chat)) = (out.as_object_mut(), self.chat.json_fields()) {
            out.extend(chat);
        }
        if let (Some(media), Value::Object(quotas)) =
            (out["media"].as_object_mut(), self.quotas.json_fields())
        {
            media.extend(quotas);
        }
        out
    }
}
