use super::page::Query;
use super::{keyed, keys, s, Page, PageRequest, Store, StoreError, StoreResult};
use crate::model::Channel;
use crate::sid::{ChannelSid, ServiceSid};

fn channel_item(channel: &Channel) -> super::Item {
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
    Store(StoreError),
}

impl Store {
    /// Creates a channel and claims its unique name in one transaction.
    pub async fn create_channel(&self, channel: &Channel) -> Result<(), CreateChannelError> {
        let mut ops = vec![self.put_op(channel_item(channel), Some("attribute_not_exists(PK)"))];
        if let Some(name) = &channel.unique_name {
            let pointer = std::collections::HashMap::from([
                (keys::PK.to_owned(), s(channel.service_sid.as_str())),
                (keys::SK.to_owned(), s(keys::channel_name(name))),
                ("channel_sid".to_owned(), s(channel.sid.as_str())),
            ]);
            ops.push(self.put_op(pointer, Some("attribute_not_exists(PK)")));
        }
        self.transact(ops).await.map_err(|e| {
            if channel.unique_name.is_some() && e.condition_failed_at(1) {
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
        #[derive(serde::Deserialize)]
        struct Pointer {
            channel_sid: ChannelSid,
        }
        let pointer: Option<Pointer> = self
            .get(service.as_str(), &keys::channel_name(name), true)
            .await?;
        match pointer {
            Some(p) => self.get_channel(service, &p.channel_sid).await,
            None => Ok(None),
        }
    }

    pub async fn list_channels(
        &self,
        service: &ServiceSid,
        req: &PageRequest,
    ) -> StoreResult<Page<Channel>> {
        let partition = keys::channels_of(service);
        self.query_page(
            Query {
                index: true,
                partition: &partition,
                sk_prefix: None,
                forward: true,
            },
            req,
        )
        .await
    }

    /// Deletes a channel with its members and messages. Media messages go one by one
    /// through [`Store::delete_message`] so each media record leaves a pending deletion;
    /// the channel record goes last, so a crash leaves it to delete again.
    /// Returns the S3 keys whose deletion is now pending.
    pub async fn delete_channel(&self, channel: &Channel) -> StoreResult<Vec<String>> {
        let mut pending = Vec::new();
        let mut req = PageRequest {
            size: 100,
            ..PageRequest::default()
        };
        loop {
            let page = self.list_messages_consistent(&channel.sid, &req).await?;
            for message in page.items.iter().filter(|m| m.media.is_some()) {
                if let Some(key) = self.delete_message(message).await? {
                    pending.push(key);
                }
            }
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
        self.transact(ops).await?;
        Ok(pending)
    }
}
