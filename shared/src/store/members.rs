use std::collections::HashMap;

use super::items::{date_value, keyed, n, s, Item};
use super::page::{Filter, Query};

/// Most identities one members list may filter on (DynamoDB's `IN` takes 100).
pub const MAX_IDENTITY_FILTER: usize = 100;
use super::{keys, Page, PageRequest, Store, StoreError, StoreResult};
use crate::identity::Identity;
use crate::model::{Channel, Member, OutboxEvent, ServiceLimits};
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
    /// The channel's delete has started.
    ChannelDeleting,
    /// The channel has `Limits.ChannelMembers` members already.
    ChannelFull(u32),
    /// The identity is a member of `Limits.UserChannels` channels already.
    UserChannelsFull(u32),
    Store(StoreError),
}

/// The counter of the channels `identity` is in, moved by `delta` (same transaction
/// as the membership's pointer).
fn user_count_op(store: &Store, member: &Member, delta: i64) -> super::ops::UpdateOp {
    store
        .update_op(
            member.service_sid.as_str(),
            &keys::user_channel_count(&member.identity),
            "ADD channels_count :delta SET #identity = :identity",
            None,
            vec![
                (":delta", n(delta)),
                (":identity", s(member.identity.as_str())),
            ],
        )
        // `identity` is a DynamoDB reserved word.
        .with_name("#identity", "identity")
}

impl Store {
    /// Adds a member, its SID pointer, its user's pointer and both counts (the
    /// channel's members, the user's channels) in one transaction; each count is
    /// checked against the service's limit in that transaction, so concurrent adds
    /// can never pass a limit together.
    pub async fn add_member(
        &self,
        member: &Member,
        limits: ServiceLimits,
    ) -> Result<(), AddMemberError> {
        self.add_member_with_events(member, limits, &[]).await
    }

