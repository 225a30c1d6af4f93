//! Twilio Chat permissions and role types, with the default roles a new service gets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Whether a role is assigned per channel membership or per service user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleType {
    Channel,
    Deployment,
}

impl RoleType {
    pub fn as_str(self) -> &'static str {
        match self {
            RoleType::Channel => "channel",
            RoleType::Deployment => "deployment",
        }
    }
}

impl FromStr for RoleType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "channel" => Ok(RoleType::Channel),
            "deployment" => Ok(RoleType::Deployment),
            other => Err(format!(
                "'{other}' is not a role type (expected channel or deployment)"
            )),
        }
    }
}

macro_rules! permissions {
    ($($variant:ident = $name:literal: $channel:literal / $deployment:literal,)*) => {
        /// A Twilio Chat permission, by its wire name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission { $($variant,)* }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            /// Whether a role of this type may hold the permission.
            pub fn applies_to(self, role_type: RoleType) -> bool {
                match self {
                    $(Permission::$variant => match role_type {
                        RoleType::Channel => $channel,
                        RoleType::Deployment => $deployment,
                    },)*
                }
            }
        }

        impl FromStr for Permission {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(Permission::$variant),)*
                    other => Err(format!("'{other}' is not a Chat permission")),
                }
            }
        }
    };
}

permissions! {
    AddMember = "addMember": true / true,
    CreateChannel = "createChannel": false / true,
    DeleteAnyMessage = "deleteAnyMessage": true / true,
    DeleteOwnMessage = "deleteOwnMessage": true / false,
    DestroyChannel = "destroyChannel": true / true,
    EditAnyMessage = "editAnyMessage": true / true,
    EditAnyMessageAttributes = "editAnyMessageAttributes": true / true,
    EditAnyUserInfo = "editAnyUserInfo": false / true,
    EditChannelAttributes = "editChannelAttributes": true / true,
    EditChannelName = "editChannelName": true / true,
    EditNotificationLevel = "editNotificationLevel": true / false,
    EditOwnMessage = "editOwnMessage": true / false,
    EditOwnMessageAttributes = "editOwnMessageAttributes": true / false,
    EditOwnUserInfo = "editOwnUserInfo": false / true,
    InviteMember = "inviteMember": true / true,
    JoinChannel = "joinChannel": false / true,
    LeaveChannel = "leaveChannel": true / false,
    RemoveMember = "removeMember": true / true,
    SendMediaMessage = "sendMediaMessage": true / false,
    SendMessage = "sendMessage": true / false,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A validated, de-duplicated, sorted set of permissions for one role type.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PermissionSet(Vec<Permission>);

impl PermissionSet {
    /// Parses Twilio permission names for a role of `role_type`; the error names the bad value.
    pub fn parse<'a>(
        role_type: RoleType,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, String> {
        let mut set = Vec::new();
        for name in names {
            let p: Permission = name.parse()?;
            if !p.applies_to(role_type) {
                return Err(format!(
                    "'{p}' does not apply to {} roles",
                    role_type.as_str()
                ));
            }
            set.push(p);
        }
        set.sort();
        set.dedup();
        Ok(Self(set))
    }

    pub fn of(list: &[Permission]) -> Self {
        let mut v = list.to_vec();
        v.sort();
        v.dedup();
        Self(v)
    }

    pub fn contains(&self, p: Permission) -> bool {
        self.0.binary_search(&p).is_ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }

    pub fn without(&self, removed: &[Permission]) -> Self {
        Self(
            self.0
                .iter()
                .copied()
                .filter(|p| !removed.contains(p))
                .collect(),
        )
    }
}

/// The roles every new service gets, as in Twilio, plus the role blocked members move to.
pub struct DefaultRoles {
    pub channel_user: PermissionSet,
    pub channel_admin: PermissionSet,
    pub service_user: PermissionSet,
    pub service_admin: PermissionSet,
    pub blocked_user: PermissionSet,
}

impl DefaultRoles {
    pub fn twilio() -> Self {
        use Permission::*;
        let channel_user = PermissionSet::of(&[
            SendMessage,
            SendMediaMessage,
            LeaveChannel,
            EditOwnMessage,
            EditOwnMessageAttributes,
            DeleteOwnMessage,
            EditNotificationLevel,
        ]);
        let channel_admin = PermissionSet::of(&[
            SendMessage,
            SendMediaMessage,
            LeaveChannel,
            EditOwnMessage,
            EditOwnMessageAttributes,
            DeleteOwnMessage,
            EditNotificationLevel,
            EditAnyMessage,
            EditAnyMessageAttributes,
            DeleteAnyMessage,
            InviteMember,
            AddMember,
            RemoveMember,
            EditChannelName,
            EditChannelAttributes,
            DestroyChannel,
        ]);
        let service_user = PermissionSet::of(&[CreateChannel, JoinChannel, EditOwnUserInfo]);
        let service_admin = PermissionSet::of(&[
            CreateChannel,
            JoinChannel,
            EditOwnUserInfo,
            EditAnyUserInfo,
            DestroyChannel,
            InviteMember,
            AddMember,
            RemoveMember,
            EditChannelName,
            EditChannelAttributes,
            EditAnyMessage,
            EditAnyMessageAttributes,
            DeleteAnyMessage,
        ]);
        let blocked_user = channel_user.without(&[SendMessage, SendMediaMessage]);
        Self {
            channel_user,
            channel_admin,
            service_user,
            service_admin,
            blocked_user,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>().unwrap(), *p);
        }
        assert!("sendmessage".parse::<Permission>().is_err());
    }

    #[test]
    fn set_rejects_foreign_permissions() {
        assert!(PermissionSet::parse(RoleType::Channel, ["createChannel"]).is_err());
        assert!(PermissionSet::parse(RoleType::Deployment, ["sendMessage"]).is_err());
        let set = PermissionSet::parse(
            RoleType::Channel,
            ["sendMessage", "sendMessage", "addMember"],
        )
        .unwrap();
        assert_eq!(set.iter().count(), 2);
    }

    #[test]
    fn blocked_role_cannot_send() {
        let roles = DefaultRoles::twilio();
        assert!(roles.channel_user.contains(Permission::SendMessage));
        assert!(!roles.blocked_user.contains(Permission::SendMessage));
        assert!(!roles.blocked_user.contains(Permission::SendMediaMessage));
        assert!(roles.blocked_user.contains(Permission::LeaveChannel));
        assert!(roles.channel_admin.contains(Permission::RemoveMember));
        assert!(!roles.channel_user.contains(Permission::RemoveMember));
    }
}
