//! Takedown by hash: the quarantine of a media (record, message, deny-list, pending
//! deletion of its object, its slot, in one transaction) and the service's
//! deny-list of SHA-256 digests.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::items::{held_condition, key, keyed, media_item, pending_deletion_item, s};
use super::page::Query;
use super::quotas::counted_condition;
use super::{keys, AttributeValue, Page, PageRequest, Store, StoreError, StoreResult};
use crate::model::{Media, MediaStatus, QuarantinedHash, Sha256};
use crate::sid::ServiceSid;

fn quarantined_hash_item(entry: &QuarantinedHash) -> super::Item {
    keyed(
        entry,
        entry.service_sid.as_str(),
        &keys::quarantined_hash(entry.sha256.as_str()),
        None,
    )
}

impl Store {
    /// Stores `quarantined` (the `ready` media `before`, now `quarantined`), marks its
    /// message's media as removed, lists `entries` on the service's deny-list,
    /// records the pending deletion of the object and gives back the uploader's
    /// slot, all or nothing. `false` when the media changed since `before` was read
    /// (bound, settled, deleted).
    pub async fn quarantine_media(
        &self,
        before: &Media,
        quarantined: &Media,
        entries: &[QuarantinedHash],
        now: i64,
    ) -> StoreResult<bool> {
        let bound = match &before.message_sid {
            Some(_) => "message_sid = :message",
            None => "attribute_not_exists(message_sid)",
        };
        // The count as read, so the bytes given back below are the ones counted.
        let (counted, counted_value) = counted_condition(before.quota.as_ref());
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(media_item(quarantined)))
            .condition_expression(format!(
                "#status = :ready AND {bound} AND {} AND {counted}",
                held_condition(before.holds_slot)
            ))
            .set_expression_attribute_values(
                counted_value.map(|v| std::collections::HashMap::from([(":counted".into(), v)])),
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ready", s(MediaStatus::Ready.as_str()))
            .expression_attribute_values(":held", AttributeValue::Bool(before.holds_slot));
        if let Some(message) = &before.message_sid {
            put = put.expression_attribute_values(":message", s(message.as_str()));
        }
        let mut ops = vec![TransactWriteItem::builder()
            .put(put.build().expect("table and item are set"))
            .build()];
        if let (Some(message), Some(channel)) = (&before.message_sid, &before.channel_sid) {
            ops.push(
                self.media_removed_op(channel, message, MediaStatus::Quarantined)
                    .into(),
            );
        }
        for entry in entries {
            ops.push(self.put_op(quarantined_hash_item(entry), None));
        }
        ops.push(self.put_op(pending_deletion_item(&before.object_key), None));
        if before.holds_slot {
            ops.push(self.release_slot_op(&before.service_sid, &before.author, now));
        }
        // Its bytes leave the service's stored total (the identity's window keeps them:
        // the upload happened).
        if let Some(charge) = before.quota.filter(|q| q.service) {
            ops.push(self.release_stored_op(&before.service_sid, charge.bytes));
        }
        match self.transact(ops).await {
            Ok(()) => Ok(true),
            Err(e) if e.condition_failed_at(0) || e.condition_failed_at(1) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The deny-list entry of `sha256` in `service`, read strongly consistent (a
    /// quarantine is in force for every finalize that starts after it).
    pub async fn quarantined_hash(
        &self,
        service: &ServiceSid,
        sha256: &Sha256,
    ) -> StoreResult<Option<QuarantinedHash>> {
        self.get(
            service.as_str(),
            &keys::quarantined_hash(sha256.as_str()),
            true,
        )
        .await
    }

    /// The service's deny-list, in digest order (a query on its partition).
    pub async fn list_quarantined_hashes(
        &self,
        service: &ServiceSid,
        req: &PageRequest,
    ) -> StoreResult<Page<QuarantinedHash>> {
        self.query_page(
            Query {
                index: false,
                partition: service.as_str(),
                item_sk: keys::QUARANTINE_PREFIX,
                forward: true,
                filter: None,
            },
            req,
        )
        .await
    }

    /// Lifts a digest from the deny-list; `false` when it was not listed.
    pub async fn delete_quarantined_hash(
        &self,
        service: &ServiceSid,
        sha256: &Sha256,
    ) -> StoreResult<bool> {
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                service.as_str(),
                &keys::quarantined_hash(sha256.as_str()),
            )))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await
            .map_err(StoreError::from_sdk)
        {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
