//! Upload lifecycle writes: creating an upload together with its author's slot,
//! the finalization lease, the outcome (ready or rejected), and the sweep of
//! expired unbound media. Each state change is one conditional write or one
//! transaction, so the complete call, the S3 event and the sweep can race safely.

use aws_sdk_dynamodb::types::{Delete, ReturnValue, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::items::{
    date_value, from_item, held_condition, key, media_item, n, pending_deletion_item, s, to_value,
    Item,
};
use super::quotas::{QuotaLimits, Window};
use super::{keys, AttributeValue, Store, StoreError, StoreResult};
use crate::identity::Identity;
use crate::model::{Media, MediaStatus, QuotaCharge, Refusal};
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
    /// The author's quota window has no room for the upload; its bytes free up at
    /// `frees_at` (epoch seconds), or never (`None`: larger than the whole quota).
    IdentityQuota {
        limit: u64,
        frees_at: Option<i64>,
    },
    /// The service's stored total has no room for the upload.
    ServiceQuota {
        limit: u64,
    },
    Store(StoreError),
}

/// Tries of an upload's transaction when a quota window moved or a concurrent
/// transaction held a counter (each try is one read and one transaction).
const QUOTA_TRIES: usize = 10;

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
    /// The `quotas` that are on are charged in the same transaction too
    /// ([`super::quotas`]); what was charged is recorded in `media.quota`.
    pub async fn create_upload(
        &self,
        media: &mut Media,
        max_unbound: u32,
        slot_expires_at: i64,
        quotas: QuotaLimits,
        now: i64,
    ) -> Result<(), CreateUploadError> {
        let store = |e| CreateUploadError::Store(e);
        if let Some((limit, _)) = quotas.identity.filter(|(l, _)| media.size > *l) {
            return Err(CreateUploadError::IdentityQuota {
                limit,
                frees_at: None,
            });
        }
        if let Some(limit) = quotas.service.filter(|l| media.size > *l) {
            return Err(CreateUploadError::ServiceQuota { limit });
        }
        for _ in 0..QUOTA_TRIES {
            let mut ops = Vec::new();
            let mut slot_at = None;
            if media.holds_slot {
                ops.push(self.take_slot_op(
                    &media.service_sid,
                    &media.author,
                    max_unbound,
                    slot_expires_at,
                ));
                slot_at = Some(ops.len() - 1);
            }
            let mut stored_at = None;
            if let Some(limit) = quotas.service {
                ops.push(self.charge_stored_op(&media.service_sid, media.size, limit));
                stored_at = Some(ops.len() - 1);
            } else if quotas.counts_stored() {
                // No limit: counted all the same, so the total is right when one is set.
                ops.push(self.add_stored_op(&media.service_sid, media.size as i64));
            }
            // (op index, window charged, whether it was already open)
            let mut window_at = None;
            if let Some((limit, secs)) = quotas.identity {
                let open = self
                    .quota_window(&media.service_sid, &media.author)
                    .await
                    .map_err(store)?
                    .filter(|w| w.start > now - secs);
                ops.push(match open {
                    Some(w) => self.charge_window_op(
                        &media.service_sid,
                        &media.author,
                        w.start,
                        media.size,
                        limit,
                        secs,
                    ),
                    None => self.open_window_op(
                        &media.service_sid,
                        &media.author,
                        now,
                        media.size,
                        secs,
                    ),
                });
                let start = open.map_or(now, |w| w.start);
                window_at = Some((ops.len() - 1, start, open.is_some(), limit, secs));
            }
            media.quota = (!quotas.is_off()).then_some(QuotaCharge {
                bytes: media.size,
                window: window_at.map(|(_, start, ..)| start),
                service: quotas.counts_stored(),
            });
            ops.push(self.put_op(media_item(media), Some("attribute_not_exists(PK)")));
            let (e, items) = match self.transact_returning(ops).await {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            if slot_at.is_some_and(|i| e.condition_failed_at(i)) {
                return Err(CreateUploadError::TooManyUploads);
            }
            if let Some(limit) = quotas.service {
                if stored_at.is_some_and(|i| e.condition_failed_at(i)) {
                    return Err(CreateUploadError::ServiceQuota { limit });
                }
            }
            if let Some((i, start, was_open, limit, secs)) = window_at {
                if e.condition_failed_at(i) {
                    // Full only if the window is still the one charged; otherwise
                    // it moved (closed, or another upload opened one): try again.
                    let now_open = items
                        .get(i)
                        .cloned()
                        .flatten()
                        .as_ref()
                        .and_then(Window::of);
                    if was_open && now_open.is_some_and(|w| w.start == start) {
                        return Err(CreateUploadError::IdentityQuota {
                            limit,
                            frees_at: Some(start + secs),
                        });
                    }
                    continue;
                }
            }
            if e.is_conflict() {
                let pause = 10 + rand::random::<u64>() % 40;
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                continue;
            }
            return Err(store(e));
        }
        Err(store(StoreError::Unavailable(
            "the quota counters kept changing".into(),
        )))
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
            .expression_attribute_values(":uploading", s(MediaStatus::Uploading.as_str()))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        updated_media(out)
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
            .expression_attribute_values(":uploading", s(MediaStatus::Uploading.as_str()))
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
        released_quota: Option<&QuotaCharge>,
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
                        .expression_attribute_values(
                            ":uploading",
                            s(MediaStatus::Uploading.as_str()),
                        )
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
        ops.extend(self.release_quota_ops(
            &media.service_sid,
            &media.author,
            released_quota,
            true,
            now,
        ));
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
    /// (A `failed` media holds no lease: `failed` removes it.)
    pub async fn start_rescan(
        &self,
        sid: &MediaSid,
        now: i64,
        lease_until: i64,
        date: DateTime<Utc>,
    ) -> StoreResult<Option<Media>> {
        self.transition_media(MediaTransition {
            sid,
            from: &[MediaStatus::Failed, MediaStatus::Scanning],
            to: MediaStatus::Scanning,
            condition: "attribute_exists(sha256) AND attribute_not_exists(message_sid) \
                 AND expires_at > :now \
                 AND (attribute_not_exists(finalizing_until) OR finalizing_until < :now)",
            set: "finalizing_until = :lease",
            remove: "status_reason, refusal",
            values: vec![(":lease", n(lease_until)), (":now", n(now))],
            date,
        })
        .await
    }

    /// `scanning` or `failed` → `ready`: clamd said clean. Any scanner of the
    /// (immutable) object may settle it, so no lease is needed; a `ready` or
    /// `rejected` media is never touched. `None` when the condition fails.
    pub async fn mark_scanned_clean(
        &self,
        sid: &MediaSid,
        date: DateTime<Utc>,
    ) -> StoreResult<Option<Media>> {
        self.transition_media(MediaTransition {
            sid,
            from: &[MediaStatus::Scanning, MediaStatus::Failed],
            to: MediaStatus::Ready,
            condition: "attribute_exists(sha256)",
            set: "",
            remove: "finalizing_until, status_reason, refusal",
            values: vec![],
            date,
        })
        .await
    }

    /// `scanning` → `failed` (scanner error), only by the scan holding `lease`: a
    /// failure never overwrites `ready` or `rejected`, nor another scan's work.
    /// The object and the author's slot are kept for the rescan.
    pub async fn mark_scan_failed(
        &self,
        sid: &MediaSid,
        lease: i64,
        refusal: &Refusal,
        date: DateTime<Utc>,
    ) -> StoreResult<Option<Media>> {
        self.transition_media(MediaTransition {
            sid,
            from: &[MediaStatus::Scanning],
            to: MediaStatus::Failed,
            condition: "finalizing_until = :lease",
            set: "status_reason = :reason, refusal = :refusal",
            remove: "finalizing_until",
            values: vec![
                (":reason", s(refusal.to_string())),
                (":refusal", to_value(refusal)),
                (":lease", n(lease)),
            ],
            date,
        })
        .await
    }

    /// `scanning` or `failed` → `rejected` (clamd found a signature): the record is
    /// kept with the refusal, the author's slot is given back and the pending
    /// deletion of the object is recorded, in one transaction. `false` when the
    /// media is no longer `scanning`/`failed` (another scan settled it).
    pub async fn mark_infected(
        &self,
        media: &Media,
        refusal: &Refusal,
        date: DateTime<Utc>,
        now: i64,
    ) -> StoreResult<bool> {
        let transition = MediaTransition {
            sid: &media.sid,
            from: &[MediaStatus::Scanning, MediaStatus::Failed],
            to: MediaStatus::Rejected,
            condition: held_condition(media.holds_slot),
            set: "status_reason = :reason, refusal = :refusal, holds_slot = :false",
            remove: "finalizing_until, quota_charge",
            values: vec![
                (":reason", s(refusal.to_string())),
                (":refusal", to_value(refusal)),
                (":false", AttributeValue::Bool(false)),
                (":held", AttributeValue::Bool(media.holds_slot)),
            ],
            date,
        };
        let mut ops = vec![
            self.transition_op(&transition),
            self.put_op(pending_deletion_item(&media.object_key), None),
        ];
        if media.holds_slot {
            ops.push(self.release_slot_op(&media.service_sid, &media.author, now));
        }
        ops.extend(self.release_quota_ops(
            &media.service_sid,
            &media.author,
            media.quota.as_ref(),
            true,
            now,
        ));
        match self.transact(ops).await {
            Ok(()) => Ok(true),
            Err(e) if e.condition_failed_at(0) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs `t` on its own, returning the media as it now is; `None` when its
    /// condition fails.
    async fn transition_media(&self, t: MediaTransition<'_>) -> StoreResult<Option<Media>> {
        let (condition, update) = (t.condition_expression(), t.update_expression());
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(t.sid.as_str(), keys::MEDIA)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(t.values().into_iter().collect()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        updated_media(out)
    }

    /// `t` as an item of a transaction.
    fn transition_op(&self, t: &MediaTransition<'_>) -> TransactWriteItem {
        let values = t.values();
        self.update_op(
            t.sid.as_str(),
            keys::MEDIA,
            &t.update_expression(),
            Some(&t.condition_expression()),
            values
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect(),
        )
        .with_name("#status", "status")
        .into()
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
            .expression_attribute_values(":failed", s(MediaStatus::Failed.as_str()))
            .expression_attribute_values(":scanning", s(MediaStatus::Scanning.as_str()))
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
            .map(from_item)
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
            .map(from_item)
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
                 AND {} AND {}",
                held_condition(media.holds_slot),
                charged_condition(media.quota.is_some())
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
        ops.extend(self.release_quota_ops(
            &media.service_sid,
            &media.author,
            media.quota.as_ref(),
            true,
            now,
        ));
        match self.transact(ops).await {
            Ok(()) => Ok(true),
            Err(e) if e.condition_failed_at(0) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The condition that the media still holds (or never held) a quota charge, as
/// read: a give-back happens once.
fn charged_condition(charged: bool) -> &'static str {
    if charged {
        "attribute_exists(quota_charge)"
    } else {
        "attribute_not_exists(quota_charge)"
    }
}

/// The media a conditional update returned (`ALL_NEW`), or `None` when its
/// condition failed.
fn updated_media(
    out: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
) -> StoreResult<Option<Media>> {
    match out {
        Ok(out) => out.attributes.map(from_item).transpose(),
        Err(e) => match StoreError::from_sdk(e) {
            StoreError::ConditionFailed => Ok(None),
            other => Err(other),
        },
    }
}

/// A conditional change of one media's status: from one of `from` to `to`, with
/// a further `condition`, `SET` and `REMOVE` clauses; `date_updated` is always set.
/// `#status` names the reserved word `status`.
struct MediaTransition<'a> {
    sid: &'a MediaSid,
    from: &'a [MediaStatus],
    to: MediaStatus,
    condition: &'a str,
    set: &'a str,
    remove: &'a str,
    values: Vec<(&'a str, AttributeValue)>,
    date: DateTime<Utc>,
}

impl MediaTransition<'_> {
    fn condition_expression(&self) -> String {
        let from: Vec<String> = (0..self.from.len()).map(|i| format!(":from{i}")).collect();
        let mut c = format!("attribute_exists(PK) AND #status IN ({})", from.join(", "));
        if !self.condition.is_empty() {
            // DynamoDB refuses redundant parentheses: `held_condition` may bring its own.
            let wrapped = self.condition.starts_with('(') && self.condition.ends_with(')');
            if wrapped {
                c.push_str(" AND ");
                c.push_str(self.condition);
            } else {
                c.push_str(" AND (");
                c.push_str(self.condition);
                c.push(')');
            }
        }
        c
    }

    fn update_expression(&self) -> String {
        let mut u = String::from("SET #status = :to, date_updated = :date");
        if !self.set.is_empty() {
            u.push_str(", ");
            u.push_str(self.set);
        }
        if !self.remove.is_empty() {
            u.push_str(" REMOVE ");
            u.push_str(self.remove);
        }
        u
    }

    fn values(&self) -> Vec<(String, AttributeValue)> {
        let mut v: Vec<(String, AttributeValue)> = self
            .from
            .iter()
            .enumerate()
            .map(|(i, status)| (format!(":from{i}"), s(status.as_str())))
            .collect();
        v.push((":to".into(), s(self.to.as_str())));
        v.push((":date".into(), date_value(self.date)));
        v.extend(
            self.values
                .iter()
                .map(|(k, x)| ((*k).to_owned(), x.clone())),
        );
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_name_every_status_by_its_stored_form() {
        let sid = MediaSid::generate();
        let t = MediaTransition {
            sid: &sid,
            from: &[MediaStatus::Scanning, MediaStatus::Failed],
            to: MediaStatus::Ready,
            condition: "attribute_exists(sha256)",
            set: "",
            remove: "finalizing_until",
            values: vec![],
            date: crate::model::now(),
        };
        assert_eq!(
            t.condition_expression(),
            "attribute_exists(PK) AND #status IN (:from0, :from1) AND (attribute_exists(sha256))"
        );
        assert_eq!(
            t.update_expression(),
            "SET #status = :to, date_updated = :date REMOVE finalizing_until"
        );
        let values = t.values();
        let value = |k: &str| values.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(value(":from0"), Some(s("scanning")));
        assert_eq!(value(":from1"), Some(s("failed")));
        assert_eq!(value(":to"), Some(s("ready")));
    }
}
