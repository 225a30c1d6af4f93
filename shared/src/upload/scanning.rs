//! The scan state machine (when `AppState` has a scanner):
//! `uploading → scanning → ready | rejected | failed`, and `failed → scanning`
//! again for a rescan. Each step is a conditional write on the current status,
//! never read-then-write, so the complete call, the S3 event and the sweep can
//! scan the same (immutable) object without undoing each other.
//!
//! Infected: the object is deleted at once, the record kept as `rejected` with
//! the signature. Scanner error: `failed`, object and slot kept; the sweep
//! rescans.

use std::time::Instant;

use super::{
    at, current, deny_listed, reject, settled, store_checked, FinalizeError, FinalizeResult,
    Outcome, Passed, Refusal,
};
use crate::config::AppState;
use crate::model::{Media, MediaStatus};
use crate::scan::{ScanError, ScanResult, ScanVerdict, Scanner};

/// Margin over the read timeout before a `scanning` media counts as abandoned.
pub const SCAN_LEASE_MARGIN_SECS: i64 = 60;

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
#[derive(Debug, Clone)]
pub enum ScanContent<'a> {
    /// The bytes already in hand (a direct upload): no second read from S3.
    Bytes(&'a [u8]),
    /// The stored S3 object, streamed.
    Object,
    /// Already scanned, in the same pass that stored or hashed the bytes: clamd's
    /// answer, stored as if the scan had just run.
    Scanned(ScanResult),
    /// As `Scanned`, with clamd's signature version asked before the scan began:
    /// a clean verdict enters the service's hash index under it.
    ScannedUnder(ScanResult, Option<u64>),
    /// As `ScannedUnder`, for the bytes as uploaded (the one read of a session,
    /// an S3 event or a fetched URL, before any metadata stripping): a clean
    /// verdict is indexed under their hash (`original_sha256` when stripping
    /// changed them), the bytes clamd saw, not the stripped ones it did not.
    ScannedUploaded(ScanResult, Option<u64>),
    /// Not scanned: the service's hash index lists these bytes as scanned clean
    /// under the signature version clamd has now ([`scan_unless_known`]).
    Known(u64),
}

/// The scan of bytes in hand, unless the service's hash index lists their
/// `sha256` as scanned clean under clamd's current signature version: then clamd
/// is not called at all. The index read and the version run at the same time; a
/// failure of either only means the bytes are scanned. Without a versioned
/// signature database nothing is ever skipped.
pub async fn scan_unless_known(
    state: &AppState,
    scanner: &Scanner,
    service: &crate::sid::ServiceSid,
    sha256: &str,
    bytes: &[u8],
) -> ScanContent<'static> {
    let (version, known) = match crate::model::Sha256::parse(sha256) {
        Ok(digest) => {
            tokio::join!(
                scanner.signature_version(),
                state.store.scanned_clean(service, &digest)
            )
        }
        Err(_) => (Ok(None), Ok(None)),
    };
    // clamd that does not answer VERSION would not answer the scan either: its
    // failure is the scan's, so a hung clamd is waited for once, not twice.
    let version = match version {
        Ok(v) => v,
        Err(e) => return ScanContent::ScannedUnder(Err(e), None),
    };
    match (version, known) {
        (Some(now), Ok(Some(then))) if now == then => ScanContent::Known(now),
        _ => ScanContent::ScannedUnder(scanner.scan_bytes(bytes).await, version),
    }
}

/// The signature version under which the service's hash index lists the
/// `declared` SHA-256 of a session as scanned clean, when it is the version clamd
/// reports now: the one read of the object then only hashes it (no clamd), and
/// the bytes are stored as known clean only if they have the declared hash
/// ([`super::pass`]). Any failure (VERSION, the index read) or an unversioned
/// signature database means `None`: the bytes are scanned as without a declaration.
pub(super) async fn declared_known_clean(
    state: &AppState,
    service: &crate::sid::ServiceSid,
    declared: &crate::model::Sha256,
) -> Option<u64> {
    let scanner = state.scanner.as_ref()?;
    let (version, known) = tokio::join!(
        scanner.signature_version(),
        state.store.scanned_clean(service, declared)
    );
    match (version, known) {
        (Ok(Some(now)), Ok(Some(then))) if now == then => Some(now),
        _ => None,
    }
}

/// Enters a media scanned clean under `signatures` into its service's hash index
/// under `sha256`, the hash of the bytes clamd saw (best effort: without the
/// entry, the same bytes are only scanned again).
async fn index_clean(state: &AppState, media: &Media, sha256: &str, signatures: u64, now: i64) {
    let Ok(digest) = crate::model::Sha256::parse(sha256) else {
        return;
    };
    if let Err(e) = state
        .store
        .record_scanned_clean(&media.service_sid, &digest, signatures, now)
        .await
    {
        tracing::warn!(media = %media.sid, error = %e, "scanned-clean hash not indexed");
    }
}

