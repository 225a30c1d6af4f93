//! Deleting S3 objects after their records: each deletion was recorded as pending
//! in the same transaction that removed the record, and is cleared only once the
//! object is gone, so a failure here is retried by the sweep, never lost. A
//! media object's thumbnails ([`crate::thumbnail`], under its key) go first, in
//! one DeleteObjects call, so the marker outlives them too.

use crate::config::AppState;
use crate::model::{Media, MediaStatus};
use crate::store::StoreResult;

/// Tries to delete each object now and clears its pending marker; failures stay pending.
/// Returns how many objects were removed.
pub async fn delete_objects(state: &AppState, keys: &[String]) -> usize {
    let mut removed = 0;
    for key in keys {
        let thumbnails = crate::thumbnail::Spec::all_keys(key);
        if let Err(e) = state.blob.delete_many(&thumbnails).await {
            tracing::warn!(object = %key, error = %e, "thumbnail deletion failed; the sweep will retry");
            continue;
        }
        match state.blob.delete(key).await {
            Ok(()) => match state.store.clear_pending_deletion(key).await {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(object = %key, error = %e, "object deleted, marker left for the sweep")
                }
            },
            Err(e) => {
                tracing::warn!(object = %key, error = %e, "object deletion failed; the sweep will retry")
            }
        }
    }
    removed
}

/// One pass of the pending-deletion sweep: retries up to `limit` leftover deletions.
pub async fn sweep_pending_deletions(state: &AppState, limit: i32) -> StoreResult<usize> {
    let pending = state.store.pending_deletions(limit).await?;
    let keys: Vec<String> = pending.into_iter().map(|p| p.object_key).collect();
    Ok(delete_objects(state, &keys).await)
}

/// Services examined per page, media expired per query, and the bounds of one
/// retention pass (the next sweep continues).
const RETENTION_SERVICES_PAGE: i32 = 100;
const RETENTION_SERVICE_PAGES: usize = 20;
const RETENTION_MEDIA_PAGE: i32 = 100;
const RETENTION_MEDIA_PAGES: usize = 10;

/// The record of a media removed by retention: no content, no quota charge,
/// out of the retention index (bound media records carry none once re-put).
pub fn expired_record(media: &Media, now: chrono::DateTime<chrono::Utc>) -> Media {
    Media {
        status: MediaStatus::Expired,
        status_reason: Some("Removed after the service's media retention period".into()),
        quota: None,
        finalizing_until: None,
        date_updated: now,
        ..media.clone()
    }
}

/// One retention pass (`Media.RetentionDays`): for each service that keeps media
/// a limited time, the media of its messages dated before `now - days` become
/// `expired` and their objects are deleted (pending deletion recorded in the same
/// transaction, as for a message delete); the messages stay. Pages by date through
/// GSI1, never a table scan. Returns how many media expired.
pub async fn sweep_retention(state: &AppState, now: i64) -> StoreResult<usize> {
    let mut expired = 0;
    let mut start = None;
    for _ in 0..RETENTION_SERVICE_PAGES {
        let (services, next) = state
            .store
            .services_with_retention(RETENTION_SERVICES_PAGE, start)
            .await?;
        for service in services {
            let Some(days) = service.quotas.retention_days else {
                continue;
            };
            let cutoff = now - i64::from(days) * 86_400;
            for _ in 0..RETENTION_MEDIA_PAGES {
                let due = state
                    .store
                    .media_bound_before(&service.sid, cutoff, RETENTION_MEDIA_PAGE)
                    .await?;
                let mut keys = Vec::new();
                let date = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
                for media in &due {
                    if state
                        .store
                        .expire_media(media, &expired_record(media, date))
                        .await?
                    {
                        keys.push(media.object_key.clone());
                    }
                }
                expired += keys.len();
                delete_objects(state, &keys).await;
                if keys.is_empty() || due.len() < RETENTION_MEDIA_PAGE as usize {
                    break;
                }
            }
        }
        match next {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    Ok(expired)
}
