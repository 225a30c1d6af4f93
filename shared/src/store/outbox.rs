//! The post-event outbox: one item per event, written inside the transaction of
//! the change it reports, listed oldest first for the dispatcher, claimed with a
//! lease so that two dispatchers never deliver the same event at once.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::items::{key, keyed, n};
use super::{keys, Store, StoreError, StoreResult};
use crate::model::OutboxEvent;

fn pk(id: &str) -> String {
    format!("{}{id}", keys::OUTBOX_PREFIX)
}

impl Store {
    /// The put of `event`, for the transaction of the change it reports.
    pub(super) fn outbox_op(&self, event: &OutboxEvent) -> TransactWriteItem {
        let order = format!(
            "{:013}#{}#{}",
            event.created_ms,
            event.channel_sid.as_ref().map(|c| c.as_str()).unwrap_or(""),
            event.id
        );
        let item = keyed(
            event,
            &pk(&event.id),
            keys::OUTBOX_EVENT,
            Some((keys::OUTBOX, &order)),
        );
        self.put_op(item, Some("attribute_not_exists(PK)"))
    }

    /// Waiting events, oldest first.
    pub async fn outbox(&self, limit: i32) -> StoreResult<Vec<OutboxEvent>> {
        self.gsi1_head(keys::OUTBOX, limit).await
    }

    /// Takes `id` until `lease_until` if it is due and nobody holds it.
    pub async fn claim_outbox(&self, id: &str, now: i64, lease_until: i64) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&pk(id), keys::OUTBOX_EVENT)))
            .update_expression("SET lease_until = :lease")
            .condition_expression(
                "attribute_exists(PK) AND lease_until < :now AND next_attempt_at <= :now",
            )
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match StoreError::from_sdk(e) {
                StoreError::ConditionFailed => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Delivered, or given up: gone.
    pub async fn delete_outbox(&self, id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&pk(id), keys::OUTBOX_EVENT)))
            .send()
            .await
            .map(|_| ())
            .map_err(StoreError::from_sdk)
    }

    /// A failed attempt: counted, released, not retried before `next_attempt_at`.
    pub async fn retry_outbox(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: i64,
    ) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&pk(id), keys::OUTBOX_EVENT)))
            .update_expression("SET attempts = :a, next_attempt_at = :next, lease_until = :zero")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":a", n(attempts))
            .expression_attribute_values(":next", n(next_attempt_at))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map(|_| ())
            .map_err(StoreError::from_sdk)
    }
}
