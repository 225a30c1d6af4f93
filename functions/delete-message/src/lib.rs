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
use chat_media::access;
use chat_media::error::ApiResult;
use chat_media::http::parse_sid;
use chat_media::permission::Permission;
use chat_media::sid::{MessageSid, ServiceSid};
use chat_media::{ApiError, AppState, Principal};

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

/// DELETE a message: `deleteOwnMessage` for one's own, `deleteAnyMessage` for
/// anyone's; admins always.
pub async fn remove(
    State(state): State<AppState>,
    who: Principal,
    Path((service, channel, message)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let service_sid: ServiceSid = parse_sid("ServiceSid", &service)?;
    let message_sid: MessageSid = parse_sid("MessageSid", &message)?;
    who.require_service(&service_sid)?;
    let channel = access::channel(&state, &service_sid, &channel).await?;
    let membership = access::caller_membership(&state, &who, &channel).await?;
    let not_found = || ApiError::not_found(format!("Message {message_sid} not found"));
    let message = state
        .store
        .get_message(&channel.sid, &message_sid)
        .await?
        .ok_or_else(not_found)?;
    if let Some((member, role)) = &membership {
        let own = message.from == member.identity;
        let allowed = role.has(Permission::DeleteAnyMessage)
            || (own && role.has(Permission::DeleteOwnMessage));
        if !allowed {
            let needed = if own {
                Permission::DeleteOwnMessage
            } else {
                Permission::DeleteAnyMessage
            };
            access::require(role, needed, &member.identity)?;
        }
    }
    let object = state.store.delete_message(&message).await.map_err(|e| {
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
