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
//!
//! `POST /v1/Services/{ServiceSid}/MediaSet` (the MCS clients' `mediaSetGet` and
//! `mediaSetGetContentUrls`): body `{"command":"get","list":[{"media_sid":…}]}`,
//! answer `[{"code":200,"media_record":{…}}, …]` in the order asked. Each entry is
//! authorized and pre-hooked exactly as a single GET; an entry the caller may not
//! see, or that does not exist, is that entry's code (403/404/400 with its Twilio
//! error), not a failed request. A failure that is not the caller's (store or S3
//! unavailable) fails the whole request, so the client retries it whole.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chat_media::blob::{READ_RANGES_IN_FLIGHT, READ_RANGE_BYTES};
use chat_media::disposition::download_headers;
use chat_media::http::PublicBase;
use chat_media::http::TwilioForm;
use chat_media::http::{code, parse_sid, ApiResult, ServiceScope};
use chat_media::limits::MEDIA_SET_ENTRIES;
use chat_media::model::{Media, MediaStatus, WebhookConfig};
use chat_media::sid::MediaSid;
use chat_media::thumbnail::{self, Spec, ThumbnailError};
use chat_media::webhook::Firing;
use chat_media::{ApiError, AppState, Principal};
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::{json, Value};

/// The routes of this function, without state or fallbacks (the local runner merges them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/Services/{service}/Media/{media}", get(fetch))
        .route("/v1/Services/{service}/Media/{media}/Content", get(content))
        .route("/v1/Services/{service}/MediaSet", post(media_set))
        .route(
            "/v1/Services/{service}/Media/{media}/Thumbnail",
            get(thumbnail_redirect),
        )
}

/// The function's full router, as Lambda serves it.
pub fn router(state: AppState) -> Router {
    chat_media::http::with_fallbacks(routes()).with_state(state)
}

/// The media and its service's webhooks, after checking the caller may see it.
async fn authorized_media(
    state: &AppState,
    scope: &ServiceScope,
    media: &str,
) -> ApiResult<(Media, WebhookConfig)> {
    let media_sid: MediaSid = parse_sid("MediaSid", media)?;
    authorized_media_sid(state, scope, &media_sid).await
}

/// As [`authorized_media`], for a SID already parsed.
async fn authorized_media_sid(
    state: &AppState,
    scope: &ServiceScope,
    media_sid: &MediaSid,
) -> ApiResult<(Media, WebhookConfig)> {
    let (service_sid, who) = (&scope.sid, &scope.caller);
    let (service, media) = state
        .store
        .load_media_context(service_sid, media_sid)
        .await?;
    let Some(service) = service else {
        return Err(ApiError::not_found(format!(
            "Service {service_sid} not found"
        )));
    };
    let hooks = service.webhooks;
    let media = media.ok_or_else(|| ApiError::not_found(format!("Media {media_sid} not found")))?;
    let Principal::User { identity, .. } = who else {
        return Ok((media, hooks));
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
    Ok((media, hooks))
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

async fn on_media_download(
    state: &AppState,
    scope: &ServiceScope,
    media: &Media,
    hooks: &WebhookConfig,
) -> ApiResult<()> {
    const EVENT: &str = "onMediaDownload";
    let firing = match scope.caller {
        Principal::User { .. } => Firing::User,
        Principal::Admin => Firing::Rest {
            webhook_enabled: false,
        },
    };
    if hooks.pre_hook(EVENT).is_none() || !firing.fires_pre(hooks) {
        return Ok(());
    }
    let mut event = state.event(EVENT, &scope.sid, scope.caller.identity());
    event
        .param("MediaSid", media.sid.as_str())
        .param(
            "MessageSid",
            media
                .message_sid
                .as_ref()
                .map(|s| s.as_str())
                .unwrap_or_default(),
        )
        .param(
            "ChannelSid",
            media
                .channel_sid
                .as_ref()
                .map(|s| s.as_str())
                .unwrap_or_default(),
        );
    state.pre_event(hooks, firing, &event).await?;
    Ok(())
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

/// A 302 to `url`, not cached.
fn found(url: &str) -> ApiResult<Response> {
    let location = HeaderValue::from_str(url).map_err(ApiError::internal)?;
    Ok(no_store(
        (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
    ))
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
    let made = match tokio::time::timeout(thumbnail::TIME_LIMIT, work).await {
        Err(_) => Err(ThumbnailError::TimedOut),
        Ok(Err(join)) => return Err(ApiError::internal(join)),
        Ok(Ok(made)) => made,
    }?;
    tracing::info!(media = %media.sid, width = made.width, height = made.height, took_ms = started.elapsed().as_millis() as u64, "thumbnail made");
    let content_type = made.content_type;
    state.blob.put(key, made.bytes.into(), content_type).await?;
    Ok(content_type)
}
