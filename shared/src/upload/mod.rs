//! Finalizing uploads: the checks that turn an `uploading` media into `ready`, or
//! refuse it and delete its object. The complete call (upload-media) and the S3
//! ObjectCreated event (media-events) both come here; a lease on the media record
//! makes sure only one of them does the work at a time.
//!
//! Checks, in order: the real size (at most the service limit, equal to the declared
//! size), the declared type and filename against the service's current policy, then
//! one read of the object ([`pass`]: ranged GETs in flight together, constant
//! memory) that sniffs its first bytes against the declared type, hashes it and
//! streams it to the virus scanner at once; the verdict is then stored ([`scanning`]).
//! A session that declared its `Sha256` has it checked in that read (another hash
//! is refused), and is not scanned when the service's hash index lists the
//! declared hash as scanned clean under clamd's current signature version.
//!
//! A refused upload keeps its record as `rejected` with its [`Refusal`] until it
//! expires, so a client that never called complete can still learn why; its object
//! is deleted at once (pending deletion recorded in the same transaction) and its
//! author's unbound-upload slot is given back.
//!
//! Every function takes the time as `now` (epoch seconds): nothing here reads the
//! clock, so the decisions are the same in tests and after a retry.

mod fetched;
mod hook;
mod pass;
mod scanning;
mod strip;

pub use fetched::{fetched_upload, ingest_url, FETCH_ATTEMPTS, FETCH_LEASE_SECS};
pub use hook::on_media_upload;
pub use scanning::SCAN_LEASE_MARGIN_SECS;
pub use scanning::{
    awaits_scan, needs_rescan, rescan, scan_media, scan_unless_known, ScanContent, ScanStart,
};
pub use strip::strip_metadata;

use chrono::{DateTime, Utc};

use crate::blob::{BlobError, CompleteUploadError};
use crate::config::AppState;
pub use crate::model::Refusal;
use crate::model::{Media, MediaSettings, MediaStatus, Sha256, UploadSession};
use crate::policy::{self, MediaType};
use crate::sid::MediaSid;
use crate::store::StoreError;

/// How long a finalizer may hold an upload before another may take over (seconds).
/// Covers reading, hashing and scanning 150 MB from S3 with room to spare.
pub const FINALIZE_LEASE_SECS: i64 = 120;

/// What asked for the finalization.
#[derive(Debug, Clone, Copy)]
pub enum Trigger<'a> {
    /// The client's complete call, with its part ETags in part order (multipart only).
    Complete { part_etags: &'a [String] },
    /// S3 reported the object created.
    ObjectCreated,
}

/// What finalizing led to.
#[derive(Debug)]
pub enum Outcome {
    /// Checked (and scanned clean, when scanning) and stored as `ready`, now or earlier.
    Finished(Media),
    /// Refused (now or earlier): the record as stored, with its [`Refusal`].
    Refused(Media),
    /// Another finalizer or scan holds the media (`uploading` or `scanning`); the
    /// record as read.
    InProgress(Media),
}

/// Why finalizing stopped and left the upload as it was (the client may fix and
/// retry, or the failure is passing).
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    #[error("media {0} not found")]
    NotFound(MediaSid),
    #[error("the upload session of media {0} has expired")]
    Expired(MediaSid),
    /// This finalizer's lease ran out and its write was refused: another finalizer
    /// (or the sweep) took the media over and owns its record and object now.
    /// Nothing was written, and nothing may be deleted on this finalizer's word.
    #[error("media {0} was taken over by another finalizer")]
    LeaseLost(MediaSid),
    #[error("no part ETags")]
    MissingPartETags,
    #[error("expected {expected} part ETags, got {got}")]
    PartETagCount { expected: u32, got: usize },
    #[error("invalid parts: {0}")]
    InvalidParts(String),
    #[error("media {0} has no uploaded content yet")]
    NothingUploaded(MediaSid),
    #[error("the uploaded object changed while it was checked")]
    ObjectChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

pub type FinalizeResult<T> = Result<T, FinalizeError>;

/// Epoch seconds as a record date.
fn at(now: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(now, 0).unwrap_or_default()
}

