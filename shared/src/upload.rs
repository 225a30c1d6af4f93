//! Finalizing uploads: the checks that turn an `uploading` media into `ready`, or
//! refuse it and delete its object. The complete call (upload-media) and the S3
//! ObjectCreated event (media-events) both come here; a lease on the media record
//! makes sure only one of them does the work at a time.
//!
//! Checks, in order: the real size (at most the service limit, equal to the declared
//! size), the declared type and filename against the service's current policy, the
//! first bytes (ranged GET) against the declared type, then the SHA-256 of the whole
//! object (streamed, constant memory), then the virus scan ([`scan_media`]).
//!
//! Scanning (when `AppState` has a scanner): `uploading → scanning → ready |
//! rejected | failed`, each step a conditional write on the current status, never
//! read-then-write, so the complete call, the S3 event and the sweep can scan the
//! same (immutable) object without undoing each other. Infected: the object is
//! deleted at once, the record kept as `rejected` with the signature, 422. Scanner
//! error: `failed`, object and slot kept, 503; the sweep rescans.
//!
//! A refused upload keeps its record as `rejected` (with `status_reason`) until it
//! expires, so a client that never called complete can still learn why; its object
//! is deleted at once (pending deletion recorded in the same transaction) and its
//! author's unbound-upload slot is given back.

use chrono::{DateTime, Utc};

use crate::blob::CompleteUploadError;
use crate::config::AppState;
use crate::error::{code, ApiError, ApiResult};
use crate::model::{Media, MediaStatus};
use crate::policy::{self, MediaType};
use crate::scan::{self, ScanError, ScanVerdict};
use crate::sid::MediaSid;

/// How long a finalizer may hold an upload before another may take over (seconds).
/// Covers hashing 150 MB from S3 with room to spare.
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
    /// Refused (now or earlier): the record as stored and the caller's error.
    Refused(Media, ApiError),
    /// Another finalizer or scan holds the media (`uploading` or `scanning`); the
    /// record as read.
    InProgress(Media),
}

/// The error a rejected media answers with, rebuilt from its record.
pub fn rejection_error(media: &Media) -> ApiError {
    let code = media.rejection_code.unwrap_or(code::UNPROCESSABLE);
    let status = match code {
        code::TOO_LARGE => http::StatusCode::PAYLOAD_TOO_LARGE,
        code::UNSUPPORTED_MEDIA_TYPE => http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code::INVALID_PARAMETER => http::StatusCode::BAD_REQUEST,
        code::UNAVAILABLE => http::StatusCode::SERVICE_UNAVAILABLE,
        code::INTERNAL => http::StatusCode::INTERNAL_SERVER_ERROR,
        _ => http::StatusCode::UNPROCESSABLE_ENTITY,
    };
    let reason = media
        .status_reason
        .clone()
        .unwrap_or_else(|| format!("Media {} was refused", media.sid));
    ApiError::new(status, code, reason)
}

fn at(now: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(now, 0).unwrap_or_else(crate::model::now)
}

