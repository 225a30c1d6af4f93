use super::items::{from_item, held_condition, message_item, n, pending_deletion_item, s};
use super::page::Query;
use super::{keys, AttributeValue, Page, PageRequest, Store, StoreError, StoreResult};
use crate::model::{Channel, Media, MediaStatus, Member, Message, OutboxEvent};
use crate::sid::{ChannelSid, MessageSid};

/// Why a message could not be written.
#[derive(Debug, PartialEq)]
pub enum CreateMessageError {
    /// Another transaction held one of the items (DynamoDB's `TransactionConflict`):
    /// retry the same write, its index is still its own.
    IndexTaken,
    /// The channel is gone or being deleted (it comes back with `deleting` set).
    ChannelMoved(Box<Channel>),
    /// The media is not ready, is already bound, or belongs elsewhere.
    MediaUnavailable,
    /// The sender's membership changed (a block, a role change, a removal) since it
    /// was read: re-read it and check the permissions again.
    SenderChanged,
    Store(StoreError),
}

impl Store {
    /// Marks the media of `message` as removed by `why` (quarantined, expired) and
    /// no longer counted in the stored total: the message stays and shows why.
    pub(super) fn media_removed_op(
        &self,
        channel: &ChannelSid,
        message: &MessageSid,
        why: MediaStatus,
    ) -> super::ops::UpdateOp {
        self.update_op(
            channel.as_str(),
            &keys::message(message),
            "SET #media.#removed = :removed REMOVE #media.quota_counted",
            Some("attribute_exists(#media)"),
            vec![(":removed", s(why.as_str()))],
        )
        .with_name("#media", "media")
        .with_name("#removed", "removed")
    }

    pub async fn get_message(
        &self,
        channel: &ChannelSid,
        sid: &MessageSid,
    ) -> StoreResult<Option<Message>> {
        self.get(channel.as_str(), &keys::message(sid), true).await
    }

    /// Replaces a message if it is still as `read` (same `date_updated`), so a
    /// concurrent update is never lost; its media (bound once) is never touched.
    pub async fn replace_message_unchanged(
        &self,
        message: &Message,
        read: &Message,
    ) -> StoreResult<()> {
        self.replace_message_with_events(message, read, &[]).await
    }

    /// As [`Store::replace_message_unchanged`], with the post-events reporting it.
    pub async fn replace_message_with_events(
        &self,
        message: &Message,
        read: &Message,
        events: &[OutboxEvent],
    ) -> StoreResult<()> {
        let mut ops = vec![self.put_op_values(
            message_item(message),
            "attribute_exists(PK) AND date_updated = :updated",
            vec![(":updated", super::items::date_value(read.date_updated))],
        )];
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact(ops).await
    }

    /// Messages in index order (GSI1, eventually consistent as lists are).
    pub async fn list_messages(
        &self,
        channel: &ChannelSid,
        req: &PageRequest,
        forward: bool,
    ) -> StoreResult<Page<Message>> {
        let partition = keys::messages_of(channel);
        self.query_page(
            Query {
                index: true,
                partition: &partition,
                item_sk: keys::MESSAGE_PREFIX,
                forward,
                filter: None,
            },
            req,
        )
        .await
    }

    /// Messages in SID order, strongly consistent: for cascades that must not miss one.
    pub(super) async fn list_messages_consistent(
        &self,
        channel: &ChannelSid,
        req: &PageRequest,
    ) -> StoreResult<Page<Message>> {
        self.query_page(
            Query {
                index: false,
                partition: channel.as_str(),
                item_sk: keys::MESSAGE_PREFIX,
                forward: true,
                filter: None,
            },
            req,
        )
        .await
    }

