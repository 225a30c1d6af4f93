//! media-events: the non-HTTP side of the media lifecycle.
//!
//! - S3 `ObjectCreated:*` events: finalize an upload whose client never called
//!   complete, with the same checks (`chat_media::upload::finalize`); an object
//!   under a media key with no record is an orphan and is deleted.
//! - Scheduled events (EventBridge, e.g. every 5 minutes): sweep expired unbound
//!   media, object and record (DynamoDB TTL is only a backstop), aborting the
//!   multipart upload of sessions that never completed; rescan media a scanner
//!   error left `failed` (or a dead scan left `scanning`) once clamd answers;
//!   expire the media of messages older than their service's
//!   `Media.RetentionDays` (`chat_media::cleanup::sweep_retention`); then retry
//!   pending object deletions.
//!
//! The handlers take `now` so tests drive time; `main.rs` passes the clock.

use aws_lambda_events::s3::S3Event;
use chat_media::config::AppState;
use chat_media::model::{Media, MediaStatus};
use chat_media::sid::{MediaSid, ServiceSid};
use chat_media::upload::{self, FinalizeError, FinalizeResult, Outcome, Trigger};
use serde::Serialize;
use serde_json::Value;

/// Expired media handled per page, and pages per sweep (bounds one invocation).
const SWEEP_PAGE: i32 = 100;
const SWEEP_PAGES: usize = 20;
/// Unbound media examined per page for rescans, and pages per sweep.
const RESCAN_PAGE: i32 = 200;
const RESCAN_PAGES: usize = 50;
/// Pending deletions retried per sweep.
const PENDING_BATCH: i32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("unrecognised event: {0}")]
    Unrecognised(String),
    /// A dependency failed; Lambda retries the event.
    #[error("{0}")]
    Retry(String),
}

/// Handles one Lambda event, recognised by its shape; returns a summary.
pub async fn handle(state: &AppState, event: Value, now: i64) -> Result<Value, EventError> {
    let is_s3 = event["Records"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["eventSource"] == "aws:s3"));
    if is_s3 {
        let event: S3Event = serde_json::from_value(event)
            .map_err(|e| EventError::Unrecognised(format!("S3 event: {e}")))?;
        let report = on_s3_event(state, &event, now).await?;
        return Ok(serde_json::to_value(report).unwrap_or_default());
    }
    let is_stream = event["Records"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["eventSource"] == "aws:dynamodb"));
    if is_stream {
        let report = on_stream_event(state, &event, now).await?;
        return Ok(serde_json::to_value(report).unwrap_or_default());
    }
    if event["detail-type"] == "Scheduled Event" || event["source"] == "aws.events" {
        let report = sweep(state, now).await?;
        let mut out = serde_json::to_value(report).unwrap_or_default();
        // The schedule also delivers post-event webhooks the outbox still holds.
        match chat_media::dispatch::run(state, now).await {
            Ok(webhooks) => out["webhooks"] = serde_json::to_value(webhooks).unwrap_or_default(),
            Err(e) => tracing::warn!(error = %e, "webhook dispatch failed; next run retries"),
        }
        return Ok(out);
    }
    Err(EventError::Unrecognised(
        "expected an S3 event or a scheduled event".into(),
    ))
}

/// What happened to the objects of one S3 event.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct S3Report {
    pub finalized: Vec<String>,
    pub refused: Vec<String>,
    /// Another finalizer (the complete call) holds the upload.
    pub in_progress: Vec<String>,
    /// Checked, but the virus scan failed: kept `failed` for the sweep's rescan.
    pub scan_failed: Vec<String>,
    /// Objects with no media record, deleted.
    pub orphans_deleted: Vec<String>,
    /// Keys that are not media objects of this bucket, or nothing to do.
    pub ignored: Vec<String>,
}

/// The media SID of an object key `services/IS…/media/ME…`.
pub fn media_of_key(key: &str) -> Option<MediaSid> {
    let rest = key.strip_prefix("services/")?;
    let (service, rest) = rest.split_once('/')?;
    let media = rest.strip_prefix("media/")?;
    let service = ServiceSid::parse(service).ok()?;
    let media = MediaSid::parse(media).ok()?;
    (Media::object_key_for(&service, &media) == key).then_some(media)
}

