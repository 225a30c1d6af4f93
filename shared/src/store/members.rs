use std::collections::HashMap;

use super::items::{date_value, keyed, n, s, Item};
use super::page::{Filter, Query};

/// Most identities one members list may filter on (DynamoDB's `IN` takes 100).
pub const MAX_IDENTITY_FILTER: usize = 100;
use super::{keys, Page, PageRequest, Store, StoreError, StoreResult};
use crate::identity::Identity;
use crate::model::{Channel, Member, OutboxEvent};
use crate::sid::{ChannelSid, MemberSid, ServiceSid};

fn member_item(member: &Member) -> Item {
    let order = format!("{}#{}", member.channel_sid, member.identity);
    keyed(
        member,
        member.channel_sid.as_str(),
        &keys::member(&member.identity),
        Some((member.role_sid.as_str(), &order)),
    )
}

/// The pointer from the member's user (service partition) to the channel.
fn user_channel_item(member: &Member) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), s(member.service_sid.as_str())),
        (
            keys::SK.to_owned(),
            s(keys::user_channel(&member.identity, &member.channel_sid)),
        ),
        ("identity".to_owned(), s(member.identity.as_str())),
        ("channel_sid".to_owned(), s(member.channel_sid.as_str())),
        ("member_sid".to_owned(), s(member.sid.as_str())),
    ])
}

/// A user's membership as its pointer records it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct UserChannelRef {
    pub channel_sid: ChannelSid,
    pub member_sid: MemberSid,
}

/// Why a member could not be added.
#[derive(Debug)]
pub enum AddMemberError {
    AlreadyMember,
    ChannelGone,
    Store(StoreError),
}

impl Store {
    /// Adds a member, its SID pointer and the channel's count in one transaction.
    pub async fn add_member(&self, member: &Member) -> Result<(), AddMemberError> {
        self.add_member_with_events(member, &[]).await
    }

    /// As [`Store::add_member`], with the post-events reporting it in the same transaction.
    pub async fn add_member_with_events(
        &self,
        member: &Member,
        events: &[OutboxEvent],
    ) -> Result<(), AddMemberError> {
        let channel = member.channel_sid.as_str();
        let pointer = HashMap::from([
            (keys::PK.to_owned(), s(channel)),
            (keys::SK.to_owned(), s(keys::member_sid(&member.sid))),
            ("identity".to_owned(), s(member.identity.as_str())),
        ]);
        let mut ops = vec![
            self.put_op(member_item(member), Some("attribute_not_exists(PK)")),
            self.put_op(pointer, Some("attribute_not_exists(PK)")),
            self.update_op(
                channel,
                keys::CHANNEL,
                "ADD members_count :one",
                Some("attribute_exists(PK) AND attribute_not_exists(deleting)"),
                vec![(":one", n(1))],
            )
            .into(),
            self.put_op(user_channel_item(member), None),
        ];
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact(ops).await.map_err(|e| {
            if e.condition_failed_at(0) {
                AddMemberError::AlreadyMember
            } else if e.condition_failed_at(2) {
                AddMemberError::ChannelGone
            } else {
                AddMemberError::Store(e)
            }
        })
    }

    /// Strongly consistent: every permission check reads the member through here.
    pub async fn get_member(
        &self,
        channel: &ChannelSid,
        identity: &Identity,
    ) -> StoreResult<Option<Member>> {
        self.get(channel.as_str(), &keys::member(identity), true)
            .await
    }

    pub async fn get_member_by_sid(
        &self,
        channel: &ChannelSid,
        sid: &MemberSid,
    ) -> StoreResult<Option<Member>> {
        #[derive(serde::Deserialize)]
        struct Pointer {
            identity: Identity,
        }
        let pointer: Option<Pointer> = self
            .get(channel.as_str(), &keys::member_sid(sid), true)
            .await?;
        match pointer {
            Some(p) => self.get_member(channel, &p.identity).await,
            None => Ok(None),
        }
    }

