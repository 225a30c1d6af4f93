//! get-media: `GET /v1/Services/{ServiceSid}/Media/{MediaSid}` (Media JSON with
//! `links.content_direct_temporary`) and `GET .../Content` (302 to that URL).
//! Thumbnails are served by get-thumbnail, a function of its own, so these
//! I/O-bound routes run at 128 MB instead of the memory image decoding needs.
//!
//! Who may, and the refusals, are those of [`chat_media::http::media`] (shared
//! with get-thumbnail): admins; members of the channel of the media's message;
//! the uploader while the media is not attached to a message. A token for another
//! service → 403; a media that does not exist in this service (including one of
//! another service) → 404; a media of this service the caller may not see → 403
//! naming why. Only `ready` media gets a URL. At most two DynamoDB calls: one
//! consistent BatchGetItem (service and media) and, for a user and an attached
//! media, one GetItem of the user's membership of its channel.
//!
//! `POST /v1/Services/{ServiceSid}/MediaSet` (the MCS clients' `mediaSetGet` and
//! `mediaSetGetContentUrls`): body `{"command":"get","list":[{"media_sid":…}]}`,
//! answer `[{"code":200,"media_record":{…}}, …]` in the order asked. Each entry is
//! authorized and pre-hooked exactly as a single GET; an entry the caller may not
//! see, or that does not exist, is that entry's code (403/404/400 with its Twilio
//! error), not a failed request. A failure that is not the caller's (store or S3
//! unavailable) fails the whole request, so the client retries it whole.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chat_media::disposition::download_headers;
use chat_media::http::media::{
    authorized_media, authorized_media_sid, found, no_store, on_media_download,
};
use chat_media::http::PublicBase;
use chat_media::http::{code, parse_sid, ApiResult, ServiceScope};
use chat_media::limits::MEDIA_SET_ENTRIES;
use chat_media::model::{Media, MediaStatus, WebhookConfig};
use chat_media::sid::MediaSid;
use chat_media::{ApiError, AppState};
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::{json, Value};

/// The routes of this function, without state or fallbacks (the local runner merges them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/Services/{service}/Media/{media}", get(fetch))
        .route("/v1/Services/{service}/Media/{media}/Content", get(content))
        .route("/v1/Services/{service}/MediaSet", post(media_set))
}

/// The function's full router, as Lambda serves it.
pub fn router(state: AppState) -> Router {
    chat_media::http::with_fallbacks(routes()).with_state(state)
}

/// A presigned GET for ready media; `None` for media still in upload or refused.
/// The `onMediaDownload` hook (Flex's `beforeDownloadMedia`) decides first: a
/// refusal is 403 and no URL is issued.
async fn temporary_url(
    state: &AppState,
    scope: &ServiceScope,
    media: &Media,
    hooks: &WebhookConfig,
) -> ApiResult<Option<String>> {
    if media.status != MediaStatus::Ready {
        return Ok(None);
    }
    on_media_download(state, scope, media, hooks).await?;
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

/// GET .../Media/{MediaSid}: the Media JSON, with a download URL if ready.
pub async fn fetch(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ServiceScope,
    Path((_, media)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (media, hooks) = authorized_media(&state, &scope, &media).await?;
    let url = temporary_url(&state, &scope, &media, &hooks).await?;
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
    let (media, hooks) = authorized_media(&state, &scope, &media).await?;
    let Some(url) = temporary_url(&state, &scope, &media, &hooks).await? else {
        return Err(ApiError::conflict(
            code::CONFLICT,
            format!(
                "Media {} has no content to download (status {})",
                media.sid,
                media.status.as_str()
            ),
        ));
    };
    found(&url)
}

/// The body of `POST …/MediaSet`, as the MCS clients send it.
#[derive(Debug, Deserialize)]
struct MediaSetRequest {
    command: String,
    list: Vec<MediaSetEntry>,
}

#[derive(Debug, Deserialize)]
struct MediaSetEntry {
    media_sid: String,
}

/// How many entries of a MediaSet are looked up at the same time.
const MEDIA_SET_CONCURRENCY: usize = 8;

/// POST .../MediaSet: several media GETs in one request, each authorized alone.
pub async fn media_set(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ServiceScope,
    body: Bytes,
) -> ApiResult<Response> {
    let request: MediaSetRequest = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            r#"The body must be JSON: {"command":"get","list":[{"media_sid":"ME…"}]}"#,
        )
    })?;
    if request.command != "get" {
        return Err(ApiError::invalid("command", "only \"get\" is supported"));
    }
    if request.list.len() > MEDIA_SET_ENTRIES {
        return Err(ApiError::invalid(
            "list",
            format!("at most {MEDIA_SET_ENTRIES} entries per request"),
        ));
    }
    let (state, scope, base) = (&state, &scope, base.as_str());
    let entries: Vec<ApiResult<Value>> = futures::stream::iter(request.list)
        .map(|entry| async move { media_set_entry(state, scope, base, entry).await })
        .buffered(MEDIA_SET_CONCURRENCY)
        .collect()
        .await;
    let entries = entries.into_iter().collect::<ApiResult<Vec<Value>>>()?;
    Ok(no_store(Json(entries).into_response()))
}

/// One entry of a MediaSet: `{"code":200,"media_record":…}`, or the refusal a
/// single GET would get as `{"code":<status>,"media_record":{"sid":…},"error":…}`
/// (the clients read `media_record.sid` of a failed entry). `Err` only for a
/// failure that is not the caller's.
async fn media_set_entry(
    state: &AppState,
    scope: &ServiceScope,
    base: &str,
    entry: MediaSetEntry,
) -> ApiResult<Value> {
    let found = async {
        let sid: MediaSid = parse_sid("media_sid", &entry.media_sid)?;
        let (media, hooks) = authorized_media_sid(state, scope, &sid).await?;
        let url = temporary_url(state, scope, &media, &hooks).await?;
        Ok::<_, ApiError>(media.to_json(state.view_at(base), url.as_deref()))
    };
    match found.await {
        Ok(record) => Ok(json!({"code": 200, "media_record": record})),
        Err(e) if e.status.is_client_error() => Ok(json!({
            "code": e.status.as_u16(),
            "media_record": {"sid": entry.media_sid},
            "error": e.body(),
        })),
        Err(e) => Err(e),
    }
}
