//! Upload quotas (issue 17 §4): the conditional counters charged in the
//! transaction that creates an upload, and the unconditional give-backs that ride
//! in the transactions that reject, sweep or delete it.
//!
//! **Per identity** (`Media.QuotaBytesPerIdentity` per `Media.QuotaWindowHours`):
//! one item per identity, `QUOTA#<identity>`, holding `window_start` and the bytes
//! charged in that window under the attribute `u<window_start>`. A window opens
//! with the first upload after the last one closed and lasts the window's length;
//! the bytes of all uploads created in it count until it closes, then all of them
//! free up at once (its end is the `Retry-After`). Charging is one of two
//! conditional writes in the upload's transaction:
//! - the window is open: `ADD u<ws> :size` if `window_start = ws` and
//!   `u<ws> <= limit - size` (DynamoDB evaluates it on the current value: no
//!   read decides);
//! - no window is open: a `Put` of a fresh item (`window_start = now`,
//!   `u<now> = size`) if there is none or its window closed; the put also wipes
//!   what the old window left.
//!
//! A give-back is `ADD u<ws> :-size` without a condition (a condition would cancel
//! the transaction it rides in): in the still-open window it frees the bytes; in a
//! window that has closed it only leaves a stray attribute that no condition reads
//! and the next opening put removes.
//!
//! **Per service** (`Media.QuotaBytesPerService`): `QUOTA_STORED` holds
//! `stored_bytes`, the bytes of the service's counted media. Every upload but an
//! admin's is counted, whether or not the quota is on: with a limit the charge is
//! `ADD` if `stored_bytes <= limit - size`, without one a plain `ADD`, so turning
//! the quota on finds the total already right. The media records that it counts
//! (`quota_charge.service`, and `quota_counted` on its message's summary once
//! bound); only a counted media gives its bytes back, when it is refused, swept,
//! deleted with its message, quarantined or removed by retention, each in the
//! transaction that ends its count. Media stored before this existed are counted
//! once by the migration step [`Store::backfill_stored_bytes`], which only
//! touches bound media; the writes that remove one are conditioned on its count
//! as read (the message's flag for a delete, [`counted_condition`] for a
//! quarantine or an expiry), so they never race it into a lost or double count.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::items::{from_item, key, n, s, to_value, Item};
use super::{keys, AttributeValue, Store, StoreError, StoreResult};
use crate::identity::Identity;
use crate::model::{Media, MediaStatus, QuotaCharge};
use crate::sid::ServiceSid;

/// Backstop lifetime of counter items beyond their window (DynamoDB TTL).
const QUOTA_BACKSTOP_SECS: i64 = 7 * 24 * 3600;

/// The attribute holding the bytes charged in the window that started at `start`.
fn window_bytes(start: i64) -> String {
    format!("u{start}")
}

/// The quotas an upload is charged against (`None` fields are off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Bytes per identity and the window's length in seconds.
    pub identity: Option<(u64, i64)>,
    /// Bytes the service may hold.
    pub service: Option<u64>,
    /// The upload counts in the service's stored total even without a limit
    /// (every upload but an admin's), so the total is right when a limit is set.
    pub counted: bool,
}

impl QuotaLimits {
    /// Whether the upload counts in the service's stored total.
    pub fn counts_stored(&self) -> bool {
        self.counted || self.service.is_some()
    }

    /// Nothing to charge: no limit, and not counted in the stored total.
    pub fn is_off(&self) -> bool {
        self.identity.is_none() && !self.counts_stored()
    }
}

/// The condition that a media's stored-total bookkeeping is still as `charge`
/// (the record as read) says: no `quota_charge`, or one whose `service` flag is
/// the same; and the value it names (`:counted`), if any. The writes that remove
/// a bound media and give back by its record (quarantine, retention) carry it, so
/// a media the backfill counts meanwhile is never removed without its bytes.
pub(super) fn counted_condition(
    charge: Option<&QuotaCharge>,
) -> (&'static str, Option<AttributeValue>) {
    match charge {
        None => ("attribute_not_exists(quota_charge)", None),
        Some(c) => (
            "quota_charge.service = :counted",
            Some(AttributeValue::Bool(c.service)),
        ),
    }
}

/// What a backfill pass did: the records it found needing it, and how many it
/// changed (the others changed meanwhile, or were already done by another run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backfilled {
    pub seen: usize,
    pub written: usize,
}

/// Tries of one media's count when its transaction meets a concurrent one on the
/// service's total.
const BACKFILL_TRIES: usize = 5;

/// The author's window as read before charging it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub start: i64,
    pub used: i64,
}

impl Window {
    /// The window of a counter item, if it has one.
    pub(super) fn of(item: &Item) -> Option<Self> {
        let start: i64 = item.get("window_start")?.as_n().ok()?.parse().ok()?;
        let used = item
            .get(&window_bytes(start))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Some(Self { start, used })
    }
}