/// The media if it is still `uploading`; otherwise how it stands now (a media
/// whose scan is due is rescanned first). Every finalization starts here.
pub(crate) async fn still_uploading(
    state: &AppState,
    sid: &MediaSid,
    now: i64,
) -> FinalizeResult<Result<Media, Outcome>> {
    let media = state
        .store
        .get_media(sid)
        .await?
        .ok_or_else(|| FinalizeError::NotFound(sid.clone()))?;
    if media.status != MediaStatus::Uploading {
        if awaits_scan(state, &media, now) {
            return rescan(state, &media, now).await.map(Err);
        }
        return Ok(Err(settled(&media)));
    }
    Ok(Ok(media))
}

/// Finalizes an upload if it is still `uploading`; otherwise reports how it ended.
pub async fn finalize(
    state: &AppState,
    sid: &MediaSid,
    trigger: Trigger<'_>,
    now: i64,
) -> FinalizeResult<Outcome> {
    let media = match still_uploading(state, sid, now).await? {
        Ok(media) => media,
        Err(outcome) => return Ok(outcome),
    };
    if media.expires_at.is_some_and(|e| e <= now) {
        return Err(FinalizeError::Expired(sid.clone()));
    }
    if media.finalizing_until.is_some_and(|l| l >= now) {
        return Ok(Outcome::InProgress(media));
    }
    let lease = now + FINALIZE_LEASE_SECS;
    let Some(media) = state.store.claim_finalization(sid, now, lease).await? else {
        // Lost a race with another finalizer or the sweep: report what is there now.
        return current(state, sid).await;
    };
    finalize_claimed(state, &media, lease, trigger, now).await
}

/// The checks and the scan of an upload whose finalization lease the caller
/// holds (`lease`): [`finalize`] after its claim, and media fetched from a URL
/// ([`ingest_url`]) once their bytes are in S3.
async fn finalize_claimed(
    state: &AppState,
    media: &Media,
    lease: i64,
    trigger: Trigger<'_>,
    now: i64,
) -> FinalizeResult<Outcome> {
    let sid = &media.sid;
    // The signature version (cached), asked as the one read scans: a clean
    // verdict enters the service's hash index under it. At the same time, so a
    // hung clamd is waited for once.
    let version = async {
        match &state.scanner {
            Some(scanner) => scanner.signature_version().await.ok().flatten(),
            None => None,
        }
    };
    let (signatures, checked) = tokio::join!(version, check(state, media, trigger));
    match checked {
        Ok(Ok(pass::Read { passed, verdict })) => {
            let start = ScanStart::Checked { lease, passed };
            let content = match verdict {
                // Without a scanner scan_media stores it as it is.
                pass::Verdict::Unscanned => ScanContent::Object,
                pass::Verdict::Scanned(v) => ScanContent::ScannedUploaded(v, signatures),
                pass::Verdict::Known(version) => {
                    tracing::info!(media = %sid, signatures = version, "declared Sha256 known clean and matched by the bytes: not sent to clamd");
                    ScanContent::Known(version)
                }
            };
            scan_media(state, media, start, content, now).await
        }
        Ok(Err(refusal)) => reject(state, media, lease, refusal, now).await,
        Err(e) => {
            if let Err(release) = state.store.release_finalization(sid, lease).await {
                tracing::warn!(media = %sid, error = %release, "lease left to expire");
            }
            Err(e)
        }
    }
}

/// How a media that is not being finalized by the caller stands.
pub fn settled(media: &Media) -> Outcome {
    match media.status {
        MediaStatus::Uploading | MediaStatus::Scanning => Outcome::InProgress(media.clone()),
        MediaStatus::Ready => Outcome::Finished(media.clone()),
        MediaStatus::Rejected
        | MediaStatus::Failed
        | MediaStatus::Quarantined
        | MediaStatus::Expired => Outcome::Refused(media.clone()),
    }
}

/// What another finalizer or scan left, after this one lost a condition.
async fn current(state: &AppState, sid: &MediaSid) -> FinalizeResult<Outcome> {
    match state.store.get_media(sid).await? {
        None => Err(FinalizeError::NotFound(sid.clone())),
        Some(m) => Ok(settled(&m)),
    }
}

/// What the checks found about a stored object that passed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    /// Of the stored bytes.
    pub sha256: String,
    pub size: u64,
    /// Of the uploaded bytes, when stripping their metadata changed them.
    pub original_sha256: Option<String>,
}

