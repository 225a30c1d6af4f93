//! Media retention (issue 17 §5): the services that keep media a limited time
//! (the `RETENTION` list, one item per service, written with the service),
//! their bound media by their message's date (GSI1 `IS…#BOUND_MEDIA`, written
//! by the transaction that binds a media), and the expiry of one media: record,
//! message summary, pending deletion of the object and the stored total, in one
//! transaction.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::items::{key, media_item, pending_deletion_item, s, Item};
use super::quotas::{counted_condition, Backfilled};
use super::{keys, Store, StoreError, StoreResult};
use crate::model::{Media, MediaStatus, Service};
use crate::sid::ServiceSid;

impl Store {
    /// The service's entry in the retention list (`RETENTION`, `IS…`): put while
    /// `Media.RetentionDays` is on, deleted when off; written with the service.
    pub(super) fn retention_marker_op(&self, service: &Service) -> TransactWriteItem {
        match service.quotas.retention_days {
            Some(_) => {
                let mut item = key(keys::RETENTION, service.sid.as_str());
                item.insert("service_sid".into(), s(service.sid.as_str()));
                self.put_op(item, None)
            }
            None => self.delete_op(keys::RETENTION, service.sid.as_str(), None),
        }
    }

    /// One page of the services whose `Media.RetentionDays` is on (a query of
    /// the retention list; a service since deleted is dropped from it), and where
    /// to continue.
    pub async fn services_with_retention(
        &self,
        limit: i32,
        start: Option<Item>,
    ) -> StoreResult<(Vec<Service>, Option<Item>)> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(keys::RETENTION))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let next = out.last_evaluated_key;
        let mut services = Vec::new();
        for item in out.items.unwrap_or_default() {
            let Some(Ok(sid)) = item
                .get("service_sid")
                .and_then(|v| v.as_s().ok())
                .map(|v| ServiceSid::parse(v))
            else {
                continue;
            };
            match self.get_service(&sid).await? {
                Some(service) if service.quotas.retention_days.is_some() => services.push(service),
                _ => {
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(key(keys::RETENTION, sid.as_str())))
                        .send()
                        .await
                        .map_err(StoreError::from_sdk)?;
                }
            }
        }
        Ok((services, next))
    }

    /// Up to `limit` media of `service` bound to messages dated before `cutoff`
    /// (epoch seconds), oldest first (GSI1, eventually consistent: the expiry
    /// re-checks).
    pub async fn media_bound_before(
        &self,
        service: &ServiceSid,
        cutoff: i64,
        limit: i32,
    ) -> StoreResult<Vec<Media>> {
        let upper = format!("{cutoff:012}");
        self.gsi1_head_below(&keys::bound_media_of(service), Some(&upper), limit)
            .await
    }

    /// Stores `expired` (the bound, `ready` media `before`, now `expired`; out of
    /// the index), marks its message's media as expired, records the pending
    /// deletion of its object and gives its bytes back to the stored total, all or
    /// nothing. `false` when the media is no longer that bound `ready` media
    /// (deleted with its message, quarantined).
    pub async fn expire_media(&self, before: &Media, expired: &Media) -> StoreResult<bool> {
        let (Some(message), Some(channel)) = (&before.message_sid, &before.channel_sid) else {
            return Ok(false);
        };
        // The count as read, so the bytes given back below are the ones counted.
        let (counted, counted_value) = counted_condition(before.quota.as_ref());
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(media_item(expired)))
            .set_expression_attribute_values(
                counted_value.map(|v| std::collections::HashMap::from([(":counted".into(), v)])),
            )
            .condition_expression(format!(
                "#status = :ready AND message_sid = :message AND {counted}"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ready", s(MediaStatus::Ready.as_str()))
            .expression_attribute_values(":message", s(message.as_str()))
            .build()
            .expect("table and item are set");
        let mut ops = vec![
            TransactWriteItem::builder().put(put).build(),
            self.media_removed_op(channel, message, MediaStatus::Expired)
                .into(),
            self.put_op(pending_deletion_item(&before.object_key), None),
        ];
        if let Some(charge) = before.quota.filter(|q| q.service) {
            ops.push(self.release_stored_op(&before.service_sid, charge.bytes));
        }
        match self.transact(ops).await {
            Ok(()) => Ok(true),
            Err(e) if e.condition_failed_at(0) || e.condition_failed_at(1) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The migration step for media bound before the retention index existed
    /// (their binding removed them from GSI1 and put them nowhere): a scan of the
    /// table for `ready` bound media without `GSI1PK` (of `service` only, when
    /// given) that puts each in its service's `BOUND_MEDIA` partition at its
    /// message's date, the key the binding transaction writes today. Each write is
    /// conditioned on the media still being `ready` and not indexed, so a media
    /// deleted, quarantined or expired meanwhile is never brought back, and the
    /// step is idempotent and can be stopped and rerun.
    pub async fn backfill_retention_index(
        &self,
        service: Option<&ServiceSid>,
    ) -> StoreResult<Backfilled> {
        self.backfill_bound_media(
            service,
            "attribute_not_exists(GSI1PK)",
            &[],
            |media| async move { self.index_bound_media(&media).await },
        )
        .await
    }

    /// Puts one bound media, as read by the backfill, in the retention index at its
    /// message's date; `false` when its message is gone, or the media is no longer
    /// `ready` (deleted, quarantined, expired) or was indexed meanwhile. (A media's
    /// binding never changes, so it needs no condition.)
    pub async fn index_bound_media(&self, media: &Media) -> StoreResult<bool> {
        let (Some(message_sid), Some(channel)) = (&media.message_sid, &media.channel_sid) else {
            return Ok(false);
        };
        // Deleted with its media in one transaction: no message, nothing to index.
        let Some(message) = self.get_message(channel, message_sid).await? else {
            return Ok(false);
        };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(media.sid.as_str(), keys::MEDIA)))
            .update_expression("SET GSI1PK = :bound, GSI1SK = :bound_order")
            // `ready` also means the record exists: no update brings one back.
            .condition_expression("#status = :ready AND attribute_not_exists(GSI1PK)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":bound", s(keys::bound_media_of(&media.service_sid)))
            .expression_attribute_values(
                ":bound_order",
                s(keys::bound_order(
                    message.date_created.timestamp(),
                    &media.sid,
                )),
            )
            .expression_attribute_values(":ready", s(MediaStatus::Ready.as_str()))
            .send()
            .await;
        match out.map_err(StoreError::from_sdk) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