/// How long a scan may hold a media in `scanning` before a rescan may take over:
/// the scanner's read timeout (which bounds each write and the verdict) plus a margin.
fn scan_lease_secs(scanner: &Scanner) -> i64 {
    scanner.read_timeout().as_secs() as i64 + SCAN_LEASE_MARGIN_SECS
}

/// Whether `media` waits for a rescan: `failed` after a scanner error, or
/// `scanning` whose scan lease ran out, and still unbound and unexpired. A
/// `failed` media without a `sha256` never passed the checks (its upload itself
/// failed, its object is gone): nothing to scan.
pub fn needs_rescan(media: &Media, now: i64) -> bool {
    let stale_scan =
        media.status == MediaStatus::Scanning && media.finalizing_until.is_some_and(|l| l < now);
    media.sha256.is_some()
        && media.message_sid.is_none()
        && media.expires_at.is_some_and(|e| e > now)
        && (media.status == MediaStatus::Failed || stale_scan)
}

/// [`needs_rescan`], and this state has a scanner to do it.
pub fn awaits_scan(state: &AppState, media: &Media, now: i64) -> bool {
    state.scanner.is_some() && needs_rescan(media, now)
}

/// Scans a `failed` (or stale `scanning`) media again from its S3 object.
pub async fn rescan(state: &AppState, media: &Media, now: i64) -> FinalizeResult<Outcome> {
    scan_media(state, media, ScanStart::Rescan, ScanContent::Object, now).await
}