/// S3 event keys are URL-encoded with `+` for spaces.
fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Finalizes the uploads S3 reports created. Transient failures fail the whole
/// event (after the other records are done) so Lambda retries it; finalizing is
/// idempotent.
pub async fn on_s3_event(
    state: &AppState,
    event: &S3Event,
    now: i64,
) -> Result<S3Report, EventError> {
    let mut report = S3Report::default();
    let mut failures = Vec::new();
    for record in &event.records {
        let key = decode_key(record.s3.object.key.as_deref().unwrap_or_default());
        let created = record
            .event_name
            .as_deref()
            .is_some_and(|n| n.starts_with("ObjectCreated"));
        let ours = record.s3.bucket.name.as_deref() == Some(state.blob.bucket());
        let Some(sid) = media_of_key(&key).filter(|_| created && ours) else {
            report.ignored.push(key);
            continue;
        };
        let result = upload::finalize(state, &sid, Trigger::ObjectCreated, now).await;
        match object_action(&result) {
            ObjectAction::Finalized => report.finalized.push(key),
            ObjectAction::InProgress => report.in_progress.push(key),
            ObjectAction::KeepForRescan => report.scan_failed.push(key),
            ObjectAction::DeleteRefused => {
                delete_object(state, &key).await;
                report.refused.push(key);
            }
            ObjectAction::DeleteOrphan => {
                delete_object(state, &key).await;
                report.orphans_deleted.push(key);
            }
            ObjectAction::Ignore => report.ignored.push(key),
            ObjectAction::Retry => {
                if let Err(e) = &result {
                    tracing::warn!(object = %key, error = %e, "finalizing failed; the event will be retried");
                    failures.push(format!("{key}: {e}"));
                }
            }
        }
    }
    tracing::info!(?report, "S3 event handled");
    if failures.is_empty() {
        Ok(report)
    } else {
        Err(EventError::Retry(failures.join("; ")))
    }
}

/// What an S3 event does with an object, given how finalizing its media went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectAction {
    /// Checked and stored (`ready`, or `scanning` under this event's scan).
    Finalized,
    /// Another finalizer holds the media, or took it over from this one (a lost
    /// lease): that finalizer decides about the object; nothing is deleted here.
    InProgress,
    /// Checked, but the scanner failed: the object stays for the sweep's rescan.
    KeepForRescan,
    /// Refused now (object already deleted) or earlier (an object written again
    /// afterwards): either way no object may stay.
    DeleteRefused,
    /// No record, or an expired session: nothing may keep this object.
    DeleteOrphan,
    /// Nothing uploaded yet under the media's key.
    Ignore,
    /// A dependency failed: the event fails so Lambda retries it.
    Retry,
}

/// The decision for one object of an S3 event (pure, so it is unit-tested).
pub fn object_action(result: &FinalizeResult<Outcome>) -> ObjectAction {
    match result {
        Ok(Outcome::Finished(_)) => ObjectAction::Finalized,
        Ok(Outcome::InProgress(_)) | Err(FinalizeError::LeaseLost(_)) => ObjectAction::InProgress,
        Ok(Outcome::Refused(m)) if m.status == MediaStatus::Failed && m.sha256.is_some() => {
            ObjectAction::KeepForRescan
        }
        Ok(Outcome::Refused(_)) => ObjectAction::DeleteRefused,
        Err(FinalizeError::NotFound(_) | FinalizeError::Expired(_)) => ObjectAction::DeleteOrphan,
        Err(FinalizeError::NothingUploaded(_)) => ObjectAction::Ignore,
        Err(_) => ObjectAction::Retry,
    }
}

async fn delete_object(state: &AppState, key: &str) {
    match state.store.add_pending_deletion(key).await {
        Ok(()) => {
            chat_media::cleanup::delete_objects(state, &[key.to_owned()]).await;
        }
        Err(e) => tracing::warn!(object = %key, error = %e, "could not record the deletion"),
    }
}

/// What one sweep did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct SweepReport {
    /// Expired unbound media whose records were deleted.
    pub expired_media: usize,
    /// Objects deleted (of expired media, and pending deletions retried).
    pub objects_deleted: usize,
    /// Multipart uploads of never-completed sessions aborted.
    pub uploads_aborted: usize,
    /// Media rescanned (after a scanner error, or a scan that died) and now ready.
    pub rescanned_ready: usize,
    /// Media rescanned and found infected (rejected, object deleted).
    pub rescanned_rejected: usize,
    /// Media whose rescan failed again (still `failed`).
    pub rescan_failed: usize,
    /// The scanner did not answer PING: no rescans were tried.
    pub scanner_unavailable: bool,
    /// Inbound jobs (webhook messages, uploads by URL) whose run had died or
    /// stopped, resumed and ended.
    pub inbound_resumed: usize,
    /// Media of messages older than their service's `Media.RetentionDays`,
    /// expired (object deleted, message kept).
    pub retention_expired: usize,
}

