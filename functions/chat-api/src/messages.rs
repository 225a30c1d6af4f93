use axum::extract::{Path, Query, State};
use axum::Json;
use chat_media::access;
use chat_media::error::ApiResult;
use chat_media::http::{parse_sid, Paging};
use chat_media::sid::{MessageSid, ServiceSid};
use chat_media::{ApiError, AppState, Principal};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
pub struct Order {
    #[serde(rename = "Order")]
    order: Option<String>,
}

/// Messages in index order (`Order=desc` for newest first): admins and channel members.
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path((service, channel)): Path<(String, String)>,
    Query(order): Query<Order>,
    Paging(req): Paging,
) -> ApiResult<Json<Value>> {
    let service_sid: ServiceSid = parse_sid("ServiceSid", &service)?;
    who.require_service(&service_sid)?;
    let forward = match order.order.as_deref() {
        None | Some("asc") => true,
        Some("desc") => false,
        Some(other) => {
            return Err(ApiError::invalid(
                "Order",
                format!("'{other}' is not asc or desc"),
            ))
        }
    };
    let channel = access::channel(&state, &service_sid, &channel).await?;
    access::caller_membership(&state, &who, &channel).await?;
    let page = state
        .store
        .list_messages(&channel.sid, &req, forward)
        .await?;
    let path = format!(
        "/v2/Services/{service_sid}/Channels/{}/Messages",
        channel.sid
    );
    Ok(state.page_json(&path, "messages", &req, page, |r, ctx| r.to_json(ctx)))
}

pub async fn fetch(
    State(state): State<AppState>,
    who: Principal,
    Path((service, channel, message)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let service_sid: ServiceSid = parse_sid("ServiceSid", &service)?;
    let message_sid: MessageSid = parse_sid("MessageSid", &message)?;
    who.require_service(&service_sid)?;
    let channel = access::channel(&state, &service_sid, &channel).await?;
    access::caller_membership(&state, &who, &channel).await?;
    let message = state
        .store
        .get_message(&channel.sid, &message_sid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Message {message_sid} not found")))?;
    Ok(Json(message.to_json(state.view())))
}
