//! Reading a media as its viewers may, written once for the two functions that
//! hand out its bytes: get-media (the Media JSON, `…/Content`, MediaSet) and
//! get-thumbnail (`…/Thumbnail`, its own Lambda so that only it pays for image
//! decoding's memory). Both authorize with [`authorized_media`], ask the
//! `onMediaDownload` pre-hook with [`on_media_download`] and answer a temporary
//! URL with [`found`] / [`no_store`].
//!
//! Who may: admins; members of the channel of the media's message; the uploader
//! while the media is not attached to a message. Refusals: a media that does not
//! exist in this service (including one of another service) → 404; a media of
//! this service the caller may not see → 403 naming why. At most two DynamoDB
//! calls: one consistent BatchGetItem (service and media) and, for a user and an
//! attached media, one GetItem of the user's membership of its channel.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::scope::ServiceScope;
use super::{parse_sid, ApiResult};
use crate::auth::Principal;
use crate::config::AppState;
use crate::model::{Media, WebhookConfig};
use crate::sid::MediaSid;
use crate::webhook::Firing;

/// The media and its service's webhooks, after checking the caller may see it.
pub async fn authorized_media(
    state: &AppState,
    scope: &ServiceScope,
    media: &str,
) -> ApiResult<(Media, WebhookConfig)> {
    let media_sid: MediaSid = parse_sid("MediaSid", media)?;
    authorized_media_sid(state, scope, &media_sid).await
}

/// As [`authorized_media`], for a SID already parsed.
pub async fn authorized_media_sid(
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

/// The `onMediaDownload` pre-hook (Flex's `beforeDownloadMedia`), asked before a
/// URL to the media's bytes (or a thumbnail of them) is issued: a refusal is 403.
pub async fn on_media_download(
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
pub fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// A 302 to `url`, not cached.
pub fn found(url: &str) -> ApiResult<Response> {
    let location = HeaderValue::from_str(url).map_err(ApiError::internal)?;
    Ok(no_store(
        (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
    ))
}