    /// Members in identity order; with `identities`, only those (Twilio's repeated
    /// `Identity` filter, at most [`MAX_IDENTITY_FILTER`] of them).
    pub async fn list_members(
        &self,
        channel: &ChannelSid,
        req: &PageRequest,
        identities: &[Identity],
    ) -> StoreResult<Page<Member>> {
        let wanted: Vec<&str> = identities.iter().map(Identity::as_str).collect();
        self.query_page(
            Query {
                index: false,
                partition: channel.as_str(),
                item_sk: keys::MEMBER_PREFIX,
                forward: true,
                filter: (!wanted.is_empty()).then(|| Filter::one_of("identity", &wanted)),
            },
            req,
        )
        .await
    }

    /// Replaces a member's record if its role is still `expected_role` (no lost updates).
    pub async fn replace_member(
        &self,
        member: &Member,
        expected_role: &crate::sid::RoleSid,
    ) -> StoreResult<()> {
        self.replace_member_with_events(member, expected_role, &[])
            .await
    }

    /// As [`Store::replace_member`], with the post-events reporting it in the
    /// same transaction (a failed role condition is still `ConditionFailed`).
    pub async fn replace_member_with_events(
        &self,
        member: &Member,
        expected_role: &crate::sid::RoleSid,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let mut item = member_item(member);
        if member.role_before_block.is_none() {
            item.remove("role_before_block");
        }
        if !events.is_empty() {
            let mut ops = vec![self.put_op_values(
                item,
                "attribute_exists(PK) AND role_sid = :expected",
                vec![(":expected", s(expected_role.as_str()))],
            )];
            ops.extend(events.iter().map(|e| self.outbox_op(e)));
            return self.transact(ops).await.map_err(|e| {
                if e.condition_failed_at(0) {
                    StoreError::ConditionFailed
                } else {
                    e
                }
            });
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_exists(PK) AND role_sid = :expected")
            .expression_attribute_values(":expected", s(expected_role.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(StoreError::from_sdk)
    }

    /// Replaces a member's record if it is still as `read` (same role, same
    /// `date_updated`): an update never loses a concurrent one.
    pub async fn replace_member_unchanged(
        &self,
        member: &Member,
        read: &Member,
    ) -> StoreResult<()> {
        self.replace_member_unchanged_with_events(member, read, &[])
            .await
    }

    /// As [`Store::replace_member_unchanged`], with the post-events reporting it.
    pub async fn replace_member_unchanged_with_events(
        &self,
        member: &Member,
        read: &Member,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let mut item = member_item(member);
        if member.role_before_block.is_none() {
            item.remove("role_before_block");
        }
        let mut ops = vec![self.put_op_values(
            item,
            "attribute_exists(PK) AND role_sid = :role AND date_updated = :updated",
            vec![
                (":role", s(read.role_sid.as_str())),
                (":updated", date_value(read.date_updated)),
            ],
        )];
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact(ops).await
    }

    /// The channels `identity` is a member of, in the order of their SIDs.
    pub async fn list_user_channels(
        &self,
        service: &ServiceSid,
        identity: &Identity,
        req: &PageRequest,
    ) -> StoreResult<Page<UserChannelRef>> {
        let prefix = keys::user_channels_of(identity);
        self.query_page(
            Query {
                index: false,
                partition: service.as_str(),
                item_sk: &prefix,
                forward: true,
                filter: Some(Filter::one_of("identity", &[identity.as_str()])),
            },
            req,
        )
        .await
    }

    /// Removes a member and its pointer, and counts it out of the channel.
    pub async fn remove_member(&self, channel: &Channel, member: &Member) -> StoreResult<()> {
        self.remove_member_with_events(channel, member, &[]).await
    }

    /// As [`Store::remove_member`], with the post-events reporting it in the same transaction.
    pub async fn remove_member_with_events(
        &self,
        channel: &Channel,
        member: &Member,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let pk = channel.sid.as_str();
        let mut ops = vec![
            self.delete_op(
                pk,
                &keys::member(&member.identity),
                Some("attribute_exists(PK)"),
            ),
            self.delete_op(pk, &keys::member_sid(&member.sid), None),
            self.delete_op(
                member.service_sid.as_str(),
                &keys::user_channel(&member.identity, &channel.sid),
                None,
            ),
            self.update_op(
                pk,
                keys::CHANNEL,
                "ADD members_count :minus",
                Some("attribute_exists(PK)"),
                vec![(":minus", n(-1))],
            )
            .into(),
        ];
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact(ops).await
    }
}