/// Finalizes an upload if it is still `uploading`; otherwise reports how it ended.
///
/// Errors that leave the upload as it was (the client may fix and retry): 404 no
/// such media or expired, 400 wrong part ETags, 409 nothing uploaded yet, 503.
pub async fn finalize(
    state: &AppState,
    sid: &MediaSid,
    trigger: Trigger<'_>,
    now: i64,
) -> ApiResult<Outcome> {
    let media = state
        .store
        .get_media(sid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Media {sid} not found")))?;
    if media.status != MediaStatus::Uploading {
        if awaits_scan(state, &media, now) {
            return rescan(state, &media, now).await;
        }
        return Ok(settled(&media));
    }
    if media.expires_at.is_some_and(|e| e <= now) {
        return Err(expired(sid));
    }
    if media.finalizing_until.is_some_and(|l| l >= now) {
        return Ok(Outcome::InProgress(media));
    }
    let lease = now + FINALIZE_LEASE_SECS;
    let Some(media) = state.store.claim_finalization(sid, now, lease).await? else {
        // Lost a race with another finalizer or the sweep: report what is there now.
        return match state.store.get_media(sid).await? {
            None => Err(ApiError::not_found(format!("Media {sid} not found"))),
            Some(m) => Ok(settled(&m)),
        };
    };
    match check(state, &media, trigger).await {
        Ok(Ok(passed)) => {
            let start = ScanStart::Checked { lease, passed };
            scan_media(state, &media, start, ScanContent::Object, now).await
        }
        Ok(Err(refusal)) => reject(state, &media, lease, refusal, now).await,
        Err(e) => {
            if let Err(release) = state.store.release_finalization(sid, lease).await {
                tracing::warn!(media = %sid, error = %release, "lease left to expire");
            }
            Err(e)
        }
    }
}

/// How a media that is not being finalized by the caller stands.
fn settled(media: &Media) -> Outcome {
    match media.status {
        MediaStatus::Uploading | MediaStatus::Scanning => Outcome::InProgress(media.clone()),
        MediaStatus::Ready => Outcome::Finished(media.clone()),
        MediaStatus::Rejected | MediaStatus::Failed => {
            Outcome::Refused(media.clone(), rejection_error(media))
        }
    }
}

/// Whether `media` waits for a (re)scan this scanner can do now: `failed` after a
/// scanner error, or `scanning` whose scan lease ran out. A `failed` media without a
/// `sha256` never passed the checks (its upload itself failed, its object is gone):
/// nothing to scan.
pub fn awaits_scan(state: &AppState, media: &Media, now: i64) -> bool {
    let stale_scan =
        media.status == MediaStatus::Scanning && media.finalizing_until.is_some_and(|l| l < now);
    state.scanner.is_some()
        && media.sha256.is_some()
        && media.message_sid.is_none()
        && media.expires_at.is_some_and(|e| e > now)
        && (media.status == MediaStatus::Failed || stale_scan)
}

/// Scans a `failed` (or stale `scanning`) media again from its S3 object.
pub async fn rescan(state: &AppState, media: &Media, now: i64) -> ApiResult<Outcome> {
    scan_media(state, media, ScanStart::Rescan, ScanContent::Object, now).await
}

fn expired(sid: &MediaSid) -> ApiError {
    ApiError::not_found(format!(
        "The upload session of Media {sid} has expired; start a new one"
    ))
}

/// What the checks found about a stored object that passed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub sha256: String,
    pub size: u64,
    pub status: MediaStatus,
}

/// Runs every check on the uploaded object. `Ok(Err(_))` is a refusal (the upload
/// is rejected); `Err(_)` leaves the upload as it was.
async fn check(
    state: &AppState,
    media: &Media,
    trigger: Trigger<'_>,
) -> ApiResult<Result<Passed, ApiError>> {
    let key = &media.object_key;
    let multipart = media
        .upload
        .as_ref()
        .and_then(|u| Some((u, u.multipart_upload_id.as_deref()?)));
    if let Some((session, upload_id)) = multipart {
        if let Trigger::Complete { part_etags } = trigger {
            if part_etags.is_empty() {
                return Err(ApiError::missing("PartETag"));
            }
            if part_etags.len() != session.part_count as usize {
                return Err(ApiError::invalid(
                    "PartETag",
                    format!(
                        "expected {} values (one per part, in part order), got {}",
                        session.part_count,
                        part_etags.len()
                    ),
                ));
            }
            match state
                .blob
                .complete_multipart(key, upload_id, part_etags)
                .await
            {
                // NoSuchUpload: an earlier attempt completed it; the object tells.
                Ok(()) | Err(CompleteUploadError::NoSuchUpload) => {}
                Err(CompleteUploadError::InvalidParts(why)) => {
                    return Err(ApiError::invalid("PartETag", why))
                }
                Err(CompleteUploadError::Blob(e)) => return Err(e.into()),
            }
        }
    }

    let Some(size) = state.blob.size(key).await? else {
        return Err(ApiError::conflict(
            code::CONFLICT,
            format!("Media {} has no uploaded content yet", media.sid),
        ));
    };
    let Some(service) = state.store.get_service(&media.service_sid).await? else {
        return Ok(Err(ApiError::unprocessable(format!(
            "Service {} no longer exists",
            media.service_sid
        ))));
    };
    let settings = &service.media;
    if let Err(r) = policy::check_size(settings, size) {
        return Ok(Err(r.into()));
    }
    if size != media.size {
        let why = format!(
            "{size} bytes were uploaded but {} were declared",
            media.size
        );
        return Ok(Err(if size > media.size {
            ApiError::too_large(why)
        } else {
            ApiError::bad_request(why)
        }));
    }
    let content_type = match MediaType::parse(&media.content_type) {
        Ok(t) => t,
        Err(r) => return Ok(Err(r.into())),
    };
    if let Err(r) = policy::check_declared(settings, &content_type, media.filename.as_deref()) {
        return Ok(Err(r.into()));
    }
    let head = state
        .blob
        .head_bytes(key, policy::SNIFF_BYTES)
        .await?
        .unwrap_or_default();
    if let Err(r) = policy::check_content(settings, &content_type, &head) {
        return Ok(Err(r.into()));
    }
    let Some(digest) = state.blob.digest(key).await? else {
        return Err(ApiError::unavailable(
            "The uploaded object vanished while it was checked; try again",
        ));
    };
    if digest.size != size {
        return Err(ApiError::unavailable(
            "The uploaded object changed while it was checked; try again",
        ));
    }
    Ok(Ok(Passed {
        sha256: digest.sha256,
        size,
        status: MediaStatus::Ready,
    }))
}

