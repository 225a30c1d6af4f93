//! Media fetched from a URL (an inbound message's media, an upload by URL). The
//! bytes stream from the [`Fetcher`](crate::fetch::Fetcher) into S3, one PUT when
//! they fit in one part and a multipart upload part by part otherwise, so memory
//! holds one part at most; the service's size limit stops the fetch as soon as
//! it is passed. Then the media goes through exactly the checks and the scan of
//! any upload ([`finalize_claimed`](super::finalize_claimed)), under the same
//! finalization lease, which the fetch holds from its first byte: the S3 event
//! of the object it writes finds the media leased and leaves it alone.

use std::time::Duration;

use bytes::BytesMut;

use super::{
    at, current, finalize_claimed, reject, still_uploading, FinalizeResult, Outcome, Refusal,
    Trigger,
};
use crate::blob::{BlobError, ByteStream, CompleteUploadError};
use crate::config::AppState;
use crate::fetch::FetchError;
use crate::filename::Filename;
use crate::identity::Identity;
use crate::model::{Media, NewUpload};
use crate::policy;
use crate::sid::{MediaSid, ServiceSid};

/// The fetch's lease on the media (seconds): 150 MiB at a slow 1 MB/s with room.
/// A fetch that dies is taken over by the next one (the sweep) once it runs out.
pub const FETCH_LEASE_SECS: i64 = 300;

/// Attempts at a fetch whose failure may pass (timeout, 5xx), before the media
/// is refused as unreachable.
pub const FETCH_ATTEMPTS: u32 = 3;

/// The type recorded when the sender declared none: the host's `Content-Type`
/// replaces it.
const UNDECLARED: &str = "application/octet-stream";

/// The `uploading` record of media about to be fetched: no upload session, and
/// no unbound-upload slot (it is the service's, not a user's quota).
pub fn fetched_upload(
    sid: MediaSid,
    service: ServiceSid,
    author: Identity,
    declared_type: Option<&str>,
    filename: Option<Filename>,
    expires_at: i64,
    now: i64,
) -> Media {
    Media::new_upload(
        sid,
        service,
        NewUpload {
            author,
            content_type: declared_type.unwrap_or(UNDECLARED).to_owned(),
            filename,
            size: 0,
            upload: None,
            holds_slot: false,
        },
        expires_at,
        None,
        at(now),
    )
}

enum Stop {
    Fetch(FetchError),
    Blob(BlobError),
}

impl From<BlobError> for Stop {
    fn from(e: BlobError) -> Self {
        Stop::Blob(e)
    }
}

