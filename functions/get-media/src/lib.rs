//! get-media: `GET /v1/Services/{ServiceSid}/Media/{MediaSid}` (Media JSON with
//! `links.content_direct_temporary`) and `GET .../Content` (302 to that URL).
//!
//! Who may: admins; members of the channel of the media's message; the uploader
//! while the media is not attached to a message. Refusals: a token for another
//! service → 403; a media that does not exist in this service (including one of
//! another service) → 404; a media of this service the caller may not see → 403
//! naming why. Only `ready` media gets a URL. At most two DynamoDB calls: one
//! consistent BatchGetItem (service and media) and, for a user and an attached
//! media, one GetItem of the user's membership of its channel.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chat_media::disposition::download_headers;
use chat_media::http::PublicBase;
use chat_media::http::{code, parse_sid, ApiResult, ServiceScope};
use chat_media::model::{Media, MediaStatus};
use chat_media::sid::MediaSid;
use chat_media::{ApiError, AppState, Principal};

/// The routes of this function, without state or fallbacks (the local runner merges them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/Services/{service}/Media/{media}", get(fetch))
        .route("/v1/Services/{service}/Media/{media}/Content", get(content))
}

/// The function's full router, as Lambda serves it.
pub fn router(state: AppState) -> Router {
    chat_media::http::with_fallbacks(routes()).with_state(state)
}

/// The media, after checking the caller may see it.
async fn authorized_media(state: &AppState, scope: &ServiceScope, media: &str) -> ApiResult<Media> {
    let (service_sid, who) = (&scope.sid, &scope.caller);
    let media_sid: MediaSid = parse_sid("MediaSid", media)?;
    let (service, media) = state
        .store
        .load_media_context(service_sid, &media_sid)
        .await?;
    if service.is_none() {
        return Err(ApiError::not_found(format!(
            "Service {service_sid} not found"
        )));
    }
    let media = media.ok_or_else(|| ApiError::not_found(format!("Media {media_sid} not found")))?;
    let Principal::User { identity, .. } = who else {
        return Ok(media);
    };
    match &media.channel_sid {
        Some(channel) if media.message_sid.is_some() => {
            if state.store.get_member(channel, identity).await?.is_none() {
                return Err(ApiError::not_a_member(identity, channel));
            }
        }
        _ if &media.author == identity => {}
        _ => {
            return Err(ApiError::forbidden(format!(
                "Media {media_sid} is not attached to a message; only its uploader may read it"
            )))
        }
    }
    Ok(media)
}

/// A presigned GET for ready media; `None` for media still in upload or refused.
async fn temporary_url(state: &AppState, media: &Media) -> ApiResult<Option<String>> {
    if media.status != MediaStatus::Ready {
        return Ok(None);
    }
    let headers = download_headers(
        &media.content_type,
        media.filename.as_ref(),
        media.sid.as_str(),
    );
    let url = state
        .blob
        .presign_get(&media.object_key, state.settings.download_url_ttl, &headers)
        .await?;
    Ok(Some(url))
}

/// A response carrying a temporary URL must not be cached past it, or shared.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// GET .../Media/{MediaSid}: the Media JSON, with a download URL if ready.
pub async fn fetch(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ServiceScope,
    Path((_, media)): Path<(String, String)>,
) -> ApiResult<Response> {
    let media = authorized_media(&state, &scope, &media).await?;
    let url = temporary_url(&state, &media).await?;
    Ok(no_store(
        Json(media.to_json(state.view_at(base.as_str()), url.as_deref())).into_response(),
    ))
}

/// GET .../Media/{MediaSid}/Content: 302 to the download URL.
pub async fn content(
    State(state): State<AppState>,
    scope: ServiceScope,
    Path((_, media)): Path<(String, String)>,
) -> ApiResult<Response> {
    let media = authorized_media(&state, &scope, &media).await?;
    let Some(url) = temporary_url(&state, &media).await? else {
        return Err(ApiError::conflict(
            code::CONFLICT,
            format!(
                "Media {} has no content to download (status {})",
                media.sid,
                media.status.as_str()
            ),
        ));
    };
    let location = HeaderValue::from_str(&url).map_err(ApiError::internal)?;
    Ok(no_store(
        (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
    ))
}