/// What the table's stream delivered: new inbound jobs, run now.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct StreamReport {
    /// Jobs run to their end (`done` or `failed`).
    pub ended: Vec<String>,
    /// Jobs another run holds, or already ended.
    pub skipped: Vec<String>,
    /// The outbox run the batch's post-events started (s20-hooks): written
    /// events are delivered within seconds, not at the next scheduled sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<chat_media::dispatch::DispatchReport>,
}

/// The `(service, job key)` of a stream record inserting an inbound job (the
/// event source's filter lets only those through; others are ignored here too).
fn inbound_job_of(record: &Value) -> Option<(ServiceSid, String)> {
    if record["eventName"] != "INSERT" {
        return None;
    }
    let keys = &record["dynamodb"]["Keys"];
    let service = ServiceSid::parse(keys["PK"]["S"].as_str()?).ok()?;
    let key = keys["SK"]["S"].as_str()?.strip_prefix("INBOUND#")?;
    Some((service, key.to_owned()))
}

/// Runs the inbound jobs a DynamoDB stream batch inserted. A job that stops on a
/// passing failure stays pending for the sweep; the batch is not retried for it.
pub async fn on_stream_event(
    state: &AppState,
    event: &Value,
    now: i64,
) -> Result<StreamReport, EventError> {
    let mut report = StreamReport::default();
    let records = event["Records"].as_array().into_iter().flatten();
    let mut outbox = false;
    for record in records {
        outbox |= is_outbox_insert(record);
        let Some((service, key)) = inbound_job_of(record) else {
            continue;
        };
        match chat_media::inbound::process(state, &service, &key, now).await {
            Ok(Some(_)) => report.ended.push(key),
            Ok(None) => report.skipped.push(key),
            Err(e) => {
                tracing::warn!(job = %key, error = %e, "inbound job stopped; the sweep resumes it");
                report.skipped.push(key);
            }
        }
    }
    if outbox {
        // One pass over the outbox delivers these (and anything older, in order
        // per channel); a failure is left to the next run.
        match chat_media::dispatch::run(state, now).await {
            Ok(webhooks) => report.webhooks = Some(webhooks),
            Err(e) => tracing::warn!(error = %e, "webhook dispatch failed; next run retries"),
        }
    }
    Ok(report)
}

/// A stream record inserting a post-event into the outbox (`OUTBOX#…`).
fn is_outbox_insert(record: &Value) -> bool {
    record["eventName"] == "INSERT"
        && record["dynamodb"]["Keys"]["PK"]["S"]
            .as_str()
            .is_some_and(|pk| pk.starts_with("OUTBOX#"))
}

/// One sweep: expired unbound media (record, object, slot, multipart upload), then
/// pending deletions left by earlier failures. Bounded per invocation; the next
/// run continues.
pub async fn sweep(state: &AppState, now: i64) -> Result<SweepReport, EventError> {
    let retry = |e: chat_media::store::StoreError| EventError::Retry(e.to_string());
    let mut report = SweepReport::default();
    for _ in 0..SWEEP_PAGES {
        let expired = state
            .store
            .expired_unbound_media(now, SWEEP_PAGE)
            .await
            .map_err(retry)?;
        let mut keys = Vec::new();
        for media in &expired {
            if let Some(id) = media
                .upload
                .as_ref()
                .and_then(|u| u.multipart_upload_id.as_deref())
            {
                match state.blob.abort_multipart(&media.object_key, id).await {
                    Ok(()) => report.uploads_aborted += 1,
                    Err(e) => {
                        tracing::warn!(media = %media.sid, error = %e, "abort failed; next sweep retries");
                        continue;
                    }
                }
            }
            if state
                .store
                .delete_expired_media(media, now)
                .await
                .map_err(retry)?
            {
                report.expired_media += 1;
                keys.push(media.object_key.clone());
            }
        }
        report.objects_deleted += chat_media::cleanup::delete_objects(state, &keys).await;
        if keys.is_empty() || expired.len() < SWEEP_PAGE as usize {
            break;
        }
    }
    rescan(state, now, &mut report).await.map_err(retry)?;
    report.retention_expired = chat_media::cleanup::sweep_retention(state, now)
        .await
        .map_err(retry)?;
    report.inbound_resumed = chat_media::inbound::resume(state, now)
        .await
        .map_err(|e| EventError::Retry(e.to_string()))?;
    report.objects_deleted += chat_media::cleanup::sweep_pending_deletions(state, PENDING_BATCH)
        .await
        .map_err(retry)?;
    tracing::info!(?report, "sweep done");
    Ok(report)
}