/// Fetches `url` into the `uploading` media `sid` and checks it like any upload.
/// A media past `uploading` is reported as it stands (a repeated run). Failures
/// that may pass are retried [`FETCH_ATTEMPTS`] times; what cannot be fetched is
/// refused with its reason (`FetchFailed`), and the record says why.
pub async fn ingest_url(
    state: &AppState,
    sid: &MediaSid,
    url: &str,
    basic: Option<(&str, &str)>,
    now: i64,
) -> FinalizeResult<Outcome> {
    if let Err(outcome) = still_uploading(state, sid, now).await? {
        return Ok(outcome);
    }
    let lease = now + FETCH_LEASE_SECS;
    let Some(media) = state.store.claim_finalization(sid, now, lease).await? else {
        return current(state, sid).await;
    };
    let Some(service) = state.store.get_service(&media.service_sid).await? else {
        return reject(state, &media, lease, Refusal::ServiceGone, now).await;
    };
    let limit = policy::size_limit(&service.media);
    let mut attempt = 0;
    let fetched = loop {
        attempt += 1;
        match fetch_into(state, &media, url, basic, limit).await {
            Ok(done) => break done,
            Err(Stop::Fetch(e)) if e.is_transient() && attempt < FETCH_ATTEMPTS => {
                tracing::info!(media = %sid, attempt, error = %e, "fetch failed; retrying");
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
            Err(Stop::Fetch(e)) => {
                tracing::warn!(media = %sid, attempt, error = %e, "fetch refused or failed");
                let reason = if e.is_transient() {
                    format!("{e} (after {attempt} attempts)")
                } else {
                    e.to_string()
                };
                break Err(Refusal::FetchFailed { reason });
            }
            Err(Stop::Blob(e)) => {
                if let Err(release) = state.store.release_finalization(sid, lease).await {
                    tracing::warn!(media = %sid, error = %release, "lease left to expire");
                }
                return Err(e.into());
            }
        }
    };
    match fetched {
        Ok((size, host_type)) => {
            let mut fetched = Media { size, ..media };
            if fetched.content_type == UNDECLARED {
                if let Some(t) = host_type {
                    fetched.content_type = t;
                }
            }
            tracing::info!(media = %sid, size, "fetched; checking");
            finalize_claimed(state, &fetched, lease, Trigger::ObjectCreated, now).await
        }
        Err(refusal) => reject(state, &media, lease, refusal, now).await,
    }
}

/// One attempt: streams the body into the media's object. `Ok(Err(_))` is a
/// refusal (too large, empty); the partial upload is aborted either way.
async fn fetch_into(
    state: &AppState,
    media: &Media,
    url: &str,
    basic: Option<(&str, &str)>,
    limit: u64,
) -> Result<Result<(u64, Option<String>), Refusal>, Stop> {
    let key = &media.object_key;
    // What an earlier, interrupted attempt left (a completed multipart upload
    // cannot replace an object).
    state.blob.delete(key).await?;
    let mut fetched = state.fetcher.open(url, basic).await.map_err(Stop::Fetch)?;
    let host_type = fetched.content_type();
    if let Some(size) = fetched.content_length().filter(|l| *l > limit) {
        return Ok(Err(Refusal::TooLarge { size, limit }));
    }
    let part = state.settings.upload_part_size as usize;
    let mut multipart: Option<(String, Vec<String>)> = None;
    let result = async {
        let mut buf = BytesMut::new();
        let mut total = 0u64;
        while let Some(chunk) = fetched.chunk().await.map_err(Stop::Fetch)? {
            total += chunk.len() as u64;
            if total > limit {
                return Ok(Err(Refusal::TooLarge { size: total, limit }));
            }
            buf.extend_from_slice(&chunk);
            while buf.len() >= part {
                let body = buf.split_to(part).freeze();
                if multipart.is_none() {
                    let id = state
                        .blob
                        .create_multipart(key, &media.content_type)
                        .await?;
                    multipart = Some((id, Vec::new()));
                }
                let (id, etags) = multipart.as_mut().expect("just created");
                let etag = state
                    .blob
                    .upload_part(key, id, etags.len() as u32 + 1, body)
                    .await?;
                etags.push(etag);
            }
        }
        if total == 0 {
            return Ok(Err(Refusal::Empty));
        }
        match &multipart {
            None => {
                let content_type = host_type.as_deref().unwrap_or(&media.content_type);
                state
                    .blob
                    .put(key, ByteStream::from(buf.freeze()), content_type)
                    .await?;
            }
            Some((id, etags)) => {
                let mut etags = etags.clone();
                if !buf.is_empty() {
                    let n = etags.len() as u32 + 1;
                    etags.push(state.blob.upload_part(key, id, n, buf.freeze()).await?);
                }
                state
                    .blob
                    .complete_multipart(key, id, &etags)
                    .await
                    .map_err(|e| match e {
                        CompleteUploadError::Blob(b) => b,
                        other => BlobError::Other(other.to_string()),
                    })?;
            }
        }
        Ok(Ok((total, host_type.clone())))
    }
    .await;
    let completed = matches!(result, Ok(Ok(_)));
    if let (false, Some((id, _))) = (completed, &multipart) {
        if let Err(e) = state.blob.abort_multipart(key, id).await {
            tracing::warn!(media = %media.sid, error = %e, "multipart upload left to the bucket lifecycle rule");
        }
    }
    result
}
