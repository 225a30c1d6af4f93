use super::items::{key, keyed, s, Item};
use super::page::{Filter, Query};
use super::{keys, AttributeValue, Page, PageRequest, Store, StoreError, StoreResult};
use crate::model::{Channel, ChannelType, OutboxEvent};
use crate::sid::{ChannelSid, ServiceSid};

fn channel_item(channel: &Channel) -> Item {
    let order = format!("{}#{}", channel.date_created.to_rfc3339(), channel.sid);
    keyed(
        channel,
        channel.sid.as_str(),
        keys::CHANNEL,
        Some((&keys::channels_of(&channel.service_sid), &order)),
    )
}

/// Why a channel could not be created.
#[derive(Debug)]
pub enum CreateChannelError {
    UniqueNameTaken,
    /// The service is gone or being deleted.
    ServiceGone,
    Store(StoreError),
}

impl Store {
    /// Creates a channel and claims its unique name in one transaction, provided its
    /// service exists and is not being deleted.
    pub async fn create_channel(&self, channel: &Channel) -> Result<(), CreateChannelError> {
        self.create_channel_with_events(channel, &[]).await
    }

    /// As [`Store::create_channel`], with the post-events reporting it in the same transaction.
    pub async fn create_channel_with_events(
        &self,
        channel: &Channel,
        events: &[OutboxEvent],
    ) -> Result<(), CreateChannelError> {
        let mut ops = vec![
            self.put_op(channel_item(channel), Some("attribute_not_exists(PK)")),
            self.condition_check_op(
                channel.service_sid.as_str(),
                keys::SERVICE,
                "attribute_exists(PK) AND attribute_not_exists(deleting)",
                vec![],
            ),
        ];
        if let Some(name) = &channel.unique_name {
            let pointer = std::collections::HashMap::from([
                (keys::PK.to_owned(), s(channel.service_sid.as_str())),
                (keys::SK.to_owned(), s(keys::channel_name(name))),
                ("channel_sid".to_owned(), s(channel.sid.as_str())),
            ]);
            ops.push(self.put_op(pointer, Some("attribute_not_exists(PK)")));
        }
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact(ops).await.map_err(|e| {
            if e.condition_failed_at(1) {
                CreateChannelError::ServiceGone
            } else if channel.unique_name.is_some() && e.condition_failed_at(2) {
                CreateChannelError::UniqueNameTaken
            } else {
                CreateChannelError::Store(e)
            }
        })
    }

    /// Replaces a channel if it is still as `read` (same `date_updated`, not being
    /// deleted), moving its unique-name claim in the same transaction.
    pub async fn replace_channel_unchanged(
        &self,
        channel: &Channel,
        read: &Channel,
    ) -> Result<(), CreateChannelError> {
        self.replace_channel_with_events(channel, read, &[]).await
    }

    /// As [`Store::replace_channel_unchanged`], with the post-events reporting it.
    pub async fn replace_channel_with_events(
        &self,
        channel: &Channel,
        read: &Channel,
        events: &[OutboxEvent],
    ) -> Result<(), CreateChannelError> {
        let mut ops = vec![self.put_op_values(
            channel_item(channel),
            "attribute_exists(PK) AND attribute_not_exists(deleting) AND date_updated = :updated",
            vec![(":updated", super::items::date_value(read.date_updated))],
        )];
        let service = channel.service_sid.as_str();
        let renamed = channel.unique_name != read.unique_name;
        if renamed {
            if let Some(name) = &channel.unique_name {
                let pointer = std::collections::HashMap::from([
                    (keys::PK.to_owned(), s(service)),
                    (keys::SK.to_owned(), s(keys::channel_name(name))),
                    ("channel_sid".to_owned(), s(channel.sid.as_str())),
                ]);
                ops.push(self.put_op(pointer, Some("attribute_not_exists(PK)")));
            }
            if let Some(old) = &read.unique_name {
                ops.push(self.delete_op(service, &keys::channel_name(old), None));
            }
        }
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact(ops).await.map_err(|e| {
            if e.condition_failed_at(0) {
                CreateChannelError::ServiceGone
            } else if renamed && channel.unique_name.is_some() && e.condition_failed_at(1) {
                CreateChannelError::UniqueNameTaken
            } else {
                CreateChannelError::Store(e)
            }
        })
    }

    /// The channel, if it exists and belongs to `service`.
    pub async fn get_channel(
        &self,
        service: &ServiceSid,
        sid: &ChannelSid,
    ) -> StoreResult<Option<Channel>> {
        let channel: Option<Channel> = self.get(sid.as_str(), keys::CHANNEL, true).await?;
        Ok(channel.filter(|c| &c.service_sid == service))
    }

