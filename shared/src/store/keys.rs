//! The single-table layout. Every key is built here and nowhere else.
//!
//! | item               | PK        | SK                     | GSI1PK            | GSI1SK              |
//! |--------------------|-----------|------------------------|-------------------|---------------------|
//! | service            | `IS…`     | `SERVICE`              | `SERVICES`        | `<created>#IS…`     |
//! | role               | `IS…`     | `ROLE#RL…`             |                   |                     |
//! | user               | `IS…`     | `USER#<identity>`      | `RL…` (its role)  | `IS…#<identity>`    |
//! | user SID pointer   | `IS…`     | `USERSID#US…`          |                   |                     |
//! | channel name       | `IS…`     | `CHANNELNAME#<name>`   |                   |                     |
//! | channel            | `CH…`     | `CHANNEL`              | `IS…#CHANNELS`    | `<created>#CH…`     |
//! | member             | `CH…`     | `MEMBER#<identity>`    | `RL…` (its role)  | `CH…#<identity>`    |
//! | member SID pointer | `CH…`     | `MEMBERSID#MB…`        |                   |                     |
//! | channel webhooks   | `CH…`     | `WEBHOOKS`             |                   |                     |
//! | message            | `CH…`     | `MESSAGE#IM…`          | `CH…#MESSAGES`    | `<index, 20 digits>`|
//! | media              | `ME…`     | `MEDIA`                | `UNBOUND` (sparse)| `<expires>#ME…`     |
//! | bound media        | `ME…`     | `MEDIA`                | `IS…#BOUND_MEDIA` | `<bound at>#ME…`    |
//! | upload slots       | `IS…`     | `UPLOADS#<identity>`   |                   |                     |
//! | quota window       | `IS…`     | `QUOTA#<identity>`     |                   |                     |
//! | stored bytes       | `IS…`     | `QUOTA_STORED`         |                   |                     |
//! | retention list     | `RETENTION` | `IS…`                |                   |                     |
//! | inbound job        | `IS…`     | `INBOUND#<SM…/ME…>`    | `INBOUND_PENDING` (while pending) | `<lease>#IS…#<key>` |
//! | quarantined hash   | `IS…`     | `QUARANTINE#<sha256>`  |                   |                     |
//! | scanned clean hash | `IS…`     | `SCANNED#<sha256>`     |                   |                     |
//! | user's channel     | `IS…`     | `USERCHANNEL#<identity>#CH…` |             |                     |
//! | user's channel count | `IS…`   | `USERCHANNELS#<identity>` |               |                     |
//!
//! A caller's text is part of a key in two forms: identities (`USER#`, `MEMBER#`,
//! `UPLOADS#`, and after a SID and `#` in GSI1SK) and channel unique names
//! (`CHANNELNAME#`). Their byte limits ([`crate::limits`]) keep every such key
//! within DynamoDB's 1024-byte sort key; the assertions below fail the build if
//! a prefix or a limit grows past it.

use crate::identity::Identity;
use crate::limits::{DYNAMODB_SORT_KEY_BYTES, IDENTITY, UNIQUE_NAME};
use crate::sid::{ChannelSid, MediaSid, MemberSid, MessageSid, RoleSid, ServiceSid, UserSid};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// DynamoDB TTL attribute: a backstop for expired records, never the mechanism.
pub const TTL: &str = "expires_at";

pub const SERVICE: &str = "SERVICE";
pub const SERVICES: &str = "SERVICES";
pub const CHANNEL: &str = "CHANNEL";
pub const MEDIA: &str = "MEDIA";
pub const ROLE_PREFIX: &str = "ROLE#";
pub const USER_PREFIX: &str = "USER#";
pub const MEMBER_PREFIX: &str = "MEMBER#";
pub const MESSAGE_PREFIX: &str = "MESSAGE#";
pub const UNBOUND: &str = "UNBOUND";
/// A channel's webhooks, all in one item of its partition.
pub const CHANNEL_WEBHOOKS: &str = "WEBHOOKS";

/// The longest prefix in front of an identity: `CH…#` (a SID is 34 bytes).
const LONGEST_IDENTITY_PREFIX: usize = 34 + 1;
const _: () = assert!(LONGEST_IDENTITY_PREFIX + IDENTITY.bytes <= DYNAMODB_SORT_KEY_BYTES);
const _: () = assert!("CHANNELNAME#".len() + UNIQUE_NAME.bytes <= DYNAMODB_SORT_KEY_BYTES);
const _: () =
    assert!(USER_CHANNEL_PREFIX.len() + IDENTITY.bytes + 1 + 34 <= DYNAMODB_SORT_KEY_BYTES);