/// The part ETags of a complete call fit the session: one per part.
pub fn check_part_etags(session: &UploadSession, part_etags: &[String]) -> FinalizeResult<()> {
    if part_etags.is_empty() {
        return Err(FinalizeError::MissingPartETags);
    }
    if part_etags.len() != session.part_count as usize {
        return Err(FinalizeError::PartETagCount {
            expected: session.part_count,
            got: part_etags.len(),
        });
    }
    Ok(())
}

/// The uploaded size against the service limit and the declared size.
pub fn check_size(settings: &MediaSettings, declared: u64, uploaded: u64) -> Result<(), Refusal> {
    policy::check_size(settings, uploaded)?;
    match uploaded.cmp(&declared) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(Refusal::LargerThanDeclared { uploaded, declared }),
        std::cmp::Ordering::Less => Err(Refusal::SmallerThanDeclared { uploaded, declared }),
    }
}

/// Runs every check on the uploaded object. `Ok(Err(_))` is a refusal (the upload
/// is rejected); `Err(_)` leaves the upload as it was.
async fn check(
    state: &AppState,
    media: &Media,
    trigger: Trigger<'_>,
) -> FinalizeResult<Result<pass::Read, Refusal>> {
    let key = &media.object_key;
    let multipart = media
        .upload
        .as_ref()
        .and_then(|u| Some((u, u.multipart_upload_id.as_deref()?)));
    if let (Some((session, upload_id)), Trigger::Complete { part_etags }) = (multipart, trigger) {
        check_part_etags(session, part_etags)?;
        match state
            .blob
            .complete_multipart(key, upload_id, part_etags)
            .await
        {
            // NoSuchUpload: an earlier attempt completed it; the object tells.
            Ok(()) | Err(CompleteUploadError::NoSuchUpload) => {}
            Err(CompleteUploadError::InvalidParts(why)) => {
                return Err(FinalizeError::InvalidParts(why))
            }
            Err(CompleteUploadError::Blob(e)) => return Err(e.into()),
        }
    }

    let Some(size) = state.blob.size(key).await? else {
        return Err(FinalizeError::NothingUploaded(media.sid.clone()));
    };
    let Some(service) = state.store.get_service(&media.service_sid).await? else {
        return Ok(Err(Refusal::ServiceGone));
    };
    let settings = &service.media;
    if let Err(r) = check_size(settings, media.size, size) {
        return Ok(Err(r));
    }
    let content_type = match MediaType::parse(&media.content_type) {
        Ok(t) => t,
        Err(r) => return Ok(Err(r)),
    };
    if let Err(r) = policy::check_declared(settings, &content_type, media.filename.as_ref()) {
        return Ok(Err(r));
    }
    let declared = media
        .upload
        .as_ref()
        .and_then(|u| u.declared_sha256.as_ref());
    let known = match declared {
        Some(d) => scanning::declared_known_clean(state, &media.service_sid, d).await,
        None => None,
    };
    pass::read_once(state, key, size, settings, &content_type, declared, known).await
}

/// The deny-list step, on the hashes of checked bytes (stored and, when
/// stripping changed them, uploaded): bytes whose SHA-256 the service
/// quarantined ([`crate::takedown`]) are refused, whoever uploads them.
async fn deny_listed(
    state: &AppState,
    media: &Media,
    passed: &Passed,
) -> FinalizeResult<Option<Refusal>> {
    let hashes = std::iter::once(&passed.sha256).chain(passed.original_sha256.as_ref());
    for sha256 in hashes {
        let Ok(digest) = Sha256::parse(sha256) else {
            continue;
        };
        let entry = state
            .store
            .quarantined_hash(&media.service_sid, &digest)
            .await?;
        if let Some(e) = entry {
            return Ok(Some(Refusal::Quarantined { reason: e.reason }));
        }
    }
    Ok(None)
}