/// How the scan of a media begins.
#[derive(Debug)]
pub enum ScanStart {
    /// An `uploading` media that just passed every check, under its finalization
    /// lease: stored with the checked facts, as `scanning` (or `ready` when no
    /// scanner is configured).
    Checked { lease: i64, passed: Passed },
    /// A `failed` media, or one left `scanning` by a scan that died.
    Rescan,
}

/// What is scanned.
#[derive(Debug, Clone, Copy)]
pub enum ScanContent<'a> {
    /// The bytes already in hand (a direct upload): no second read from S3.
    Bytes(&'a [u8]),
    /// The stored S3 object, streamed.
    Object,
}

/// How long a scan may hold a media in `scanning` before a rescan may take over:
/// the scanner's read timeout (which bounds each write and the verdict) plus a margin.
fn scan_lease_secs(scanner: &crate::scan::Scanner) -> i64 {
    scanner.read_timeout().as_secs() as i64 + SCAN_LEASE_MARGIN_SECS
}

/// Margin over the read timeout before a `scanning` media counts as abandoned.
pub const SCAN_LEASE_MARGIN_SECS: i64 = 60;

/// The one scanning procedure, for direct uploads, completed sessions, S3 events
/// and the sweep. Without a scanner a checked upload becomes `ready` (and a rescan
/// does nothing: nothing becomes ready unscanned once it failed a scan).
///
/// - `→ scanning` (conditional: `uploading` under `lease`, or `failed` / stale
///   `scanning` for a rescan), then the scan;
/// - clean: `→ ready` (conditional on `scanning`/`failed`);
/// - infected: `→ rejected` with `infected: <signature>`, slot released, pending
///   deletion recorded, then the object deleted at once; the caller's 422;
/// - scanner error: `→ failed` (only by this scan), object and slot kept; 503.
///
/// A lost condition means another scan settled the media: its state is reported.
pub async fn scan_media(
    state: &AppState,
    media: &Media,
    start: ScanStart,
    content: ScanContent<'_>,
    now: i64,
) -> ApiResult<Outcome> {
    let Some(scanner) = &state.scanner else {
        return match start {
            ScanStart::Checked { lease, passed } => finish(state, media, lease, passed, now).await,
            ScanStart::Rescan => Ok(settled(media)),
        };
    };
    let scan_lease = now + scan_lease_secs(scanner);
    let scanning = match start {
        ScanStart::Checked { lease, passed } => {
            let passed = Passed {
                status: MediaStatus::Scanning,
                ..passed
            };
            match store_checked(state, media, lease, passed, Some(scan_lease), now).await? {
                Outcome::Finished(m) => m,
                other => return Ok(other),
            }
        }
        ScanStart::Rescan => {
            match state
                .store
                .start_rescan(&media.sid, now, scan_lease, at(now))
                .await?
            {
                Some(m) => m,
                None => return current(state, &media.sid).await,
            }
        }
    };
    let started = std::time::Instant::now();
    let verdict = match content {
        ScanContent::Bytes(bytes) => scanner.scan_bytes(bytes).await,
        ScanContent::Object => scanner.scan_object(&state.blob, &scanning.object_key).await,
    };
    let took_ms = started.elapsed().as_millis() as u64;
    let when = at(now.max(chrono::Utc::now().timestamp()));
    match verdict {
        Ok(ScanVerdict::Clean) => {
            tracing::info!(media = %scanning.sid, took_ms, "scanned clean");
            match state.store.mark_scanned_clean(&scanning.sid, when).await? {
                Some(ready) => Ok(Outcome::Finished(ready)),
                None => current(state, &scanning.sid).await,
            }
        }
        Ok(ScanVerdict::Infected(signature)) => {
            tracing::warn!(media = %scanning.sid, %signature, took_ms, "infected upload rejected");
            let error = ApiError::infected(&signature);
            let reason = scan::infected_reason(&signature);
            let stored = state
                .store
                .mark_infected(&scanning, &reason, error.code, when, now)
                .await?;
            if !stored {
                return current(state, &scanning.sid).await;
            }
            // At once; a failure stays pending and the sweep removes it.
            crate::cleanup::delete_objects(state, std::slice::from_ref(&scanning.object_key)).await;
            let mut rejected = scanning;
            rejected.status = MediaStatus::Rejected;
            rejected.status_reason = Some(reason);
            rejected.rejection_code = Some(error.code);
            rejected.holds_slot = false;
            rejected.finalizing_until = None;
            rejected.date_updated = when;
            Ok(Outcome::Refused(rejected, error))
        }
        Err(e) => {
            tracing::error!(media = %scanning.sid, error = %e, took_ms, "scan failed; the sweep rescans");
            let error = scan_failure(&scanning, e);
            let reason = format!("scan failed: {}", error.message);
            match state
                .store
                .mark_scan_failed(&scanning.sid, scan_lease, &reason, error.code, when)
                .await?
            {
                Some(failed) => Ok(Outcome::Refused(failed, error)),
                None => current(state, &scanning.sid).await,
            }
        }
    }
}

