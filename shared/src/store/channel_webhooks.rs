//! A channel's webhooks: one item (`CH…`, `WEBHOOKS`) holding all of them
//! (at most five), written on the condition of the version read, so two
//! concurrent creates never make a sixth; it goes with the channel's partition.

use super::items::{keyed, n};
use super::{keys, Store, StoreError, StoreResult};
use crate::model::ChannelWebhooks;
use crate::sid::ChannelSid;

/// Why a channel's webhooks could not be saved.
#[derive(Debug)]
pub enum SaveWebhooksError {
    /// The channel is gone or being deleted.
    ChannelGone,
    /// Changed since read: read again.
    Changed,
    Store(StoreError),
}

impl Store {
    /// The channel's webhooks (none when it has none), read strongly consistent.
    pub async fn channel_webhooks(&self, channel: &ChannelSid) -> StoreResult<ChannelWebhooks> {
        Ok(self
            .get(channel.as_str(), keys::CHANNEL_WEBHOOKS, true)
            .await?
            .unwrap_or_default())
    }

    /// Saves `hooks` (its `version` one past the one read) if the stored ones are
    /// still at `hooks.version - 1` and the channel lives.
    pub async fn save_channel_webhooks(
        &self,
        channel: &ChannelSid,
        hooks: &ChannelWebhooks,
    ) -> Result<(), SaveWebhooksError> {
        let read = hooks.version.saturating_sub(1);
        let item = keyed(hooks, channel.as_str(), keys::CHANNEL_WEBHOOKS, None);
        let ops = vec![
            self.condition_check_op(
                channel.as_str(),
                keys::CHANNEL,
                "attribute_exists(PK) AND attribute_not_exists(deleting)",
                vec![],
            ),
            self.put_op_values(
                item,
                "attribute_not_exists(PK) OR version = :read",
                vec![(":read", n(read))],
            ),
        ];
        self.transact(ops).await.map_err(|e| {
            if e.condition_failed_at(0) {
                SaveWebhooksError::ChannelGone
            } else if e.condition_failed_at(1) || e.is_conflict() {
                SaveWebhooksError::Changed
            } else {
                SaveWebhooksError::Store(e)
            }
        })
    }
}