/// The record of a checked upload: its real size and hash, `status`, and its
/// unbound expiry restarted from `now`. `scan_lease` is kept in
/// `finalizing_until` while `scanning`, so a scan that dies can be taken over.
pub fn checked_record(
    media: &Media,
    passed: Passed,
    status: MediaStatus,
    scan_lease: Option<i64>,
    unbound_ttl_secs: i64,
    now: i64,
) -> Media {
    Media {
        status,
        status_reason: None,
        refusal: None,
        sha256: Some(passed.sha256),
        original_sha256: passed.original_sha256,
        size: passed.size,
        upload: None,
        finalizing_until: scan_lease,
        date_upload_updated: at(now),
        date_updated: at(now),
        expires_at: Some(now + unbound_ttl_secs),
        ..media.clone()
    }
}

/// The record of a refused upload: `status` (`rejected`, or `failed` when the
/// upload itself failed) with its refusal; it no longer holds a slot.
pub fn refused_record(media: &Media, refusal: Refusal, status: MediaStatus, now: i64) -> Media {
    Media {
        status,
        status_reason: Some(refusal.to_string()),
        refusal: Some(refusal),
        holds_slot: false,
        quota: None,
        upload: None,
        finalizing_until: None,
        date_updated: at(now),
        ..media.clone()
    }
}

/// Stores a checked upload as `ready` (or `scanning` with `scan_lease`). Needs the
/// lease; losing it ([`FinalizeError::LeaseLost`]) means another finalizer or the
/// sweep took the upload over.
async fn store_checked(
    state: &AppState,
    media: &Media,
    lease: i64,
    passed: Passed,
    scan_lease: Option<i64>,
    now: i64,
) -> FinalizeResult<Outcome> {
    let status = match scan_lease {
        Some(_) => MediaStatus::Scanning,
        None => MediaStatus::Ready,
    };
    let ttl = state.settings.unbound_media_ttl.as_secs() as i64;
    let done = checked_record(media, passed, status, scan_lease, ttl, now);
    if state.store.finish_upload(&done, lease).await? {
        tracing::info!(media = %done.sid, size = done.size, status = done.status.as_str(), "upload finalized");
        Ok(Outcome::Finished(done))
    } else {
        Err(FinalizeError::LeaseLost(media.sid.clone()))
    }
}

/// Stores a refused upload as `status` with its refusal, gives back its slot and
/// records the pending deletion of its object, in one transaction. Needs the lease.
async fn store_refused(
    state: &AppState,
    media: &Media,
    lease: i64,
    refusal: Refusal,
    status: MediaStatus,
    now: i64,
) -> FinalizeResult<Media> {
    let refused = refused_record(media, refusal, status, now);
    if state
        .store
        .reject_upload(&refused, lease, media.holds_slot, media.quota.as_ref(), now)
        .await?
    {
        Ok(refused)
    } else {
        Err(FinalizeError::LeaseLost(media.sid.clone()))
    }
}

/// A direct upload whose storing failed (S3 or the data store gave out): `failed`,
/// its slot given back and the deletion of whatever reached S3 left pending for the
/// sweep. S3 is not called again, so a hung S3 is not waited for twice.
pub async fn fail_upload(
    state: &AppState,
    media: &Media,
    lease: i64,
    now: i64,
) -> FinalizeResult<Media> {
    let failed = store_refused(
        state,
        media,
        lease,
        Refusal::UploadFailed,
        MediaStatus::Failed,
        now,
    )
    .await?;
    tracing::info!(media = %media.sid, "upload failed; its object is left to the sweep");
    Ok(failed)
}

