//! Upload lifecycle writes: creating an upload together with its author's slot,
//! the finalization lease, the outcome (ready or rejected), and the sweep of
//! expired unbound media. Each state change is one conditional write or one
//! transaction, so the complete call, the S3 event and the sweep can race safely.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{Delete, ReturnValue, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::media::media_item;
use super::messages::pending_deletion_item;
use super::{key, keys, n, s, AttributeValue, Item, Store, StoreError, StoreResult};
use crate::identity::Identity;
use crate::model::Media;
use crate::sid::{MediaSid, ServiceSid};

/// Attribute of the per-identity counter of unbound uploads.
pub const UNBOUND_COUNT: &str = "unbound_count";

/// Lifetime given to a counter item a decrement had to create (it was gone): a
/// TTL backstop so such leftovers disappear.
const COUNTER_BACKSTOP_SECS: i64 = 7 * 24 * 3600;

/// Why an upload could not be recorded.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateUploadError {
    /// The author already holds the maximum number of unbound uploads.
    TooManyUploads,
    Store(StoreError),
}

/// The condition that `holds_slot` still is what the caller read (`:held`).
pub(super) fn held_condition(held: bool) -> &'static str {
    if held {
        "holds_slot = :held"
    } else {
        "(attribute_not_exists(holds_slot) OR holds_slot = :held)"
    }
}

impl Store {
    /// Takes one of `identity`'s slots; fails its condition when all `max` are taken.
    fn take_slot_op(
        &self,
        service: &ServiceSid,
        identity: &Identity,
        max: u32,
        expires_at: i64,
    ) -> TransactWriteItem {
        self.update_op(
            service.as_str(),
            &keys::upload_slots(identity),
            &format!("ADD {UNBOUND_COUNT} :one SET expires_at = :exp"),
            Some(&format!(
                "attribute_not_exists({UNBOUND_COUNT}) OR {UNBOUND_COUNT} < :max"
            )),
            vec![(":one", n(1)), (":exp", n(expires_at)), (":max", n(max))],
        )
        .into()
    }

    /// Gives one of `identity`'s slots back (the media was bound, rejected or swept).
    pub(super) fn release_slot_op(
        &self,
        service: &ServiceSid,
        identity: &Identity,
        now: i64,
    ) -> TransactWriteItem {
        self.update_op(
            service.as_str(),
            &keys::upload_slots(identity),
            &format!("ADD {UNBOUND_COUNT} :minus SET expires_at = if_not_exists(expires_at, :exp)"),
            None,
            vec![(":minus", n(-1)), (":exp", n(now + COUNTER_BACKSTOP_SECS))],
        )
        .into()
    }

