//! Takedown by hash: an admin quarantines a media. Its record stays (`quarantined`,
//! with the reason), its message stays and shows its media as removed, its object
//! is deleted with its thumbnails (pending deletion recorded in the same
//! transaction, so the sweep finishes a failed delete) and its SHA-256 (stored
//! and, when metadata stripping changed the bytes, original) enters the
//! service's deny-list, which
//! finalize checks for every later upload ([`crate::upload`]).

use crate::cleanup;
use crate::config::AppState;
use crate::limits::{self, TooLong};
use crate::model::{Media, MediaStatus, QuarantinedHash, Sha256};
use crate::sid::{MediaSid, ServiceSid};
use crate::store::StoreError;

/// An admin's reason for a quarantine: not empty, at most
/// [`limits::QUARANTINE_REASON`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("must not be empty")]
    Empty,
    #[error(transparent)]
    TooLong(#[from] TooLong),
}

impl Reason {
    pub fn parse(value: &str) -> Result<Self, ReasonError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ReasonError::Empty);
        }
        limits::QUARANTINE_REASON.check(value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TakedownError {
    #[error("media {0} not found")]
    NotFound(MediaSid),
    /// Only `ready` media have checked bytes to take down; the others have no
    /// object (refused, quarantined) or no hash yet (uploading, scanning).
    #[error("media {sid} is {}", status.as_str())]
    NotReady { sid: MediaSid, status: MediaStatus },
    /// The media changed (was bound, deleted) while it was quarantined.
    #[error("media {0} changed while it was quarantined")]
    Changed(MediaSid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The record of a quarantined media: no content, no slot, the reason.
pub fn quarantined_record(
    media: &Media,
    reason: &Reason,
    now: chrono::DateTime<chrono::Utc>,
) -> Media {
    Media {
        status: MediaStatus::Quarantined,
        status_reason: Some(format!("Removed by an administrator: {}", reason.as_str())),
        refusal: None,
        holds_slot: false,
        quota: None,
        finalizing_until: None,
        date_updated: now,
        ..media.clone()
    }
}

/// Quarantines `sid` of `service`: see the module doc. Returns the stored record.
pub async fn quarantine(
    state: &AppState,
    service: &ServiceSid,
    sid: &MediaSid,
    reason: &Reason,
) -> Result<Media, TakedownError> {
    let media = state
        .store
        .get_media(sid)
        .await?
        .filter(|m| &m.service_sid == service)
        .ok_or_else(|| TakedownError::NotFound(sid.clone()))?;
    let digest = media.sha256.as_deref().map(Sha256::parse);
    let (MediaStatus::Ready, Some(Ok(sha256))) = (media.status, digest) else {
        return Err(TakedownError::NotReady {
            sid: sid.clone(),
            status: media.status,
        });
    };
    let now = crate::model::now();
    let quarantined = quarantined_record(&media, reason, now);
    // The stored bytes' hash and, when stripping changed them, the uploaded ones'.
    let original = media
        .original_sha256
        .as_deref()
        .and_then(|h| Sha256::parse(h).ok())
        .filter(|o| o != &sha256);
    let entries: Vec<QuarantinedHash> = std::iter::once(sha256)
        .chain(original)
        .map(|sha256| QuarantinedHash {
            sha256,
            service_sid: service.clone(),
            media_sid: sid.clone(),
            reason: reason.as_str().to_owned(),
            date_created: now,
        })
        .collect();
    if !state
        .store
        .quarantine_media(&media, &quarantined, &entries, now.timestamp())
        .await?
    {
        return Err(TakedownError::Changed(sid.clone()));
    }
    cleanup::delete_objects(state, std::slice::from_ref(&media.object_key)).await;
    tracing::info!(media = %sid, service = %service, "media quarantined");
    Ok(quarantined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_trimmed_not_empty_and_bounded() {
        assert_eq!(Reason::parse("  spam ").unwrap().as_str(), "spam");
        assert_eq!(Reason::parse("   "), Err(ReasonError::Empty));
        assert!(matches!(
            Reason::parse(&"x".repeat(1025)),
            Err(ReasonError::TooLong(_))
        ));
        assert!(Reason::parse(&"x".repeat(1024)).is_ok());
    }
}
