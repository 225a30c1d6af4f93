//! Deleting S3 objects after their records: each deletion was recorded as pending
//! in the same transaction that removed the record, and is cleared only once the
//! object is gone, so a failure here is retried by the sweep, never lost. A
//! media object's thumbnails ([`crate::thumbnail`], under its key) go first, in
//! one DeleteObjects call, so the marker outlives them too.

use crate::config::AppState;
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