    /// How many unbound uploads `identity` holds in `service` (for tests and ops).
    pub async fn unbound_uploads(
        &self,
        service: &ServiceSid,
        identity: &Identity,
    ) -> StoreResult<i64> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(service.as_str(), &keys::upload_slots(identity))))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out
            .item
            .and_then(|i| i.get(UNBOUND_COUNT).cloned())
            .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .unwrap_or(0))
    }

    /// Records a new upload and, if it holds a slot, takes its author's slot in the
    /// same transaction: the limit can never be overrun by concurrent uploads.
    /// `slot_expires_at` is the counter's TTL backstop (after the media's own expiry).
    pub async fn create_upload(
        &self,
        media: &Media,
        max_unbound: u32,
        slot_expires_at: i64,
    ) -> Result<(), CreateUploadError> {
        let mut ops = Vec::new();
        if media.holds_slot {
            ops.push(self.take_slot_op(
                &media.service_sid,
                &media.author,
                max_unbound,
                slot_expires_at,
            ));
        }
        ops.push(self.put_op(media_item(media), Some("attribute_not_exists(PK)")));
        self.transact(ops).await.map_err(|e| {
            if media.holds_slot && e.condition_failed_at(0) {
                CreateUploadError::TooManyUploads
            } else {
                CreateUploadError::Store(e)
            }
        })
    }

    /// Takes the finalization lease of an upload that is still `uploading`, not
    /// expired, and not leased by someone else. `None` when any of that fails.
    pub async fn claim_finalization(
        &self,
        sid: &MediaSid,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<Media>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(sid.as_str(), keys::MEDIA)))
            .update_expression("SET finalizing_until = :lease")
            .condition_expression(
                "attribute_exists(PK) AND #status = :uploading AND expires_at > :now \
                 AND (attribute_not_exists(finalizing_until) OR finalizing_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":uploading", s("uploading"))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => out.attributes.map(super::from_item).transpose(),
            Err(e) => match StoreError::from_sdk(e) {
                StoreError::ConditionFailed => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Gives the lease back (after a transient failure) so a retry need not wait.
    pub async fn release_finalization(&self, sid: &MediaSid, lease: i64) -> StoreResult<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(sid.as_str(), keys::MEDIA)))
            .update_expression("REMOVE finalizing_until")
            .condition_expression("finalizing_until = :lease")
            .expression_attribute_values(":lease", n(lease))
            .send()
            .await;
        match out.map_err(StoreError::from_sdk) {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes the finished upload (`ready` or `scanning`) if the caller still holds
    /// the lease; `false` if it lost it (expired and swept, or taken over).
    pub async fn finish_upload(&self, media: &Media, lease: i64) -> StoreResult<bool> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(media_item(media)))
            .condition_expression("#status = :uploading AND finalizing_until = :lease")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":uploading", s("uploading"))
            .expression_attribute_values(":lease", n(lease))
            .send()
            .await;
        match out.map_err(StoreError::from_sdk) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes a refused upload (`rejected` or `failed`, slot released) if the caller
    /// still holds the lease, and records the pending deletion of its object in the
    /// same transaction. `released_slot`: the upload held a slot until now.
    pub async fn reject_upload(
        &self,
        media: &Media,
        lease: i64,
        released_slot: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let mut ops = vec![
            TransactWriteItem::builder()
                .put(
                    aws_sdk_dynamodb::types::Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(media_item(media)))
                        .condition_expression("#status = :uploading AND finalizing_until = :lease")
                        .expression_attribute_names("#status", "status")
                        .expression_attribute_values(":uploading", s("uploading"))
                        .expression_attribute_values(":lease", n(lease))
                        .build()
                        .expect("table and item are set"),
                )
                .build(),
            self.put_op(pending_deletion_item(&media.object_key), None),
        ];
        if released_slot {
            ops.push(self.release_slot_op(&media.service_sid, &media.author, now));
        }
        match self.transact(ops).await {
            Ok(()) => Ok(true),
            Err(e) if e.condition_failed_at(0) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `failed` (or `scanning` whose scan lease ran out: a scan that died) →
    /// `scanning` under a new lease, for a rescan. Only media that passed every
    /// check (they have a `sha256`) and are unbound and unexpired qualify. `None`
    /// when the condition fails: someone else is scanning it, or it is settled.
    pub async fn start_rescan(
        &self,
        sid: &MediaSid,
        now: i64,
        lease_until: i64,
        date: DateTime<Utc>,
    ) -> StoreResult<Option<Media>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(sid.as_str(), keys::MEDIA)))
            .update_expression(
                "SET #status = :scanning, finalizing_until = :lease, date_updated = :date \
                 REMOVE status_reason, rejection_code",
            )
            .condition_expression(
                "attribute_exists(sha256) AND attribute_not_exists(message_sid) \
                 AND expires_at > :now AND (#status = :failed \
                 OR (#status = :scanning AND finalizing_until < :now))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":scanning", s("scanning"))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":date", date_value(date))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        updated_media(out)
    }

    /// `scanning` or `failed` → `ready`: clamd said clean. Any scanner of the
    /// (immutable) object may settle it, so no lease is needed; a `ready` or
    /// `rejected` media is never touched. `None` when the condition fails.
    pub async fn mark_scanned_clean(
        &self,
        sid: &MediaSid,
        date: DateTime<Utc>,
    ) -> StoreResult<Option<Media>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(sid.as_str(), keys::MEDIA)))
            .update_expression(
                "SET #status = :ready, date_updated = :date \
                 REMOVE finalizing_until, status_reason, rejection_code",
            )
            .condition_expression("attribute_exists(sha256) AND #status IN (:scanning, :failed)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ready", s("ready"))
            .expression_attribute_values(":scanning", s("scanning"))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":date", date_value(date))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        updated_media(out)
    }

    /// `scanning` → `failed` (scanner error), only by the scan holding `lease`: a
    /// failure never overwrites `ready` or `rejected`, nor another scan's work.
    /// The object and the author's slot are kept for the rescan.
    pub async fn mark_scan_failed(
        &self,
        sid: &MediaSid,
        lease: i64,
        reason: &str,
        code: u32,
        date: DateTime<Utc>,
    ) -> StoreResult<Option<Media>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(sid.as_str(), keys::MEDIA)))
            .update_expression(
                "SET #status = :failed, status_reason = :reason, rejection_code = :code, \
                 date_updated = :date REMOVE finalizing_until",
            )
            .condition_expression("#status = :scanning AND finalizing_until = :lease")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":scanning", s("scanning"))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":code", n(code))
            .expression_attribute_values(":lease", n(lease))
            .expression_attribute_values(":date", date_value(date))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        updated_media(out)
    }

    /// `scanning` or `failed` → `rejected` (clamd found a signature): the record is
    /// kept with `reason`, the author's slot is given back and the pending deletion
    /// of the object is recorded, in one transaction. `false` when the media is no
    /// longer `scanning`/`failed` (another scan settled it).
    pub async fn mark_infected(
        &self,
        media: &Media,
        reason: &str,
        code: u32,
        date: DateTime<Utc>,
        now: i64,
    ) -> StoreResult<bool> {
        let update = self
            .update_op(
                media.sid.as_str(),
                keys::MEDIA,
                "SET #status = :rejected, status_reason = :reason, rejection_code = :code, \
                 holds_slot = :false, date_updated = :date REMOVE finalizing_until",
                Some(&format!(
                    "#status IN (:scanning, :failed) AND {}",
                    held_condition(media.holds_slot)
                )),
                vec![
                    (":rejected", s("rejected")),
                    (":scanning", s("scanning")),
                    (":failed", s("failed")),
                    (":reason", s(reason)),
                    (":code", n(code)),
                    (":false", AttributeValue::Bool(false)),
                    (":held", AttributeValue::Bool(media.holds_slot)),
                    (":date", date_value(date)),
                ],
            )
            .with_name("#status", "status");
        let mut ops = vec![
            update.into(),
            self.put_op(pending_deletion_item(&media.object_key), None),
        ];
        if media.holds_slot {
            ops.push(self.release_slot_op(&media.service_sid, &media.author, now));
        }
        match self.transact(ops).await {
            Ok(()) => Ok(true),
            Err(e) if e.condition_failed_at(0) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Unbound media waiting for a (re)scan: `failed` after a scanner error, or
    /// `scanning` whose lease ran out. Pages through the `UNBOUND` index (every
    /// such media is unbound, since binding needs `ready`) with a filter; returns
    /// the matches and where to continue.
    pub async fn media_awaiting_scan(
        &self,
        now: i64,
        limit: i32,
        start: Option<Item>,
    ) -> StoreResult<(Vec<Media>, Option<Item>)> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .filter_expression(
                "attribute_exists(sha256) AND (#status = :failed \
                 OR (#status = :scanning AND finalizing_until < :now))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pk", s(keys::UNBOUND))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":scanning", s("scanning"))
            .expression_attribute_values(":now", n(now))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let next = out.last_evaluated_key;
        let media = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(super::from_item)
            .collect::<StoreResult<Vec<Media>>>()?;
        Ok((media, next))
    }

    /// Unbound media whose `expires_at` is at or before `now`, soonest first (GSI1,
    /// eventually consistent: the delete re-checks everything).
    pub async fn expired_unbound_media(&self, now: i64, limit: i32) -> StoreResult<Vec<Media>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK < :upper")
            .expression_attribute_values(":pk", s(keys::UNBOUND))
            .expression_attribute_values(":upper", s(format!("{:012}", now + 1)))
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(super::from_item)
            .collect()
    }

    /// Deletes an expired unbound media record, records the pending deletion of its
    /// object and gives back its slot, in one transaction. `false` when the media
    /// was bound, extended, leased or changed since it was read.
    pub async fn delete_expired_media(&self, media: &Media, now: i64) -> StoreResult<bool> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(media.sid.as_str(), keys::MEDIA)))
            .condition_expression(format!(
                "attribute_exists(PK) AND attribute_not_exists(message_sid) \
                 AND expires_at <= :now \
                 AND (attribute_not_exists(finalizing_until) OR finalizing_until < :now) \
                 AND {}",
                held_condition(media.holds_slot)
            ))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":held", AttributeValue::Bool(media.holds_slot))
            .build()
            .expect("table and key are set");
        let mut ops = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.put_op(pending_deletion_item(&media.object_key), None),
        ];
        if media.holds_slot {
            ops.push(self.release_slot_op(&media.service_sid, &media.author, now));
        }
        match self.transact(ops).await {
            Ok(()) => Ok(true),
            Err(e) if e.condition_failed_at(0) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A date attribute as records store it (the same serialization as `Media`).
fn date_value(date: DateTime<Utc>) -> AttributeValue {
    serde_dynamo::to_attribute_value(date).expect("dates serialize")
}

/// The media an update returned, or `None` when its condition failed.
fn updated_media<R: std::fmt::Debug>(
    out: Result<UpdateItemOutput, SdkError<UpdateItemError, R>>,
) -> StoreResult<Option<Media>> {
    match out {
        Ok(out) => out.attributes.map(super::from_item).transpose(),
        Err(e) => match StoreError::from_sdk(e) {
            StoreError::ConditionFailed => Ok(None),
            other => Err(other),
        },
    }
}