    pub async fn get_channel_by_unique_name(
        &self,
        service: &ServiceSid,
        name: &str,
    ) -> StoreResult<Option<Channel>> {
        match self.channel_sid_by_unique_name(service, name).await? {
            Some(sid) => self.get_channel(service, &sid).await,
            None => Ok(None),
        }
    }

    /// Channels in creation order; with `types`, only channels of those types.
    pub async fn list_channels(
        &self,
        service: &ServiceSid,
        req: &PageRequest,
        types: &[ChannelType],
    ) -> StoreResult<Page<Channel>> {
        let partition = keys::channels_of(service);
        let wanted: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        self.query_page(
            Query {
                index: true,
                partition: &partition,
                item_sk: keys::CHANNEL,
                forward: true,
                filter: (!wanted.is_empty()).then(|| Filter::one_of("type", &wanted)),
            },
            req,
        )
        .await
    }

    /// The channel with this SID, whatever its service (the plugin endpoints name
    /// only the channel; the caller checks the service).
    pub async fn find_channel(&self, sid: &ChannelSid) -> StoreResult<Option<Channel>> {
        self.get(sid.as_str(), keys::CHANNEL, true).await
    }

    /// The SID a unique name points at, without reading the channel.
    pub async fn channel_sid_by_unique_name(
        &self,
        service: &ServiceSid,
        name: &str,
    ) -> StoreResult<Option<ChannelSid>> {
        #[derive(serde::Deserialize)]
        struct Pointer {
            channel_sid: ChannelSid,
        }
        let pointer: Option<Pointer> = self
            .get(service.as_str(), &keys::channel_name(name), true)
            .await?;
        Ok(pointer.map(|p| p.channel_sid))
    }

    /// Deletes a channel with its members, messages and media. The channel is first
    /// marked `deleting`, so no message or member can be added meanwhile; media
    /// messages then go one by one through [`Store::delete_message`] (each leaves a
    /// pending deletion of its object), the rest of the partition in batches, and the
    /// channel record last: a crash leaves the marked channel, and deleting it again
    /// resumes. Returns the S3 keys whose deletion is now pending.
    pub async fn delete_channel(&self, channel: &Channel) -> StoreResult<Vec<String>> {
        Ok(self.delete_channel_inner(channel, &[]).await?.1)
    }

    /// As [`Store::delete_channel`]; the post-events reporting it are written
    /// with the channel record's delete, the last step.
    pub async fn delete_channel_with_events(
        &self,
        channel: &Channel,
        events: &[OutboxEvent],
    ) -> StoreResult<Vec<String>> {
        Ok(self.delete_channel_inner(channel, events).await?.1)
    }

    /// As [`Store::delete_channel`]; also tells whether the channel still existed.
    pub(super) async fn delete_channel_inner(
        &self,
        channel: &Channel,
        events: &[OutboxEvent],
    ) -> StoreResult<(bool, Vec<String>)> {
        let marked = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(channel.sid.as_str(), keys::CHANNEL)))
            .update_expression("SET deleting = :yes")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match marked {
            Ok(_) => {}
            Err(StoreError::ConditionFailed) => return Ok((false, Vec::new())),
            Err(e) => return Err(e),
        }
        let mut pending = Vec::new();
        let mut req = PageRequest {
            size: 100,
            ..PageRequest::default()
        };
        loop {
            let page = self.list_messages_consistent(&channel.sid, &req).await?;
            for message in page.items.iter().filter(|m| m.media.is_some()) {
                match self.delete_message(message).await {
                    Ok(Some(key)) => pending.push(key),
                    Ok(None) => {}
                    // Deleted meanwhile by a message delete, which handled its media.
                    Err(e) if e.condition_failed_at(0) => {}
                    Err(e) => return Err(e),
                }
            }
            match page.next_token {
                Some(t) => req.token = Some(t),
                None => break,
            }
        }
        // The members' pointers from their users, before the members go.
        let mut req = PageRequest {
            size: 25,
            ..PageRequest::default()
        };
        loop {
            let page = self.list_members(&channel.sid, &req, &[]).await?;
            // Each with its user's count, so `Limits.UserChannels` frees the slot.
            futures::future::try_join_all(page.items.iter().map(|m| self.drop_user_pointer(m)))
                .await?;
            match page.next_token {
                Some(t) => req.token = Some(t),
                None => break,
            }
        }
        self.delete_partition_except(channel.sid.as_str(), keys::CHANNEL)
            .await?;
        let mut ops = vec![self.delete_op(channel.sid.as_str(), keys::CHANNEL, None)];
        if let Some(name) = &channel.unique_name {
            ops.push(self.delete_op(
                channel.service_sid.as_str(),
                &keys::channel_name(name),
                None,
            ));
        }
        ops.extend(events.iter().map(|e| self.outbox_op(e)));
        self.transact(ops).await?;
        Ok((true, pending))
    }
}