    /// Takes the channel's next message index with one atomic `ADD` (no condition on
    /// its value, so concurrent senders never race for it: DynamoDB serializes the
    /// updates). An index taken by a send that then fails is skipped, never reused.
    /// `None` when the channel is gone or being deleted.
    pub async fn take_message_index(&self, channel: &ChannelSid) -> StoreResult<Option<u64>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::items::key(channel.as_str(), keys::CHANNEL)))
            .update_expression("ADD next_message_index :one")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(deleting)")
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(StoreError::from_sdk);
        let out = match out {
            Ok(out) => out,
            Err(StoreError::ConditionFailed) => return Ok(None),
            Err(e) => return Err(e),
        };
        let next = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("next_message_index"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| StoreError::Other("next_message_index missing after ADD".into()))?;
        Ok(Some(next.saturating_sub(1)))
    }

    /// Writes a message at `message.index` (taken with [`Store::take_message_index`])
    /// and, for media messages, binds the media, all in one transaction: the media
    /// must be ready, unbound and of the same service, and the channel not being
    /// deleted (its `messages_count` grows in the same transaction). With `sender`,
    /// the sender's membership must still have the role its permissions were checked
    /// against, so a block that commits before the message refuses it. No condition
    /// is on the index itself, so concurrent senders do not cancel each other.
    pub async fn create_message(
        &self,
        channel: &Channel,
        message: &Message,
        media: Option<&Media>,
        sender: Option<&Member>,
    ) -> Result<(), CreateMessageError> {
        self.create_message_with_outbox(channel, message, media, sender, &[])
            .await
    }

    /// As [`Store::create_message`], with the post-event reporting it written in
    /// the same transaction (never lost, never sent for a message not written).
    pub async fn create_message_with_outbox(
        &self,
        channel: &Channel,
        message: &Message,
        media: Option<&Media>,
        sender: Option<&Member>,
        outbox: &[OutboxEvent],
    ) -> Result<(), CreateMessageError> {
        let mut ops = vec![
            self.update_op(
                channel.sid.as_str(),
                keys::CHANNEL,
                "ADD messages_count :one",
                Some("attribute_exists(PK) AND attribute_not_exists(deleting)"),
                vec![(":one", n(1))],
            )
            .returning_item_on_failure()
            .into(),
            self.put_op(message_item(message), Some("attribute_not_exists(PK)")),
        ];
        let media_at = media.map(|media| {
            ops.push(
                self.update_op(
                    media.sid.as_str(),
                    keys::MEDIA,
                    "SET message_sid = :message, channel_sid = :channel, date_updated = :now, \
                 holds_slot = :unheld, GSI1PK = :bound, GSI1SK = :bound_order \
                 REMOVE expires_at",
                    Some(&format!(
                        "attribute_exists(PK) AND #status = :ready \
                     AND attribute_not_exists(message_sid) AND service_sid = :service AND {}",
                        held_condition(media.holds_slot)
                    )),
                    vec![
                        (":message", s(message.sid.as_str())),
                        (":channel", s(channel.sid.as_str())),
                        (":now", s(message.date_created.to_rfc3339())),
                        (":ready", s(MediaStatus::Ready.as_str())),
                        (":service", s(channel.service_sid.as_str())),
                        (":held", AttributeValue::Bool(media.holds_slot)),
                        (":unheld", AttributeValue::Bool(false)),
                        // Retention finds bound media by their message's date.
                        (":bound", s(keys::bound_media_of(&channel.service_sid))),
                        (
                            ":bound_order",
                            s(keys::bound_order(
                                message.date_created.timestamp(),
                                &media.sid,
                            )),
                        ),
                    ],
                )
                .with_name("#status", "status")
                .into(),
            );
            let at = ops.len() - 1;
            // Binding frees the uploader's unbound-upload slot.
            if media.holds_slot {
                ops.push(self.release_slot_op(
                    &media.service_sid,
                    &media.author,
                    message.date_created.timestamp(),
                ));
            }
            at
        });
        let sender_at = sender.map(|member| {
            ops.push(self.condition_check_op(
                channel.sid.as_str(),
                &keys::member(&member.identity),
                "role_sid = :role",
                vec![(":role", s(member.role_sid.as_str()))],
            ));
            ops.len() - 1
        });
        ops.extend(outbox.iter().map(|e| self.outbox_op(e)));
        self.transact_returning(ops).await.map_err(|(e, items)| {
            if media_at.is_some_and(|i| e.condition_failed_at(i)) {
                CreateMessageError::MediaUnavailable
            } else if sender_at.is_some_and(|i| e.condition_failed_at(i)) {
                CreateMessageError::SenderChanged
            } else if e.condition_failed_at(0) {
                match items.into_iter().next().flatten().map(from_item) {
                    Some(Ok(current)) => CreateMessageError::ChannelMoved(Box::new(current)),
                    _ => CreateMessageError::IndexTaken,
                }
            } else if e.is_conflict() {
                CreateMessageError::IndexTaken
            } else {
                CreateMessageError::Store(e)
            }
        })
    }

    /// Deletes a message; a media message also loses its media record and leaves a
    /// pending deletion of the object, in the same transaction. Returns that object key.
    /// A media message whose media's count in the stored total changed since it was
    /// read (removed by a quarantine or retention, added by `backfill-stored-bytes`)
    /// is read again and deleted as it is.
    pub async fn delete_message(&self, message: &Message) -> StoreResult<Option<String>> {
        self.delete_message_with_events(message, &[]).await
    }

    /// As [`Store::delete_message`], with the post-events reporting it in the same transaction.
    pub async fn delete_message_with_events(
        &self,
        message: &Message,
        events: &[OutboxEvent],
    ) -> StoreResult<Option<String>> {
        // A media message is deleted on condition that its count is as read.
        let has_media = message.media.is_some();
        match self.delete_message_as_read(message, events).await {
            Err(e) if has_media && e.condition_failed_at(0) => {
                match self.get_message(&message.channel_sid, &message.sid).await? {
                    Some(fresh) => self.delete_message_as_read(&fresh, events).await,
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    async fn delete_message_as_read(
        &self,
        message: &Message,
        events: &[OutboxEvent],
    ) -> StoreResult<Option<String>> {
        let pk = message.channel_sid.as_str();
        // A message whose media counts in the stored total gives its bytes back, if
        // it still does when deleted (a quarantine or retention may have stopped
        // it); one whose media did not count is deleted only if it still does not
        // (`backfill-stored-bytes` may have counted it). Otherwise the delete is
        // refused and the message read again.
        let counted = message.media.as_ref().filter(|m| m.quota_counted);
        let message_delete = match (&message.media, counted) {
            (None, _) => self.delete_op(
                pk,
                &keys::message(&message.sid),
                Some("attribute_exists(PK)"),
            ),
            (Some(_), None) => self.delete_op_named(
                pk,
                &keys::message(&message.sid),
                "attribute_exists(PK) AND attribute_not_exists(#media.quota_counted)",
                &[("#media", "media")],
            ),
            (Some(_), Some(_)) => self.delete_op_named(
                pk,
                &keys::message(&message.sid),
                "attribute_exists(PK) AND attribute_exists(#media.quota_counted)",
                &[("#media", "media")],
            ),
        };
        let mut ops = vec![
            message_delete,
            self.update_op(
                pk,
                keys::CHANNEL,
                "ADD messages_count :minus",
                Some("attribute_exists(PK)"),
                vec![(":minus", n(-1))],
            )
            .into(),
        ];
        let object_key = message
            .media
            .as_ref()
            .map(|m| Media::object_key_for(&message.service_sid, &m.sid));
        if let (Some(media), Some(key)) = (&message.media, &object_key) {
            ops.push(self.delete_op(media.sid.as_str(), keys::MEDIA, None));
            ops.push(self.put_op(pending_deletion_item(key), None));
        }
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        if let Some(media) = counted {
            ops.push(self.release_stored_op(&message.service_sid, media.size));
        }
        self.transact(ops).await?;
        Ok(object_key)
    }
}

/// What sending a message needs, read in one strongly consistent call: the service
/// (placeholder body), the channel (next index), the sender's membership and, for
/// media messages, the media. Absent records are `None`.
#[derive(Debug, Default)]
pub struct SendContext {
    pub service: Option<crate::model::Service>,
    pub channel: Option<Channel>,
    pub member: Option<crate::model::Member>,
    pub media: Option<Media>,
    /// The channel's webhooks (s20-hooks), read in the same call.
    pub channel_webhooks: crate::model::ChannelWebhooks,
}

impl Store {
    pub async fn load_send_context(
        &self,
        service: &crate::sid::ServiceSid,
        channel: &ChannelSid,
        sender: Option<&crate::identity::Identity>,
        media: Option<&crate::sid::MediaSid>,
    ) -> StoreResult<SendContext> {
        let mut wanted = vec![
            (service.to_string(), keys::SERVICE.to_owned()),
            (channel.to_string(), keys::CHANNEL.to_owned()),
        ];
        if let Some(identity) = sender {
            wanted.push((channel.to_string(), keys::member(identity)));
        }
        if let Some(media) = media {
            wanted.push((media.to_string(), keys::MEDIA.to_owned()));
        }
        wanted.push((channel.to_string(), keys::CHANNEL_WEBHOOKS.to_owned()));
        let mut ctx = SendContext::default();
        for item in self.batch_get(wanted).await? {
            let pk = item
                .get(keys::PK)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            let sk = item
                .get(keys::SK)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            match sk.as_str() {
                keys::SERVICE if pk == service.as_str() => ctx.service = Some(from_item(item)?),
                keys::CHANNEL => ctx.channel = Some(from_item(item)?),
                keys::MEDIA => ctx.media = Some(from_item(item)?),
                keys::CHANNEL_WEBHOOKS => ctx.channel_webhooks = from_item(item)?,
                _ if sk.starts_with(keys::MEMBER_PREFIX) => ctx.member = Some(from_item(item)?),
                _ => {}
            }
        }
        // A channel of another service is no channel of this one.
        if ctx
            .channel
            .as_ref()
            .is_some_and(|c| &c.service_sid != service)
        {
            ctx.channel = None;
            ctx.member = None;
            ctx.channel_webhooks = Default::default();
        }
        Ok(ctx)
    }
}

impl Store {
    /// A media and its service in one strongly consistent call (get-media's first
    /// read); a media of another service is `None`.
    pub async fn load_media_context(
        &self,
        service: &crate::sid::ServiceSid,
        media: &crate::sid::MediaSid,
    ) -> StoreResult<(Option<crate::model::Service>, Option<Media>)> {
        let wanted = vec![
            (service.to_string(), keys::SERVICE.to_owned()),
            (media.to_string(), keys::MEDIA.to_owned()),
        ];
        let (mut found_service, mut found_media) = (None, None);
        for item in self.batch_get(wanted).await? {
            match item
                .get(keys::SK)
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
            {
                Some(keys::SERVICE) => found_service = Some(from_item(item)?),
                Some(keys::MEDIA) => found_media = Some(from_item::<Media>(item)?),
                _ => {}
            }
        }
        Ok((
            found_service,
            found_media.filter(|m| &m.service_sid == service),
        ))
    }
}
