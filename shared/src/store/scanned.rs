//! The per-service hash index of bytes scanned clean (issue 17 §3): `SCANNED#<sha256>`
//! in the service's partition, with the clamd signature version of that scan.
//! Finalize skips the scan of bytes listed under the signature version clamd
//! has now ([`crate::upload`]); the deny-list is checked before either.

use std::collections::HashMap;

use super::items::{key, n, s};
use super::{keys, Store, StoreError, StoreResult};
use crate::model::Sha256;
use crate::sid::ServiceSid;

/// How long an entry is kept (DynamoDB TTL): clamd's signatures are updated
/// several times a day, so an older entry would not match the version anyway.
const SCANNED_TTL_SECS: i64 = 30 * 86_400;

impl Store {
    /// The signature version under which `sha256` was last scanned clean in `service`.
    pub async fn scanned_clean(
        &self,
        service: &ServiceSid,
        sha256: &Sha256,
    ) -> StoreResult<Option<u64>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                service.as_str(),
                &keys::scanned_hash(sha256.as_str()),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out
            .item
            .and_then(|i| i.get("signatures").cloned())
            .and_then(|v| v.as_n().ok().and_then(|v| v.parse().ok())))
    }

    /// Records that `sha256` was scanned clean in `service` under `signatures`.
    pub async fn record_scanned_clean(
        &self,
        service: &ServiceSid,
        sha256: &Sha256,
        signatures: u64,
        now: i64,
    ) -> StoreResult<()> {
        let mut item: HashMap<_, _> = key(service.as_str(), &keys::scanned_hash(sha256.as_str()));
        item.insert("signatures".into(), n(signatures));
        item.insert("sha256".into(), s(sha256.as_str()));
        item.insert(keys::TTL.into(), n(now + SCANNED_TTL_SECS));
        self.put(item, None).await
    }
}