    /// As [`Store::add_member`], with the post-events reporting it in the same transaction.
    pub async fn add_member_with_events(
        &self,
        member: &Member,
        limits: ServiceLimits,
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
                Some(
                    "attribute_exists(PK) AND attribute_not_exists(deleting) \
                     AND (attribute_not_exists(members_count) OR members_count < :max)",
                ),
                vec![(":one", n(1)), (":max", n(limits.channel_members))],
            )
            .returning_item_on_failure()
            .into(),
            self.put_op(user_channel_item(member), None),
            self.update_op(
                member.service_sid.as_str(),
                &keys::user_channel_count(&member.identity),
                "ADD channels_count :one SET #identity = :identity",
                Some("attribute_not_exists(channels_count) OR channels_count < :max"),
                vec![
                    (":one", n(1)),
                    (":identity", s(member.identity.as_str())),
                    (":max", n(limits.user_channels)),
                ],
            )
            .with_name("#identity", "identity")
            .into(),
        ];
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact_returning(ops).await.map_err(|(e, items)| {
            if e.condition_failed_at(0) {
                AddMemberError::AlreadyMember
            } else if e.condition_failed_at(2) {
                // Which part failed: the channel as it was tells.
                match items.get(2).cloned().flatten() {
                    Some(c) if c.contains_key("deleting") => AddMemberError::ChannelDeleting,
                    Some(_) => AddMemberError::ChannelFull(limits.channel_members),
                    None => AddMemberError::ChannelGone,
                }
            } else if e.condition_failed_at(4) {
                AddMemberError::UserChannelsFull(limits.user_channels)
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

    /// Removes a member and its pointers, and counts it out of the channel and out
    /// of its user's channels. A membership from before the user pointers (none to
    /// delete) is removed without touching the user's count, which never counted it.
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
        match self.remove_member_ops(channel, member, true, events).await {
            Err(e) if e.condition_failed_at(2) => {
                self.remove_member_ops(channel, member, false, events).await
            }
            other => other,
        }
    }

    async fn remove_member_ops(
        &self,
        channel: &Channel,
        member: &Member,
        with_user_pointer: bool,
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
            self.update_op(
                pk,
                keys::CHANNEL,
                "ADD members_count :minus",
                Some("attribute_exists(PK)"),
                vec![(":minus", n(-1))],
            )
            .into(),
        ];
        if with_user_pointer {
            ops.insert(
                2,
                self.delete_op(
                    member.service_sid.as_str(),
                    &keys::user_channel(&member.identity, &channel.sid),
                    Some("attribute_exists(PK)"),
                ),
            );
            ops.push(user_count_op(self, member, -1).into());
        }
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact(ops).await
    }

    /// Removes every membership of `identity` in `service` (a user's delete), each
    /// with its pointers and counts as [`Store::remove_member`] does; returns how
    /// many. Idempotent: a repeated call finishes what an interrupted one left.
    pub async fn remove_user_memberships(
        &self,
        service: &ServiceSid,
        identity: &Identity,
    ) -> StoreResult<usize> {
        let mut removed = 0;
        loop {
            // Always the first page: what was handled is gone from the list.
            let req = PageRequest {
                size: 25,
                ..PageRequest::default()
            };
            let page = self.list_user_channels(service, identity, &req).await?;
            if page.items.is_empty() {
                return Ok(removed);
            }
            for r in &page.items {
                let channel = self.find_channel(&r.channel_sid).await?;
                let member = self.get_member(&r.channel_sid, identity).await?;
                match (channel, member) {
                    (Some(channel), Some(member)) => {
                        match self.remove_member(&channel, &member).await {
                            Ok(()) => removed += 1,
                            // Removed meanwhile, with its pointer.
                            Err(e) if e.condition_failed_at(0) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    // A pointer whose membership is gone: drop it and its count.
                    _ => {
                        self.delete_user_pointer(service, identity, &r.channel_sid)
                            .await?
                    }
                }
            }
        }
    }

    /// The migration step for memberships written before the user pointers
    /// existed: a scan of the table that gives each member without its pointer
    /// that pointer and counts it into its user's channels, both in one
    /// transaction conditioned on the pointer's absence, so it is idempotent and
    /// can be stopped and run again. Returns (members seen, pointers added).
    pub async fn backfill_user_channels(&self) -> StoreResult<(usize, usize)> {
        let (mut seen, mut added) = (0, 0);
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(SK, :member)")
                .expression_attribute_values(":member", s(keys::MEMBER_PREFIX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            for item in out.items().iter().cloned() {
                let member: Member = super::items::from_item(item)?;
                seen += 1;
                let ops = vec![
                    self.put_op(user_channel_item(&member), Some("attribute_not_exists(PK)")),
                    user_count_op(self, &member, 1).into(),
                ];
                match self.transact(ops).await {
                    Ok(()) => added += 1,
                    Err(e) if e.condition_failed_at(0) => {}
                    Err(e) => return Err(e),
                }
            }
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok((seen, added)),
            }
        }
    }

    /// Deletes a pointer whose membership is gone, and counts it out.
    async fn delete_user_pointer(
        &self,
        service: &ServiceSid,
        identity: &Identity,
        channel: &ChannelSid,
    ) -> StoreResult<()> {
        let ops = vec![
            self.delete_op(
                service.as_str(),
                &keys::user_channel(identity, channel),
                Some("attribute_exists(PK)"),
            ),
            self.update_op(
                service.as_str(),
                &keys::user_channel_count(identity),
                "ADD channels_count :minus",
                None,
                vec![(":minus", n(-1))],
            )
            .into(),
        ];
        match self.transact(ops).await {
            Err(e) if e.condition_failed_at(0) => Ok(()),
            other => other,
        }
    }

    /// Deletes the user pointer of a member of a channel being deleted and counts
    /// it out of its user's channels, together; `false` if the pointer was already
    /// gone (a resumed delete, or a membership from before the pointers).
    pub(super) async fn drop_user_pointer(&self, member: &Member) -> StoreResult<bool> {
        let ops = vec![
            self.delete_op(
                member.service_sid.as_str(),
                &keys::user_channel(&member.identity, &member.channel_sid),
                Some("attribute_exists(PK)"),
            ),
            user_count_op(self, member, -1).into(),
        ];
        match self.transact(ops).await {
            Ok(()) => Ok(true),
            Err(e) if e.condition_failed_at(0) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