/// Stores a refused upload as `rejected`, gives back its slot, and deletes its
/// object (pending deletion recorded first). Needs the lease.
async fn reject(
    state: &AppState,
    media: &Media,
    lease: i64,
    refusal: Refusal,
    now: i64,
) -> FinalizeResult<Outcome> {
    let refused = store_refused(state, media, lease, refusal, MediaStatus::Rejected, now).await?;
    if let Some(upload_id) = media
        .upload
        .as_ref()
        .and_then(|u| u.multipart_upload_id.as_deref())
    {
        if let Err(e) = state
            .blob
            .abort_multipart(&media.object_key, upload_id)
            .await
        {
            tracing::warn!(media = %media.sid, error = %e, "multipart upload left to the bucket lifecycle rule");
        }
    }
    crate::cleanup::delete_objects(state, std::slice::from_ref(&media.object_key)).await;
    tracing::info!(media = %media.sid, reason = refused.status_reason.as_deref().unwrap_or_default(), "upload refused");
    Ok(Outcome::Refused(refused))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::model::NewUpload;
    use crate::sid::ServiceSid;

    /// alice's 10-byte PNG upload expiring at 1000, with `session` and `lease`.
    pub(super) fn sample(session: Option<UploadSession>, lease: Option<i64>) -> Media {
        Media::new_upload(
            MediaSid::generate(),
            ServiceSid::generate(),
            NewUpload {
                author: Identity::parse("alice").unwrap(),
                content_type: "image/png".into(),
                filename: None,
                size: 10,
                upload: session,
                holds_slot: true,
            },
            1_000,
            lease,
            at(100),
        )
    }

    fn upload() -> Media {
        sample(
            Some(UploadSession {
                multipart_upload_id: Some("u1".into()),
                part_size: 5,
                part_count: 2,
                declared_sha256: None,
            }),
            Some(900),
        )
    }

    #[test]
    fn settled_reports_each_status() {
        let mut m = upload();
        for (status, want) in [
            (MediaStatus::Uploading, "in progress"),
            (MediaStatus::Scanning, "in progress"),
            (MediaStatus::Ready, "finished"),
            (MediaStatus::Rejected, "refused"),
            (MediaStatus::Failed, "refused"),
        ] {
            m.status = status;
            let got = match settled(&m) {
                Outcome::InProgress(_) => "in progress",
                Outcome::Finished(_) => "finished",
                Outcome::Refused(_) => "refused",
            };
            assert_eq!(got, want, "{status:?}");
        }
    }

    #[test]
    fn part_etags_must_be_one_per_part() {
        let m = upload();
        let session = m.upload.as_ref().unwrap();
        assert!(matches!(
            check_part_etags(session, &[]),
            Err(FinalizeError::MissingPartETags)
        ));
        assert!(matches!(
            check_part_etags(session, &["a".into()]),
            Err(FinalizeError::PartETagCount {
                expected: 2,
                got: 1
            })
        ));
        assert!(check_part_etags(session, &["a".into(), "b".into()]).is_ok());
    }

    #[test]
    fn sizes_must_match_the_declaration_and_the_limit() {
        let s = MediaSettings::default();
        assert_eq!(check_size(&s, 10, 10), Ok(()));
        assert_eq!(
            check_size(&s, 10, 11),
            Err(Refusal::LargerThanDeclared {
                uploaded: 11,
                declared: 10
            })
        );
        assert_eq!(
            check_size(&s, 10, 9),
            Err(Refusal::SmallerThanDeclared {
                uploaded: 9,
                declared: 10
            })
        );
        assert_eq!(check_size(&s, 10, 0), Err(Refusal::Empty));
        let over = 150 * 1024 * 1024 + 1;
        assert!(matches!(
            check_size(&s, over, over),
            Err(Refusal::TooLarge { .. })
        ));
    }

    #[test]
    fn a_checked_record_restarts_its_expiry_and_drops_the_session() {
        let m = upload();
        let passed = Passed {
            sha256: "ab".into(),
            size: 10,
            original_sha256: None,
        };
        let done = checked_record(
            &m,
            passed,
            MediaStatus::Scanning,
            Some(5_000),
            86_400,
            2_000,
        );
        assert_eq!(done.status, MediaStatus::Scanning);
        assert_eq!(done.expires_at, Some(2_000 + 86_400));
        assert_eq!(done.finalizing_until, Some(5_000));
        assert_eq!(done.upload, None);
        assert_eq!(done.sha256.as_deref(), Some("ab"));
        assert_eq!(done.date_updated, at(2_000));
        assert!(done.holds_slot, "the slot is held until bound or refused");
    }

    #[test]
    fn a_refused_record_keeps_its_refusal_and_frees_its_slot() {
        let m = upload();
        let refusal = Refusal::Infected {
            signature: "X.UNOFFICIAL".into(),
        };
        let r = refused_record(&m, refusal.clone(), MediaStatus::Rejected, 3_000);
        assert_eq!(r.refusal(), Some(&refusal));
        assert_eq!(r.status_reason.as_deref(), Some("infected: X.UNOFFICIAL"));
        assert!(!r.holds_slot);
        assert_eq!(r.finalizing_until, None);
    }
}
