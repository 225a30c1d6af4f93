//! upload-media: Twilio Media Content Service uploads.
//!
//! - `POST /v1/Services/{ServiceSid}/Media`: direct upload of a small file (raw body
//!   or multipart/form-data), up to `DIRECT_UPLOAD_MAX_BYTES` (4 MiB by default).
//! - `POST /v1/Services/{ServiceSid}/MediaUploads`: an upload session for a file of
//!   up to 150 MiB: a Media in `uploading` and presigned S3 URLs to PUT the bytes to.
//! - `POST /v1/Services/{ServiceSid}/Media/{MediaSid}/Complete`: checks the uploaded
//!   object and makes the Media `ready`, or refuses it and deletes the object.
//! - Takedown by hash (admins): `POST .../Media/{MediaSid}/Quarantine` ([`quarantine`]).
//!
//! - `POST /v1/Services/{ServiceSid}/Media` as a form with `MediaUrl` (admins): an
//!   upload by URL, answered 202 with the Media `uploading` (see `by_url`).
//!
//! Callers: admins (author "system") and users holding a token for the service.
//! The send permission is checked later, when the media is bound to a message.

mod by_url;
mod content_disposition;
mod direct;
mod quarantine;
mod sessions;

use axum::routing::post;
use axum::Router;
use chat_media::http::ApiResult;
use chat_media::model::{Media, MediaQuotas};
use chat_media::store::{CreateUploadError, QuotaLimits};
use chat_media::{ApiError, AppState, Identity, Principal};

pub use content_disposition::filename as content_disposition_filename;
pub use direct::{parse_form_data, FormFile};

/// The routes of this function, without state or fallbacks (the local runner merges them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/Services/{service}/Media", post(direct::create))
        .route(
            "/v1/Services/{service}/MediaUploads",
            post(sessions::create),
        )
        .route(
            "/v1/Services/{service}/Media/{media}/Complete",
            post(sessions::complete),
        )
        .route(
            "/v1/Services/{service}/Media/{media}/Quarantine",
            post(quarantine::quarantine),
        )
}

/// The function's full router, as Lambda serves it.
pub fn router(state: AppState) -> Router {
    chat_media::http::with_fallbacks(routes()).with_state(state)
}

/// Who an upload is attributed to: the user's identity, or "system" for admins.
pub(crate) fn author_of(who: &Principal) -> Identity {
    who.identity().cloned().unwrap_or_else(Identity::system)
}

/// Writes a new upload record, taking the author's slot (429 when none is left)
/// and charging the service's quotas (429 code 20430 when one is full; admins are
/// neither limited nor counted). `media.quota` records what was charged.
pub(crate) async fn create_record(
    state: &AppState,
    media: &mut Media,
    quotas: &MediaQuotas,
    now: i64,
) -> ApiResult<()> {
    let settings = &state.settings;
    // The counter outlives every media it counts; DynamoDB TTL then clears it.
    let slot_expires_at = now
        + (settings.upload_session_ttl + settings.unbound_media_ttl).as_secs() as i64
        + 24 * 3600;
    // Admin uploads are attributed to "system" (author_of).
    let limits = match media.author == Identity::system() {
        true => QuotaLimits {
            identity: None,
            service: None,
            counted: false,
        },
        // Counted in the stored total whether or not its limit is on.
        false => QuotaLimits {
            identity: quotas.identity_quota(),
            service: quotas.bytes_per_service,
            counted: true,
        },
    };
    let size = media.size;
    state
        .store
        .create_upload(
            media,
            settings.max_unbound_uploads,
            slot_expires_at,
            limits,
            now,
        )
        .await
        .map_err(|e| quota_error(e, &media.author, size, settings.max_unbound_uploads, now))
}

/// The answer to an upload its author may not make now.
fn quota_error(
    e: CreateUploadError,
    author: &Identity,
    size: u64,
    max_unbound: u32,
    now: i64,
) -> ApiError {
    match e {
        CreateUploadError::TooManyUploads => ApiError::too_many_requests(format!(
            "{author} already has {max_unbound} unbound uploads, the most allowed; send them in \
             messages or let them expire before uploading more"
        )),
        CreateUploadError::IdentityQuota {
            limit,
            frees_at: Some(frees_at),
        } => {
            let when = chrono::DateTime::from_timestamp(frees_at, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            ApiError::quota_exceeded(
                format!(
                    "Upload quota exceeded: {author} may upload {limit} bytes per window and \
                     this upload of {size} bytes does not fit; the window frees up at {when}"
                ),
                Some(frees_at.saturating_sub(now).max(1) as u64),
            )
        }
        CreateUploadError::IdentityQuota {
            limit,
            frees_at: None,
        } => ApiError::quota_exceeded(
            format!(
                "Upload quota exceeded: this upload of {size} bytes is larger than the \
                 {limit} bytes {author} may upload per window"
            ),
            None,
        ),
        CreateUploadError::ServiceQuota { limit } => ApiError::quota_exceeded(
            format!(
                "Service storage quota exceeded: the service may hold {limit} bytes of media \
                 and this upload of {size} bytes does not fit; delete media to make room"
            ),
            None,
        ),
        CreateUploadError::Store(e) => e.into(),
    }
}
