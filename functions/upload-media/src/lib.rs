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
use chat_media::model::Media;
use chat_media::store::CreateUploadError;
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

/// Writes a new upload record, taking the author's slot (429 when none is left).
pub(crate) async fn create_record(state: &AppState, media: &Media, now: i64) -> ApiResult<()> {
    let settings = &state.settings;
    // The counter outlives every media it counts; DynamoDB TTL then clears it.
    let slot_expires_at = now
        + (settings.upload_session_ttl + settings.unbound_media_ttl).as_secs() as i64
        + 24 * 3600;
    state
        .store
        .create_upload(media, settings.max_unbound_uploads, slot_expires_at)
        .await
        .map_err(|e| match e {
            CreateUploadError::TooManyUploads => ApiError::too_many_requests(format!(
                "{} already has {} unbound uploads, the most allowed; send them in \
                 messages or let them expire before uploading more",
                media.author, settings.max_unbound_uploads
            )),
            CreateUploadError::Store(e) => e.into(),
        })
}