/// The one scanning procedure, for direct uploads, completed sessions, S3 events
/// and the sweep. Without a scanner a checked upload becomes `ready` (and a rescan
/// does nothing: nothing becomes ready unscanned once it failed a scan).
///
/// - `→ scanning` (conditional: `uploading` under `lease`, or `failed` / stale
///   `scanning` for a rescan), then the scan;
/// - clean: `→ ready` (conditional on `scanning`/`failed`);
/// - infected: `→ rejected` with the signature, slot released, pending deletion
///   recorded, then the object deleted at once;
/// - scanner error: `→ failed` (only by this scan), object and slot kept.
///
/// A lost condition means another scan settled the media: its state is reported.
pub async fn scan_media(
    state: &AppState,
    media: &Media,
    start: ScanStart,
    content: ScanContent<'_>,
    now: i64,
) -> FinalizeResult<Outcome> {
    if let ScanStart::Checked { lease, passed } = &start {
        if let Some(refusal) = deny_listed(state, media, passed).await? {
            return reject(state, media, *lease, refusal, now).await;
        }
    }
    let Some(scanner) = &state.scanner else {
        return match start {
            ScanStart::Checked { lease, passed } => {
                if let Some(refusal) =
                    super::on_media_upload(state, media, &passed.sha256, passed.size).await?
                {
                    return super::reject(state, media, lease, refusal, now).await;
                }
                store_checked(state, media, lease, passed, None, now).await
            }
            ScanStart::Rescan => Ok(settled(media)),
        };
    };
    let scan_lease = now + scan_lease_secs(scanner);
    let scanning = match start {
        ScanStart::Checked { lease, passed } => {
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
    let started = Instant::now();
    // The signature version the verdict was reached under, asked before the scan,
    // and whether clamd saw the bytes as uploaded (else the stored ones).
    let (verdict, signatures, known, uploaded) = match content {
        // A failed VERSION is the scan's failure (clamd is not answering): no wait twice.
        ScanContent::Bytes(bytes) => match scanner.signature_version().await {
            Ok(version) => (scanner.scan_bytes(bytes).await, version, false, false),
            Err(e) => (Err(e), None, false, false),
        },
        ScanContent::Object => match scanner.signature_version().await {
            Ok(version) => {
                let verdict = scanner.scan_object(&state.blob, &scanning.object_key).await;
                (verdict, version, false, false)
            }
            Err(e) => (Err(e), None, false, false),
        },
        ScanContent::Scanned(verdict) => (verdict, None, false, false),
        ScanContent::ScannedUnder(verdict, version) => (verdict, version, false, false),
        ScanContent::ScannedUploaded(verdict, version) => (verdict, version, false, true),
        ScanContent::Known(version) => (Ok(ScanVerdict::Clean), Some(version), true, false),
    };
    let took = started.elapsed();
    let took_ms = took.as_millis() as u64;
    // The time the verdict came: `now` plus the scan, without reading the clock.
    let (settled_at, when) = {
        let t = now + took.as_secs() as i64;
        (t, at(t))
    };
    match verdict {
        Ok(ScanVerdict::Clean) => {
            match known {
                true => {
                    tracing::info!(media = %scanning.sid, signatures, "scan skipped: bytes known clean under the current signatures")
                }
                false => tracing::info!(media = %scanning.sid, took_ms, "scanned clean"),
            }
            let sha256 = scanning.sha256.clone().unwrap_or_default();
            if let Some(refusal) =
                super::on_media_upload(state, &scanning, &sha256, scanning.size).await?
            {
                return refuse_scanned(state, &scanning, refusal, when, settled_at).await;
            }
            match state.store.mark_scanned_clean(&scanning.sid, when).await? {
                Some(ready) => {
                    if let (Some(version), false) = (signatures, known) {
                        let scanned = match uploaded {
                            true => ready.original_sha256.as_ref().or(ready.sha256.as_ref()),
                            false => ready.sha256.as_ref(),
                        };
                        if let Some(sha256) = scanned {
                            index_clean(state, &ready, sha256, version, settled_at).await;
                        }
                    }
                    Ok(Outcome::Finished(ready))
                }
                None => current(state, &scanning.sid).await,
            }
        }
        Ok(ScanVerdict::Infected(signature)) => {
            tracing::warn!(media = %scanning.sid, %signature, took_ms, "infected upload rejected");
            let refusal = Refusal::Infected { signature };
            refuse_scanned(state, &scanning, refusal, when, settled_at).await
        }
        Err(ScanError::Blob(e)) => {
            // S3 failed, not the scanner: leave the media for a retry of the read.
            tracing::error!(media = %scanning.sid, error = %e, took_ms, "scan could not read the object");
            fail_scan(
                state,
                &scanning,
                scan_lease,
                &ScanError::Blob(e.clone()),
                when,
            )
            .await?;
            Err(FinalizeError::Blob(e))
        }
        Err(e) => {
            tracing::error!(media = %scanning.sid, error = %e, took_ms, "scan failed; the sweep rescans");
            fail_scan(state, &scanning, scan_lease, &e, when).await
        }
    }
}

/// `scanning → rejected` (infected, or refused by the onMediaUpload hook), and
/// the object deleted.
async fn refuse_scanned(
    state: &AppState,
    scanning: &Media,
    refusal: Refusal,
    when: chrono::DateTime<chrono::Utc>,
    settled_at: i64,
) -> FinalizeResult<Outcome> {
    let stored = state
        .store
        .mark_infected(scanning, &refusal, when, settled_at)
        .await?;
    if !stored {
        return current(state, &scanning.sid).await;
    }
    // At once; a failure stays pending and the sweep removes it.
    crate::cleanup::delete_objects(state, std::slice::from_ref(&scanning.object_key)).await;
    Ok(Outcome::Refused(super::refused_record(
        scanning,
        refusal,
        MediaStatus::Rejected,
        settled_at,
    )))
}

/// `scanning → failed` with the failure's public reason.
async fn fail_scan(
    state: &AppState,
    scanning: &Media,
    scan_lease: i64,
    e: &ScanError,
    when: chrono::DateTime<chrono::Utc>,
) -> FinalizeResult<Outcome> {
    let refusal = Refusal::ScanFailed {
        reason: e.public_reason().into(),
    };
    match state
        .store
        .mark_scan_failed(&scanning.sid, scan_lease, &refusal, when)
        .await?
    {
        Some(failed) => Ok(Outcome::Refused(failed)),
        None => current(state, &scanning.sid).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sid::MessageSid;

    fn scanned(status: MediaStatus, lease: Option<i64>) -> Media {
        let mut m = super::super::tests::sample(None, lease);
        m.status = status;
        m.sha256 = Some("ab".into());
        m
    }

    #[test]
    fn failed_and_abandoned_scans_are_rescanned_until_expiry() {
        assert!(needs_rescan(&scanned(MediaStatus::Failed, None), 500));
        assert!(needs_rescan(
            &scanned(MediaStatus::Scanning, Some(400)),
            500
        ));
        assert!(!needs_rescan(
            &scanned(MediaStatus::Scanning, Some(600)),
            500
        ));
        assert!(!needs_rescan(&scanned(MediaStatus::Failed, None), 1_000));
        for status in [
            MediaStatus::Uploading,
            MediaStatus::Ready,
            MediaStatus::Rejected,
        ] {
            assert!(!needs_rescan(&scanned(status, Some(0)), 500), "{status:?}");
        }
    }

    #[test]
    fn nothing_to_rescan_without_checked_bytes_or_once_bound() {
        let mut never_checked = scanned(MediaStatus::Failed, None);
        never_checked.sha256 = None;
        assert!(!needs_rescan(&never_checked, 500));
        let mut bound = scanned(MediaStatus::Failed, None);
        bound.message_sid = Some(MessageSid::generate());
        assert!(!needs_rescan(&bound, 500));
    }
}
