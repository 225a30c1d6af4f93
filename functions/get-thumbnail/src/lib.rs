//! get-thumbnail: `GET /v1/Services/{ServiceSid}/Media/{MediaSid}/Thumbnail`
//! (`Width`, `Height`, `Method=scale|crop`) → 302 to a temporary URL of a
//! thumbnail of an image media, made on first request and stored next to the
//! media's object.
//!
//! A function of its own because decoding an image needs memory the other media
//! routes do not: this one runs with 512 MB (the decode bound of
//! [`chat_media::thumbnail`], ~360 MB at worst) and may put objects under
//! thumbnails' keys only, while get-media, the hot download path, keeps 128 MB
//! and read-only S3 access.
//!
//! Authorized exactly like get-media's `…/Content`, by the same code
//! ([`chat_media::http::media`]): the same callers get it and the same refusals
//! apply, then the `onMediaDownload` pre-hook decides.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chat_media::blob::{READ_RANGES_IN_FLIGHT, READ_RANGE_BYTES};
use chat_media::disposition::download_headers;
use chat_media::http::media::{authorized_media, found, on_media_download};
use chat_media::http::TwilioForm;
use chat_media::http::{code, ApiResult, ServiceScope};
use chat_media::model::{Media, MediaStatus};
use chat_media::thumbnail::{self, Spec, ThumbnailError};
use chat_media::{ApiError, AppState};
use futures::StreamExt as _;

/// The routes of this function, without state or fallbacks (the local runner merges them).
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/Services/{service}/Media/{media}/Thumbnail",
        get(thumbnail_redirect),
    )
}

/// The function's full router, as Lambda serves it.
pub fn router(state: AppState) -> Router {
    chat_media::http::with_fallbacks(routes()).with_state(state)
}

/// GET .../Media/{MediaSid}/Thumbnail: 302 to the thumbnail's download URL,
/// authorized exactly like `.../Content` ([`authorized_media`], then the
/// `onMediaDownload` hook). 415 for types thumbnails are not made of and for
/// images too large or broken to decode; 409 for media not `ready`.
pub async fn thumbnail_redirect(
    State(state): State<AppState>,
    scope: ServiceScope,
    Path((_, media)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let query = TwilioForm::parse(query.unwrap_or_default().as_bytes());
    let spec = Spec::parse(query.get("Width"), query.get("Height"), query.get("Method"))?;
    let (media, hooks) = authorized_media(&state, &scope, &media).await?;
    if media.status != MediaStatus::Ready {
        return Err(ApiError::conflict(
            code::CONFLICT,
            format!(
                "Media {} has no content to make a thumbnail of (status {})",
                media.sid,
                media.status.as_str()
            ),
        ));
    }
    let format = thumbnail::source_format(&media.content_type)
        .ok_or_else(|| ThumbnailError::Unsupported(media.content_type.clone()))?;
    on_media_download(&state, &scope, &media, &hooks).await?;
    let key = spec.key(&media.object_key);
    let content_type = match state.blob.size(&key).await? {
        Some(_) => thumbnail_type(format),
        None => make_thumbnail(&state, &media, format, spec, &key).await?,
    };
    let headers = download_headers(content_type, None, media.sid.as_str());
    let url = state
        .blob
        .presign_get(&key, state.settings.download_url_ttl, &headers)
        .await?;
    found(&url)
}

/// The type of the thumbnails of a `format` source.
fn thumbnail_type(format: thumbnail::ImageFormat) -> &'static str {
    match format {
        thumbnail::ImageFormat::Jpeg => "image/jpeg",
        _ => "image/png",
    }
}

/// Reads the media's object, makes its thumbnail on a blocking thread under the
/// time limit, and stores it at `key`. Concurrent first requests may both make
/// it: the same bytes are written twice, harmlessly.
async fn make_thumbnail(
    state: &AppState,
    media: &Media,
    format: thumbnail::ImageFormat,
    spec: Spec,
    key: &str,
) -> ApiResult<&'static str> {
    if media.size > thumbnail::MAX_SOURCE_BYTES {
        return Err(ThumbnailError::TooLarge(media.size).into());
    }
    let mut source = Vec::with_capacity(media.size as usize);
    let mut chunks = std::pin::pin!(state.blob.read_ranges(
        &media.object_key,
        media.size,
        READ_RANGE_BYTES,
        READ_RANGES_IN_FLIGHT
    ));
    while let Some(chunk) = chunks.next().await {
        source.extend_from_slice(&chunk?);
    }
    let started = std::time::Instant::now();
    let work = tokio::task::spawn_blocking(move || thumbnail::render(format, &source, spec));
    let limit = state.settings.thumbnail_time_limit;
    let made = match tokio::time::timeout(limit, work).await {
        Err(_) => Err(ThumbnailError::TimedOut(limit.as_secs())),
        Ok(Err(join)) => return Err(ApiError::internal(join)),
        Ok(Ok(made)) => made,
    }?;
    tracing::info!(media = %media.sid, width = made.width, height = made.height, took_ms = started.elapsed().as_millis() as u64, "thumbnail made");
    let content_type = made.content_type;
    state.blob.put(key, made.bytes.into(), content_type).await?;
    Ok(content_type)
}
