use super::items::{key, media_item, pending_deletion_item};
use super::{keys, Store, StoreError, StoreResult};
use crate::model::Media;
use crate::sid::MediaSid;

/// A pending deletion of an S3 object, left by a delete whose object removal may
/// not have happened yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct PendingDeletion {
    pub object_key: String,
}

impl Store {
    /// Records a new media; its SID (and so its S3 key) must never have existed.
    pub async fn create_media(&self, media: &Media) -> StoreResult<()> {
        self.put(media_item(media), Some("attribute_not_exists(PK)"))
            .await
    }

    pub async fn get_media(&self, sid: &MediaSid) -> StoreResult<Option<Media>> {
        self.get(sid.as_str(), keys::MEDIA, true).await
    }

    /// Pending deletions, oldest first, for the sweep to retry.
    pub async fn pending_deletions(&self, limit: i32) -> StoreResult<Vec<PendingDeletion>> {
        self.gsi1_head(keys::PENDING_DELETIONS, limit).await
    }

    /// Forgets a pending deletion once its object is gone.
    pub async fn clear_pending_deletion(&self, object_key: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&keys::pending_deletion(object_key), keys::OBJECT)))
            .send()
            .await
            .map(|_| ())
            .map_err(StoreError::from_sdk)
    }

    /// Records a pending deletion on its own (for objects removed outside a message delete).
    pub async fn add_pending_deletion(&self, object_key: &str) -> StoreResult<()> {
        self.put(pending_deletion_item(object_key), None).await
    }
}
