use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chat_media::access;
use chat_media::dispatch::{self, Hooks};
use chat_media::http::hooks::WebhookEnabled;
use chat_media::http::PublicBase;
use chat_media::http::{
    code, created, page_json, AdminChannel, ApiResult, Caller, ChannelScope, Paging, QueryForm,
    TwilioForm,
};
use chat_media::model::{self, Member};
use chat_media::permission::RoleType;
use chat_media::sid::{MemberSid, RoleSid};
use chat_media::store::{AddMemberError, StoreError, MAX_IDENTITY_FILTER};
use chat_media::{ApiError, AppState, Identity};
use serde_json::Value;

use crate::attributes_param;

/// POST .../Members: adds an identity with a channel role (default: the service's).
pub async fn add(
    State(state): State<AppState>,
    base: PublicBase,
    AdminChannel { service, channel }: AdminChannel,
    enabled: WebhookEnabled,
    form: TwilioForm,
) -> ApiResult<Response> {
    let identity = Identity::parse(form.required("Identity")?)
        .map_err(|e| ApiError::invalid("Identity", e))?;
    let role_sid: Option<RoleSid> = form
        .get("RoleSid")
        .map(|r| chat_media::http::parse_sid("RoleSid", r))
        .transpose()?;
    let attributes = attributes_param(form.get("Attributes"))?;
    let role_sid = access::role_or_default(
        &state,
        &service.sid,
        "RoleSid",
        role_sid.as_ref(),
        RoleType::Channel,
        service.default_channel_role_sid.clone(),
    )
    .await?;
    let mut member = Member::new(
        MemberSid::generate(),
        &channel,
        identity,
        role_sid,
        attributes,
        model::now(),
    );
    let limits = service.chat.limits;
    let hooks = enabled
        .admin_hooks(&service)
        .with_channel(&state, &channel.sid)
        .await?;
    let mut event = hooks.event(&state, "onMemberAdd");
    dispatch::member_params(&mut event, &member, false);
    event.param("Reason", "ADDED");
    if let chat_media::webhook::Proceed::Modified(map) = hooks.pre(&state, &event).await? {
        if let Some(a) = chat_media::webhook::modified_text(&map, "attributes") {
            member.attributes = attributes_param(Some(&a)).map_err(|e| {
                chat_media::webhook::Refused::InvalidModification {
                    event: "onMemberAdd",
                    field: "attributes",
                    why: e.message,
                }
            })?;
        }
    }
    let events = post_member(&state, &hooks, "onMemberAdded", &member, "ADDED");
    state
        .store
        .add_member_with_events(&member, limits, &events)
        .await
        .map_err(|e| match e {
            AddMemberError::AlreadyMember => ApiError::conflict(
                code::MEMBER_EXISTS,
                format!(
                    "{} is already a member of channel {}",
                    member.identity, channel.sid
                ),
            ),
            AddMemberError::ChannelGone => {
                ApiError::not_found(format!("Channel {} not found", channel.sid))
            }
            AddMemberError::ChannelDeleting => {
                ApiError::being_deleted(format!("Channel {}", channel.sid))
            }
            AddMemberError::ChannelFull(max) => ApiError::new(
                StatusCode::FORBIDDEN,
                code::CHANNEL_MEMBER_LIMIT,
                format!(
                    "Channel {} has {max} members, the service's Limits.ChannelMembers",
                    channel.sid
                ),
            ),
            AddMemberError::UserChannelsFull(max) => ApiError::new(
                StatusCode::FORBIDDEN,
                code::USER_CHANNEL_LIMIT,
                format!(
                    "{} is a member of {max} channels, the service's Limits.UserChannels",
                    member.identity
                ),
            ),
            AddMemberError::Store(e) => e.into(),
        })?;
    Ok(created(member.to_json(state.view_at(base.as_str()))))
}

/// Lists members: admins, and members of the channel (reading a channel includes who is in it).
pub async fn list(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ChannelScope,
    QueryForm(query): QueryForm,
    Paging(mut req): Paging,
) -> ApiResult<Json<Value>> {
    let identities = query
        .all("Identity")
        .into_iter()
        .map(|i| Identity::parse(i).map_err(|e| ApiError::invalid("Identity", e)))
        .collect::<ApiResult<Vec<_>>>()?;
    if identities.len() > MAX_IDENTITY_FILTER {
        return Err(ApiError::invalid(
            "Identity",
            format!("at most {MAX_IDENTITY_FILTER} identities per list"),
        ));
    }
    for identity in &identities {
        req.filter("Identity", identity.as_str());
    }
    let page = state
        .store
        .list_members(&scope.channel.sid, &req, &identities)
        .await?;
    let path = format!("{}/Members", scope.channel.path());
    Ok(page_json(
        &state,
        &base,
        &path,
        "members",
        &req,
        page,
        |r, ctx| r.to_json(ctx),
    ))
}

/// GET a member: admins, and members fetching their own membership. A caller who
/// is not a member learns nothing about the channel's members.
pub async fn fetch(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ChannelScope,
    Path((_, _, member)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let member = match &scope.caller {
        Caller::Admin => access::member(&state, &scope.channel, &member).await?,
        Caller::Member(own, _) => {
            if own.sid.as_str() != member && own.identity.as_str() != member {
                return Err(ApiError::forbidden(
                    "Users may only read their own membership",
                ));
            }
            own.as_ref().clone()
        }
    };
    Ok(Json(member.to_json(state.view_at(base.as_str()))))
}

pub async fn remove(
    State(state): State<AppState>,
    AdminChannel { service, channel }: AdminChannel,
    enabled: WebhookEnabled,
    Path((_, _, member)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let member = access::member(&state, &channel, &member).await?;
    let hooks = enabled
        .admin_hooks(&service)
        .with_channel(&state, &channel.sid)
        .await?;
    let mut event = hooks.event(&state, "onMemberRemove");
    dispatch::member_params(&mut event, &member, true);
    event.param("Reason", "REMOVED");
    hooks.pre(&state, &event).await?;
    let events = post_member(&state, &hooks, "onMemberRemoved", &member, "REMOVED");
    state
        .store
        .remove_member_with_events(&channel, &member, &events)
        .await
        .map_err(|e| match e {
            e if e.condition_failed_at(0) => {
                ApiError::not_found(format!("Member {} not found", member.sid))
            }
            StoreError::Cancelled(_) => {
                ApiError::conflict(code::CONFLICT, "The channel changed meanwhile; try again")
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A member post-event for the outbox, when it fires; `reason` is Twilio's
/// `Reason` (`ADDED`, `REMOVED`).
fn post_member(
    state: &AppState,
    hooks: &Hooks,
    name: &'static str,
    member: &Member,
    reason: &str,
) -> Vec<model::OutboxEvent> {
    if !hooks.fires_post(name) {
        return Vec::new();
    }
    let mut event = hooks.event(state, name);
    dispatch::member_params(&mut event, member, true);
    event.param("Reason", reason);
    hooks
        .post(event, Some(&member.channel_sid))
        .into_iter()
        .collect()
}