/// Rescans media left `failed` by a scanner error, or `scanning` by a scan that
/// died, once the scanner answers again. Nothing without a scanner: a media that
/// failed a scan never becomes ready unscanned. Pages through the unbound media
/// (every such media is unbound), bounded per invocation.
async fn rescan(
    state: &AppState,
    now: i64,
    report: &mut SweepReport,
) -> Result<(), chat_media::store::StoreError> {
    let Some(scanner) = &state.scanner else {
        return Ok(());
    };
    let mut start = None;
    let mut pinged = false;
    for _ in 0..RESCAN_PAGES {
        let (waiting, next) = state
            .store
            .media_awaiting_scan(now, RESCAN_PAGE, start)
            .await?;
        for media in waiting {
            if !upload::awaits_scan(state, &media, now) {
                continue;
            }
            if !pinged {
                // One PING before the first rescan: while clamd is still down, the
                // sweep stops here instead of failing every media once more.
                if let Err(e) = scanner.ping().await {
                    tracing::warn!(error = %e, "scanner still unavailable; rescans wait for the next sweep");
                    report.scanner_unavailable = true;
                    return Ok(());
                }
                pinged = true;
            }
            match upload::rescan(state, &media, now).await {
                Ok(Outcome::Finished(_)) => report.rescanned_ready += 1,
                Ok(Outcome::Refused(m)) if m.status == MediaStatus::Rejected => {
                    report.rescanned_rejected += 1
                }
                Ok(Outcome::Refused(_)) => report.rescan_failed += 1,
                Ok(Outcome::InProgress(_)) => {}
                Err(e) => {
                    tracing::warn!(media = %media.sid, error = %e, "rescan failed; next sweep retries");
                    report.rescan_failed += 1;
                }
            }
        }
        match next {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_keys_are_recognised_exactly() {
        let key =
            "services/IS0123456789abcdef0123456789abcdef/media/ME0123456789abcdef0123456789abcdef";
        assert_eq!(
            media_of_key(key).map(|s| s.to_string()).as_deref(),
            Some("ME0123456789abcdef0123456789abcdef")
        );
        assert_eq!(media_of_key("other/key"), None);
        assert_eq!(media_of_key(&format!("{key}/x")), None);
        assert_eq!(
            media_of_key("services/IS0123456789ABCDEF0123456789ABCDEF/media/ME0123456789abcdef0123456789abcdef"),
            None,
            "keys are written lower-case; anything else was not written by us"
        );
    }

    fn media(status: MediaStatus, checked: bool) -> Media {
        let mut m = Media::new_upload(
            MediaSid::generate(),
            ServiceSid::generate(),
            chat_media::model::NewUpload {
                author: chat_media::Identity::system(),
                content_type: "image/png".into(),
                filename: None,
                size: 1,
                upload: None,
                holds_slot: false,
            },
            1_000,
            None,
            chrono::DateTime::default(),
        );
        m.status = status;
        m.sha256 = checked.then(|| "ab".into());
        m
    }

    #[test]
    fn a_lost_lease_deletes_nothing() {
        let sid = MediaSid::generate();
        assert_eq!(
            object_action(&Err(FinalizeError::LeaseLost(sid.clone()))),
            ObjectAction::InProgress,
            "the finalizer that took over owns the object"
        );
        assert_eq!(
            object_action(&Err(FinalizeError::NotFound(sid.clone()))),
            ObjectAction::DeleteOrphan
        );
        assert_eq!(
            object_action(&Err(FinalizeError::Expired(sid.clone()))),
            ObjectAction::DeleteOrphan
        );
        assert_eq!(
            object_action(&Err(FinalizeError::NothingUploaded(sid))),
            ObjectAction::Ignore
        );
        assert_eq!(
            object_action(&Err(FinalizeError::ObjectChanged)),
            ObjectAction::Retry
        );
    }

    #[test]
    fn outcomes_decide_the_object() {
        let cases = [
            (
                Outcome::Finished(media(MediaStatus::Ready, true)),
                ObjectAction::Finalized,
            ),
            (
                Outcome::InProgress(media(MediaStatus::Scanning, true)),
                ObjectAction::InProgress,
            ),
            (
                Outcome::Refused(media(MediaStatus::Failed, true)),
                ObjectAction::KeepForRescan,
            ),
            (
                Outcome::Refused(media(MediaStatus::Failed, false)),
                ObjectAction::DeleteRefused,
            ),
            (
                Outcome::Refused(media(MediaStatus::Rejected, true)),
                ObjectAction::DeleteRefused,
            ),
        ];
        for (outcome, want) in cases {
            assert_eq!(object_action(&Ok(outcome)), want);
        }
    }

    #[test]
    fn event_keys_are_url_decoded() {
        assert_eq!(decode_key("a+b%2Fc"), "a b/c");
    }
}