impl Store {
    /// The author's current quota window, read strongly consistent (`None`: none yet).
    pub(super) async fn quota_window(
        &self,
        service: &ServiceSid,
        identity: &Identity,
    ) -> StoreResult<Option<Window>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(service.as_str(), &keys::quota_window(identity))))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out.item.as_ref().and_then(Window::of))
    }

    /// Charges `bytes` to the open window that started at `start` (condition: it is
    /// still that window and the bytes fit under `limit`).
    pub(super) fn charge_window_op(
        &self,
        service: &ServiceSid,
        identity: &Identity,
        start: i64,
        bytes: u64,
        limit: u64,
        window_secs: i64,
    ) -> TransactWriteItem {
        self.update_op(
            service.as_str(),
            &keys::quota_window(identity),
            "ADD #u :size SET expires_at = :exp",
            Some("window_start = :ws AND (attribute_not_exists(#u) OR #u <= :room)"),
            vec![
                (":size", n(bytes)),
                (":ws", n(start)),
                (":room", n(limit.saturating_sub(bytes))),
                (":exp", n(start + window_secs + QUOTA_BACKSTOP_SECS)),
            ],
        )
        .with_name("#u", &window_bytes(start))
        .returning_item_on_failure()
        .into()
    }

    /// Opens a new window at `now` with `bytes` charged (condition: no window is open).
    pub(super) fn open_window_op(
        &self,
        service: &ServiceSid,
        identity: &Identity,
        now: i64,
        bytes: u64,
        window_secs: i64,
    ) -> TransactWriteItem {
        let mut item = key(service.as_str(), &keys::quota_window(identity));
        item.insert("window_start".into(), n(now));
        item.insert(window_bytes(now), n(bytes));
        item.insert(keys::TTL.into(), n(now + window_secs + QUOTA_BACKSTOP_SECS));
        self.put_op_values(
            item,
            "attribute_not_exists(window_start) OR window_start <= :cutoff",
            vec![(":cutoff", n(now - window_secs))],
        )
    }

    /// Charges `bytes` to the service's stored total (condition: they fit under `limit`).
    pub(super) fn charge_stored_op(
        &self,
        service: &ServiceSid,
        bytes: u64,
        limit: u64,
    ) -> TransactWriteItem {
        self.update_op(
            service.as_str(),
            keys::QUOTA_STORED,
            "ADD stored_bytes :size",
            Some("attribute_not_exists(stored_bytes) OR stored_bytes <= :room"),
            vec![
                (":size", n(bytes)),
                (":room", n(limit.saturating_sub(bytes))),
            ],
        )
        .into()
    }

    /// The give-backs of `charge` (`identity`'s window, `service`'s total; the total
    /// only when `stored` is also asked), unconditional, for a transaction.
    pub(super) fn release_quota_ops(
        &self,
        service: &ServiceSid,
        identity: &Identity,
        charge: Option<&QuotaCharge>,
        window: bool,
        now: i64,
    ) -> Vec<TransactWriteItem> {
        let Some(charge) = charge else {
            return Vec::new();
        };
        let mut ops = Vec::new();
        if let (true, Some(start)) = (window, charge.window) {
            ops.push(
                self.update_op(
                    service.as_str(),
                    &keys::quota_window(identity),
                    "ADD #u :minus SET expires_at = if_not_exists(expires_at, :exp)",
                    None,
                    vec![
                        (":minus", n(-(charge.bytes as i64))),
                        (":exp", n(now + QUOTA_BACKSTOP_SECS)),
                    ],
                )
                .with_name("#u", &window_bytes(start))
                .into(),
            );
        }
        if charge.service {
            ops.push(self.release_stored_op(service, charge.bytes));
        }
        ops
    }

    /// Gives `bytes` back to the service's stored total.
    pub(super) fn release_stored_op(&self, service: &ServiceSid, bytes: u64) -> TransactWriteItem {
        self.add_stored_op(service, -(bytes as i64))
    }

    /// Adds `bytes` (negative: takes them off) to the service's stored total,
    /// without a condition: the count of an upload when no limit is set.
    pub(super) fn add_stored_op(&self, service: &ServiceSid, bytes: i64) -> TransactWriteItem {
        self.update_op(
            service.as_str(),
            keys::QUOTA_STORED,
            "ADD stored_bytes :bytes",
            None,
            vec![(":bytes", n(bytes))],
        )
        .into()
    }

    /// The migration step for media stored before every upload was counted in its
    /// service's total (uploads made while `Media.QuotaBytesPerService` was off, or
    /// before quotas existed): a scan of the table for `ready` bound media not
    /// uploaded by an admin and not counted (of `service` only, when given). Each
    /// is counted in one transaction that marks its record counted (`quota_charge`
    /// with `service` and its stored size) on condition that it is still `ready`
    /// and uncounted as read, marks its message's summary counted, and adds its
    /// size to the total. Idempotent, can be stopped and rerun. Unbound media are
    /// left alone, so no upload about to be sent races the step: one unbound
    /// during a run is counted by a rerun once it is bound (or is swept unbound).
    pub async fn backfill_stored_bytes(
        &self,
        service: Option<&ServiceSid>,
    ) -> StoreResult<Backfilled> {
        self.backfill_bound_media(
            service,
            "author <> :admin \
             AND (attribute_not_exists(quota_charge) OR quota_charge.service = :false)",
            &[
                (":admin", s(Identity::system().as_str())),
                (":false", AttributeValue::Bool(false)),
            ],
            |media| async move { self.count_stored_media(&media).await },
        )
        .await
    }

    /// The scan both backfill steps run: every `ready` media bound to a message
    /// and matching `filter` (its `values` bound), of `service` only when given,
    /// each handed to `each`, which says whether it wrote.
    pub(super) async fn backfill_bound_media<F, Fut>(
        &self,
        service: Option<&ServiceSid>,
        filter: &str,
        values: &[(&str, AttributeValue)],
        mut each: F,
    ) -> StoreResult<Backfilled>
    where
        F: FnMut(Media) -> Fut,
        Fut: std::future::Future<Output = StoreResult<bool>>,
    {
        let mut done = Backfilled::default();
        let mut start: Option<Item> = None;
        let mut filter = format!(
            "SK = :media AND #status = :ready AND attribute_exists(message_sid) AND {filter}"
        );
        if service.is_some() {
            filter.push_str(" AND service_sid = :service");
        }
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":media", s(keys::MEDIA))
                .expression_attribute_values(":ready", s(MediaStatus::Ready.as_str()))
                .filter_expression(&filter)
                .set_exclusive_start_key(start.take());
            for (name, value) in values {
                scan = scan.expression_attribute_values(*name, value.clone());
            }
            if let Some(service) = service {
                scan = scan.expression_attribute_values(":service", s(service.as_str()));
            }
            let out = scan.send().await.map_err(StoreError::from_sdk)?;
            for item in out.items().iter().cloned() {
                done.seen += 1;
                if each(from_item(item)?).await? {
                    done.written += 1;
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(done),
            }
        }
    }

    /// Counts one bound media as the backfill read it, uncounted (see the caller);
    /// `false` when it is unbound, or changed meanwhile (counted, deleted,
    /// quarantined, expired), or kept meeting concurrent writes.
    pub async fn count_stored_media(&self, media: &Media) -> StoreResult<bool> {
        let (Some(message), Some(channel)) = (&media.message_sid, &media.channel_sid) else {
            return Ok(false);
        };
        let charge = QuotaCharge {
            bytes: media.size,
            window: media.quota.and_then(|q| q.window),
            service: true,
        };
        let (counted, counted_value) = counted_condition(media.quota.as_ref());
        let mut values = vec![
            (":charge", to_value(charge)),
            (":ready", s(MediaStatus::Ready.as_str())),
        ];
        if let Some(v) = counted_value {
            values.push((":counted", v));
        }
        // `ready` also means the record exists (no update brings one back), and
        // that its message is there and shows it (a bound media's binding never
        // changes); both flags are only ever written together.
        let condition = format!("#status = :ready AND {counted}");
        let ops: Vec<TransactWriteItem> = vec![
            self.update_op(
                media.sid.as_str(),
                keys::MEDIA,
                "SET quota_charge = :charge",
                Some(&condition),
                values,
            )
            .with_name("#status", "status")
            .into(),
            // Its message's summary says so too (what a message delete gives back by).
            self.update_op(
                channel.as_str(),
                &keys::message(message),
                "SET #media.quota_counted = :true",
                None,
                vec![(":true", AttributeValue::Bool(true))],
            )
            .with_name("#media", "media")
            .into(),
            self.add_stored_op(&media.service_sid, media.size as i64),
        ];
        for attempt in 0..BACKFILL_TRIES {
            match self.transact(ops.clone()).await {
                Ok(()) => return Ok(true),
                Err(e) if e.condition_failed_at(0) => return Ok(false),
                Err(e) if e.is_conflict() => {
                    let pause = 20u64 << attempt;
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// The bytes the service's stored total counts (for tests and ops).
    pub async fn stored_bytes(&self, service: &ServiceSid) -> StoreResult<i64> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(service.as_str(), keys::QUOTA_STORED)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?
            .item;
        Ok(item
            .and_then(|i| i.get("stored_bytes").cloned())
            .and_then(|v| v.as_n().ok().and_then(|v| v.parse().ok()))
            .unwrap_or(0))
    }

    /// The bytes `identity` has charged in its open window at `now`, and when it
    /// closes (for tests and ops); `None` when no window is open.
    pub async fn quota_used(
        &self,
        service: &ServiceSid,
        identity: &Identity,
        window_secs: i64,
        now: i64,
    ) -> StoreResult<Option<(i64, i64)>> {
        Ok(self
            .quota_window(service, identity)
            .await?
            .filter(|w| w.start > now - window_secs)
            .map(|w| (w.used, w.start + window_secs)))
    }
}
