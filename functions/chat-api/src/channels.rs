use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chat_media::access;
use chat_media::error::{code, ApiResult};
use chat_media::http::{created, parse_sid, Paging, TwilioForm};
use chat_media::model::{self, Channel, ChannelType};
use chat_media::sid::{ChannelSid, ServiceSid};
use chat_media::store::CreateChannelError;
use chat_media::{ApiError, AppState, Identity, Principal};
use serde_json::Value;

use crate::{attributes_param, text_param};

pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(service): Path<String>,
    form: TwilioForm,
) -> ApiResult<Response> {
    who.require_admin()?;
    let service_sid: ServiceSid = parse_sid("ServiceSid", &service)?;
    let unique_name = form
        .get("UniqueName")
        .map(|n| {
            if n.is_empty() {
                return Err(ApiError::invalid("UniqueName", "must not be empty"));
            }
            if ChannelSid::parse(n).is_ok() {
                return Err(ApiError::invalid(
                    "UniqueName",
                    "must not look like a channel SID",
                ));
            }
            if n.contains('/') {
                return Err(ApiError::invalid("UniqueName", "must not contain '/'"));
            }
            text_param("UniqueName", n, 256)
        })
        .transpose()?;
    let friendly_name = form
        .get("FriendlyName")
        .map(|n| text_param("FriendlyName", n, 256))
        .transpose()?;
    let channel_type = form
        .parsed::<ChannelType>("Type")?
        .unwrap_or(ChannelType::Public);
    let attributes = attributes_param(form.get("Attributes"))?;
    let created_by = match form.get("CreatedBy") {
        Some(i) => Identity::parse(i).map_err(|e| ApiError::invalid("CreatedBy", e))?,
        None => Identity::system(),
    };
    access::service(&state, &who, &service_sid).await?;
    let now = model::now();
    let channel = Channel {
        sid: ChannelSid::generate(),
        service_sid,
        friendly_name,
        unique_name,
        attributes,
        channel_type,
        created_by,
        members_count: 0,
        messages_count: 0,
        next_message_index: 0,
        deleting: false,
        date_created: now,
        date_updated: now,
    };
    state
        .store
        .create_channel(&channel)
        .await
        .map_err(|e| match e {
            CreateChannelError::UniqueNameTaken => ApiError::conflict(
                code::CHANNEL_UNIQUE_NAME_EXISTS,
                format!(
                    "Channel with unique name {} already exists",
                    channel.unique_name.as_deref().unwrap_or_default()
                ),
            ),
            CreateChannelError::ServiceGone => {
                ApiError::not_found(format!("Service {} not found", channel.service_sid))
            }
            CreateChannelError::Store(e) => e.into(),
        })?;
    Ok(created(channel.to_json(state.view())))
}

pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(service): Path<String>,
    Paging(req): Paging,
) -> ApiResult<Json<Value>> {
    let service = access::admin_service(&state, &who, &service).await?;
    let page = state.store.list_channels(&service.sid, &req).await?;
    let path = format!("/v2/Services/{}/Channels", service.sid);
    Ok(state.page_json(&path, "channels", &req, page, |r, ctx| r.to_json(ctx)))
}

/// GET a channel: admins, and users who are members of it.
pub async fn fetch(
    State(state): State<AppState>,
    who: Principal,
    Path((service, channel)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let service_sid: ServiceSid = parse_sid("ServiceSid", &service)?;
    who.require_service(&service_sid)?;
    let channel = access::channel(&state, &service_sid, &channel).await?;
    access::caller_membership(&state, &who, &channel).await?;
    Ok(Json(channel.to_json(state.view())))
}

/// DELETE a channel with its members, messages and media.
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path((service, channel)): Path<(String, String)>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let service_sid: ServiceSid = parse_sid("ServiceSid", &service)?;
    let channel = access::channel(&state, &service_sid, &channel).await?;
    let pending = state.store.delete_channel(&channel).await?;
    chat_media::cleanup::delete_objects(&state, &pending).await;
    tracing::info!(channel = %channel.sid, objects = pending.len(), "channel deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
