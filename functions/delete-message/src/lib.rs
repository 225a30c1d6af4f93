//! delete-message: `DELETE /v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages/{MessageSid}`.
//!
//! One transaction removes the message and its media record and records a pending
//! deletion of the object; the object is deleted after and the marker cleared. If S3
//! fails, the marker stays and the `media-events` sweep retries: the caller still
//! gets 204, and no object outlives its record for longer than a sweep.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::delete;
use axum::Router;
use chat_media::http::{parse_sid, ApiResult, Caller, ChannelScope};
use chat_media::model::Message;
use chat_media::permission::Permission;
use chat_media::sid::MessageSid;
use chat_media::{ApiError, AppState};

/// The routes of this function, without state or fallbacks (the local runner merges them).
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/v2/Services/{service}/Channels/{channel}/Messages/{message}",
        delete(remove),
    )
}

/// The function's full router, as Lambda serves it.
pub fn router(state: AppState) -> Router {
    chat_media::http::with_fallbacks(routes()).with_state(state)
}

/// The permission `caller` needs to delete `message`: `deleteOwnMessage` for
/// one's own (or `deleteAnyMessage`, which covers it), `deleteAnyMessage` for
/// anyone's. `None`: admins need none.
fn needed_permission(caller: &Caller, message: &Message) -> Option<Permission> {
    let Caller::Member(member, role) = caller else {
        return None;
    };
    let own = message.from == member.identity;
    if own && !role.has(Permission::DeleteAnyMessage) {
        Some(Permission::DeleteOwnMessage)
    } else {
        Some(Permission::DeleteAnyMessage)
    }
}

/// DELETE a message: `deleteOwnMessage` for one's own, `deleteAnyMessage` for
/// anyone's; admins always.
pub async fn remove(
    State(state): State<AppState>,
    scope: ChannelScope,
    enabled: chat_media::http::hooks::WebhookEnabled,
    Path((_, _, message)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let message_sid: MessageSid = parse_sid("MessageSid", &message)?;
    let channel = &scope.channel;
    let not_found = || ApiError::not_found(format!("Message {message_sid} not found"));
    let message = state
        .store
        .get_message(&channel.sid, &message_sid)
        .await?
        .ok_or_else(not_found)?;
    if let Some(permission) = needed_permission(&scope.caller, &message) {
        scope.caller.require(permission)?;
    }
    let hooks = enabled
        .hooks_of(&state, &scope.service, &scope.caller)
        .await?
        .with_channel(&state, &channel.sid)
        .await?;
    let params = |name: &'static str| {
        let mut event = hooks.event(&state, name);
        chat_media::dispatch::message_params(&mut event, &message);
        if let Some(by) = hooks.identity.as_ref() {
            event.param("RemovedBy", by.as_str());
        }
        event
    };
    hooks.pre(&state, &params("onMessageRemove")).await?;
    let events = if hooks.fires_post("onMessageRemoved") {
        let mut event = params("onMessageRemoved");
        let removed = chat_media::model::iso(&chat_media::model::now());
        event.param("DateRemoved", removed);
        hooks.post(event, Some(&channel.sid))
    } else {
        Vec::new()
    };
    let object = state
        .store
        .delete_message_with_events(&message, &events)
        .await
        .map_err(|e| {
            if e.condition_failed_at(0) {
                not_found()
            } else {
                e.into()
            }
        })?;
    if let Some(key) = &object {
        chat_media::cleanup::delete_objects(&state, std::slice::from_ref(key)).await;
    }
    tracing::info!(message = %message.sid, channel = %channel.sid, object = ?object, "message deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