pub const USER_CHANNEL_PREFIX: &str = "USERCHANNEL#";
/// Where a user's memberships are listed from (`GET …/Users/{UserSid}/Channels`):
/// one pointer per membership in the service's partition, written and removed
/// with the member. An identity may contain `#`, so readers also match the
/// pointer's `identity` attribute, not the prefix alone.
pub fn user_channel(identity: &Identity, channel: &ChannelSid) -> String {
    format!("{USER_CHANNEL_PREFIX}{identity}#{channel}")
}
pub fn user_channels_of(identity: &Identity) -> String {
    format!("{USER_CHANNEL_PREFIX}{identity}#")
}
/// How many channels an identity is a member of (`channels_count`), kept with its
/// pointers so `Limits.UserChannels` is checked in the member's own transaction.
/// Not under [`USER_CHANNEL_PREFIX`]: `USERCHANNELS#` differs at its twelfth byte.
pub fn user_channel_count(identity: &Identity) -> String {
    format!("USERCHANNELS#{identity}")
}

pub fn role(sid: &RoleSid) -> String {
    format!("{ROLE_PREFIX}{sid}")
}
pub fn user(identity: &Identity) -> String {
    format!("{USER_PREFIX}{identity}")
}
pub fn user_sid(sid: &UserSid) -> String {
    format!("USERSID#{sid}")
}
pub fn channel_name(name: &str) -> String {
    format!("CHANNELNAME#{name}")
}
pub fn channels_of(service: &ServiceSid) -> String {
    format!("{service}#CHANNELS")
}
pub fn member(identity: &Identity) -> String {
    format!("{MEMBER_PREFIX}{identity}")
}
pub fn member_sid(sid: &MemberSid) -> String {
    format!("MEMBERSID#{sid}")
}
pub fn message(sid: &MessageSid) -> String {
    format!("{MESSAGE_PREFIX}{sid}")
}
pub fn messages_of(channel: &ChannelSid) -> String {
    format!("{channel}#MESSAGES")
}
pub fn message_order(index: u64) -> String {
    format!("{index:020}")
}
/// The counter of an identity's unbound uploads in a service (`unbound`).
pub fn upload_slots(identity: &Identity) -> String {
    format!("UPLOADS#{identity}")
}
pub fn unbound_order(expires_at: i64, sid: &MediaSid) -> String {
    format!("{expires_at:012}#{sid}")
}

// ---- s20-quota (issue 17 §4–5) ----
/// An identity's upload-quota window in a service (`window_start`, and the bytes
/// charged in that window under `u<window_start>`).
pub fn quota_window(identity: &Identity) -> String {
    format!("QUOTA#{identity}")
}
/// The service's stored-bytes counter (`stored_bytes`), for `Media.QuotaBytesPerService`.
pub const QUOTA_STORED: &str = "QUOTA_STORED";
/// The partition listing services whose `Media.RetentionDays` is on (SK `IS…`).
pub const RETENTION: &str = "RETENTION";
/// Bound media of a service by the date of their message (GSI1), for retention.
pub fn bound_media_of(service: &ServiceSid) -> String {
    format!("{service}#BOUND_MEDIA")
}
pub fn bound_order(bound_at: i64, sid: &MediaSid) -> String {
    format!("{bound_at:012}#{sid}")
}
/// Bytes scanned clean in a service, by SHA-256, with the signature version.
pub fn scanned_hash(sha256: &str) -> String {
    format!("SCANNED#{sha256}")
}
// ---- end s20-quota ----

pub const QUARANTINE_PREFIX: &str = "QUARANTINE#";
/// A deny-listed SHA-256 of a service (lowercase hex), listed by a table query
/// on the service's partition.
pub fn quarantined_hash(sha256: &str) -> String {
    format!("{QUARANTINE_PREFIX}{sha256}")
}

pub const PENDING_DELETIONS: &str = "PENDING_DELETIONS";
/// A pending deletion of an S3 object, recorded in the transaction that removed
/// its media record; the object is deleted after, and the sweep retries.
pub fn pending_deletion(object_key: &str) -> String {
    format!("DELETE#{object_key}")
}
pub const OBJECT: &str = "OBJECT";
/// Post-events waiting for the dispatcher (GSI1 partition), and each one's keys.
pub const OUTBOX: &str = "OUTBOX";
pub const OUTBOX_PREFIX: &str = "OUTBOX#";
pub const OUTBOX_EVENT: &str = "EVENT";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_longest_values_fit_a_sort_key() {
        let identity = Identity::parse(&"€".repeat(IDENTITY.chars)).unwrap();
        assert_eq!(identity.as_str().len(), IDENTITY.bytes);
        let channel = ChannelSid::generate();
        let service = ServiceSid::generate();
        let longest = [
            user(&identity),
            member(&identity),
            upload_slots(&identity),
            quota_window(&identity),
            format!("{channel}#{identity}"),
            format!("{service}#{identity}"),
            channel_name(&"€".repeat(UNIQUE_NAME.chars)),
            user_channel(&identity, &channel),
            user_channel_count(&identity),
        ];
        for key in longest {
            assert!(key.len() <= DYNAMODB_SORT_KEY_BYTES, "{} bytes", key.len());
        }
    }
}
