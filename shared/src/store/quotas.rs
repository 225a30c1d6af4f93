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
//! `stored_bytes`, charged with `ADD` if `stored_bytes <= limit - size`, given back
//! when the media is refused, swept, deleted with its message, quarantined or
//! removed by retention.

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::items::{key, n, Item};
use super::{keys, Store, StoreError, StoreResult};
use crate::identity::Identity;
use crate::model::QuotaCharge;
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
}

impl QuotaLimits {
    pub fn is_off(&self) -> bool {
        self.identity.is_none() && self.service.is_none()
    }
}

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
        self.update_op(
            service.as_str(),
            keys::QUOTA_STORED,
            "ADD stored_bytes :minus",
            None,
            vec![(":minus", n(-(bytes as i64)))],
        )
        .into()
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