/// The caller's answer to a scan that could not finish: S3 keeps its own mapping,
/// every scanner failure is a 503 that says the media will be scanned again.
fn scan_failure(media: &Media, e: ScanError) -> ApiError {
    match e {
        ScanError::Blob(b) => b.into(),
        other => {
            let detail = other.to_string();
            let mut error = ApiError::from(other);
            error.message = format!(
                "The virus scanner is unavailable ({detail}); Media {} is kept and will be \
                 scanned again shortly: GET {} shows its status",
                media.sid,
                media.path()
            );
            error
        }
    }
}

/// What another finalizer or scan left, after this one lost a condition.
async fn current(state: &AppState, sid: &MediaSid) -> ApiResult<Outcome> {
    match state.store.get_media(sid).await? {
        None => Err(ApiError::not_found(format!("Media {sid} not found"))),
        Some(m) => Ok(settled(&m)),
    }
}

/// Stores a checked upload as `ready` with its real size and hash, and restarts its
/// unbound expiry from now. Needs the lease. (With a scanner, use [`scan_media`].)
pub async fn finish(
    state: &AppState,
    media: &Media,
    lease: i64,
    passed: Passed,
    now: i64,
) -> ApiResult<Outcome> {
    store_checked(state, media, lease, passed, None, now).await
}

/// [`finish`] for any status; `scan_lease` is kept in `finalizing_until` while
/// `scanning`, so a scan that dies can be taken over once it has run out.
async fn store_checked(
    state: &AppState,
    media: &Media,
    lease: i64,
    passed: Passed,
    scan_lease: Option<i64>,
    now: i64,
) -> ApiResult<Outcome> {
    let when = at(now);
    let mut done = media.clone();
    done.status = passed.status;
    done.status_reason = None;
    done.sha256 = Some(passed.sha256);
    done.size = passed.size;
    done.upload = None;
    done.finalizing_until = scan_lease;
    done.date_upload_updated = when;
    done.date_updated = when;
    done.expires_at = Some(now + state.settings.unbound_media_ttl.as_secs() as i64);
    if state.store.finish_upload(&done, lease).await? {
        tracing::info!(media = %done.sid, size = done.size, status = done.status.as_str(), "upload finalized");
        Ok(Outcome::Finished(done))
    } else {
        Err(expired(&media.sid))
    }
}

/// Stores a refused upload as `rejected` (or `failed` for `status`), gives back its
/// slot, and deletes its object (pending deletion recorded first). Needs the lease.
pub async fn reject_with(
    state: &AppState,
    media: &Media,
    lease: i64,
    error: ApiError,
    status: MediaStatus,
    now: i64,
) -> ApiResult<Outcome> {
    let mut refused = media.clone();
    refused.status = status;
    refused.status_reason = Some(error.message.clone());
    refused.rejection_code = Some(error.code);
    refused.holds_slot = false;
    refused.upload = None;
    refused.finalizing_until = None;
    refused.date_updated = at(now);
    if !state
        .store
        .reject_upload(&refused, lease, media.holds_slot, now)
        .await?
    {
        return Err(expired(&media.sid));
    }
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
    tracing::info!(media = %media.sid, reason = %error.message, "upload refused");
    Ok(Outcome::Refused(refused, error))
}

async fn reject(
    state: &AppState,
    media: &Media,
    lease: i64,
    error: ApiError,
    now: i64,
) -> ApiResult<Outcome> {
    reject_with(state, media, lease, error, MediaStatus::Rejected, now).await
}
