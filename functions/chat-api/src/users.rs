use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chat_media::access::{self, AccessError};
use chat_media::dispatch::{self, Hooks};
use chat_media::http::hooks::WebhookEnabled;
use chat_media::http::PublicBase;
use chat_media::http::{
    code, created, page_json, parse_sid, AdminService, ApiResult, Paging, ServiceScope, TwilioForm,
};
use chat_media::limits;
use chat_media::model::{self, Channel, Member, User, ViewCtx};
use chat_media::permission::Permission;
use chat_media::permission::RoleType;
use chat_media::sid::{RoleSid, UserSid};
use chat_media::store::Page;
use chat_media::{ApiError, AppState, Identity};
use futures::future::join_all;
use serde_json::{json, Value};

use crate::{attributes_param, attributes_update, text_param};

pub async fn create(
    State(state): State<AppState>,
    base: PublicBase,
    AdminService(service): AdminService,
    enabled: WebhookEnabled,
    form: TwilioForm,
) -> ApiResult<Response> {
    let identity = Identity::parse(form.required("Identity")?)
        .map_err(|e| ApiError::invalid("Identity", e))?;
    let role_sid: Option<RoleSid> = form
        .get("RoleSid")
        .map(|r| parse_sid("RoleSid", r))
        .transpose()?;
    let friendly_name = form
        .get("FriendlyName")
        .map(|n| text_param("FriendlyName", n, limits::FRIENDLY_NAME))
        .transpose()?;
    let attributes = attributes_param(form.get("Attributes"))?;
    let role_sid = access::role_or_default(
        &state,
        &service.sid,
        "RoleSid",
        role_sid.as_ref(),
        RoleType::Deployment,
        service.default_service_role_sid.clone(),
    )
    .await?;
    let hooks = enabled.admin_hooks(&service);
    let user = User::new(
        UserSid::generate(),
        service.sid,
        identity,
        role_sid,
        friendly_name,
        attributes,
        model::now(),
    );
    // Twilio has no pre-event for a new user: only `onUserAdded`.
    let events = post_user(&state, &hooks, "onUserAdded", &user);
    state
        .store
        .create_user_with_events(&user, &events)
        .await
        .map_err(|e| {
            if e.condition_failed_at(0) {
                ApiError::conflict(
                    code::USER_EXISTS,
                    format!("User {} already exists", user.identity),
                )
            } else {
                e.into()
            }
        })?;
    Ok(created(user.to_json(state.view_at(base.as_str()))))
}

pub async fn list(
    State(state): State<AppState>,
    base: PublicBase,
    AdminService(service): AdminService,
    Paging(req): Paging,
) -> ApiResult<Json<Value>> {
    let page = state.store.list_users(&service.sid, &req).await?;
    let path = format!("/v2/Services/{}/Users", service.sid);
    Ok(page_json(
        &state,
        &base,
        &path,
        "users",
        &req,
        page,
        |r, ctx| r.to_json(ctx),
    ))
}

/// GET a user by SID or identity: admins, and users fetching themselves. A user
/// asking for anyone else gets the same 403 whether that user exists or not.
pub async fn fetch(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ServiceScope,
    Path((_, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let found = access::user(&state, &scope.sid, &user).await;
    let Some(identity) = scope.caller.identity() else {
        return Ok(Json(found?.to_json(state.view_at(base.as_str()))));
    };
    match found {
        Ok(found) if &found.identity == identity => {
            Ok(Json(found.to_json(state.view_at(base.as_str()))))
        }
        // Their own identity without a record: nothing about anyone else.
        Err(AccessError::UserNotFound(_)) if user == identity.as_str() => {
            Err(AccessError::UserNotFound(user).into())
        }
        Err(e @ AccessError::Store(_)) => Err(e.into()),
        _ => Err(ApiError::forbidden(
            "Users may only read their own user record",
        )),
    }
}

/// The user a caller addresses: admins any; a user only themselves (anyone else
/// gets the same 403 whether that user exists or not).
async fn addressed_user(state: &AppState, scope: &ServiceScope, user: &str) -> ApiResult<User> {
    let found = access::user(state, &scope.sid, user).await;
    let Some(identity) = scope.caller.identity() else {
        return Ok(found?);
    };
    match found {
        Ok(found) if &found.identity == identity => Ok(found),
        Err(AccessError::UserNotFound(_)) if user == identity.as_str() => {
            Err(AccessError::UserNotFound(user.to_owned()).into())
        }
        Err(e @ AccessError::Store(_)) => Err(e.into()),
        _ => Err(ApiError::forbidden(
            "Users may only act on their own user record",
        )),
    }
}

/// POST a user: Twilio's user update (`RoleSid`, `Attributes`, `FriendlyName`).
/// Admins change anything; a user changes its own `FriendlyName` and
/// `Attributes` with `editOwnUserInfo` in its service role; `RoleSid` is an
/// admin's.
pub async fn update(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ServiceScope,
    enabled: WebhookEnabled,
    Path((_, user)): Path<(String, String)>,
    form: TwilioForm,
) -> ApiResult<Json<Value>> {
    let role_sid: Option<RoleSid> = form
        .get("RoleSid")
        .map(|r| parse_sid("RoleSid", r))
        .transpose()?;
    let friendly_name = form
        .get("FriendlyName")
        .map(|n| text_param("FriendlyName", n, limits::FRIENDLY_NAME))
        .transpose()?;
    let attributes = attributes_update(form.get("Attributes"))?;
    let mut read = addressed_user(&state, &scope, &user).await?;
    if scope.caller.identity().is_some() {
        if role_sid.is_some() {
            return Err(ApiError::role_refused(
                "Only an admin may change a user's role",
            ));
        }
        let role = state.store.get_role(&scope.sid, &read.role_sid).await?;
        if !role.is_some_and(|r| r.has(Permission::EditOwnUserInfo)) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                code::USER_UNAUTHORIZED,
                format!(
                    "{} lacks the editOwnUserInfo permission (role {})",
                    read.identity, read.role_sid
                ),
            ));
        }
    }
    if let Some(sid) = &role_sid {
        access::role_of_type(&state, &scope.sid, "RoleSid", sid, RoleType::Deployment).await?;
    }
    let hooks = enabled
        .hooks(&state, &scope.sid, scope.caller.identity())
        .await?;
    // The hook's friendly name and attributes, decided once and kept across retries.
    let mut hooked: Option<(Option<String>, String)> = None;
    for _ in 0..crate::channels::MAX_ATTEMPTS {
        let mut updated = read.clone();
        if let Some(r) = &role_sid {
            updated.role_sid = r.clone();
        }
        if let Some(n) = &friendly_name {
            updated.friendly_name = Some(n.clone());
        }
        if let Some(a) = &attributes {
            updated.attributes = a.clone();
        }
        updated.date_updated = model::now();
        match &hooked {
            None => {
                pre_user_update(&state, &hooks, &mut updated).await?;
                hooked = Some((updated.friendly_name.clone(), updated.attributes.clone()));
            }
            Some((name, attributes)) => {
                updated.friendly_name = name.clone();
                updated.attributes = attributes.clone();
            }
        }
        let events = post_user(&state, &hooks, "onUserUpdated", &updated);
        match state
            .store
            .replace_user_with_events(&updated, &read, &events)
            .await
        {
            Ok(()) => return Ok(Json(updated.to_json(state.view_at(base.as_str())))),
            Err(e) if e.condition_failed_at(0) || e.is_conflict() => {
                read = addressed_user(&state, &scope, updated.sid.as_str()).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        code::CONFLICT,
        "The user kept changing; try again",
    ))
}

/// DELETE a user (admins), with its memberships: each goes with its pointers and
/// counts in one transaction, then the user. A delete interrupted between them
/// leaves the user with fewer memberships, never a membership without its
/// counts; repeating the delete finishes it.
pub async fn delete(
    State(state): State<AppState>,
    AdminService(service): AdminService,
    Path((_, user)): Path<(String, String)>,
) -> ApiResult<Response> {
    let user = access::user(&state, &service.sid, &user).await?;
    let memberships = state
        .store
        .remove_user_memberships(&service.sid, &user.identity)
        .await?;
    tracing::info!(user = %user.sid, memberships, "user's memberships removed");
    state.store.delete_user(&user).await.map_err(|e| {
        if e.condition_failed_at(0) {
            ApiError::not_found(format!("User {} not found", user.sid))
        } else {
            e.into()
        }
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// GET …/Users/{UserSid}/Channels: the channels the user is a member of (Twilio's
/// User Channel resource), for admins and the user itself.
pub async fn channels(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ServiceScope,
    Path((_, user)): Path<(String, String)>,
    Paging(req): Paging,
) -> ApiResult<Json<Value>> {
    let user = addressed_user(&state, &scope, &user).await?;
    let page = state
        .store
        .list_user_channels(&scope.sid, &user.identity, &req)
        .await?;
    // Each membership with its channel, read together; one removed meanwhile is skipped.
    let rows = join_all(page.items.iter().map(|r| async {
        let channel = state.store.find_channel(&r.channel_sid).await?;
        let member = state
            .store
            .get_member(&r.channel_sid, &user.identity)
            .await?;
        Ok::<_, ApiError>(channel.filter(|c| !c.deleting).zip(member))
    }))
    .await
    .into_iter()
    .collect::<ApiResult<Vec<_>>>()?;
    let page = Page {
        items: rows.into_iter().flatten().collect(),
        next_token: page.next_token,
    };
    let path = format!("/v2/Services/{}/Users/{}/Channels", scope.sid, user.sid);
    let user_sid = user.sid.clone();
    Ok(page_json(
        &state,
        &base,
        &path,
        "channels",
        &req,
        page,
        |(channel, member), ctx| user_channel_json(ctx, &user_sid, channel, member),
    ))
}

/// Twilio's User Channel JSON.
fn user_channel_json(
    ctx: ViewCtx<'_>,
    user: &UserSid,
    channel: &Channel,
    member: &Member,
) -> Value {
    let channel_url = ctx.url(&channel.path());
    let unread = member
        .last_consumed_message_index
        .map(|i| channel.next_message_index.saturating_sub(i + 1));
    json!({
        "account_sid": ctx.account_sid,
        "service_sid": channel.service_sid,
        "channel_sid": channel.sid,
        "user_sid": user,
        "member_sid": member.sid,
        "status": "joined",
        "last_consumed_message_index": member.last_consumed_message_index,
        "unread_messages_count": unread,
        "notification_level": "default",
        "url": ctx.url(&format!(
            "/v2/Services/{}/Users/{}/Channels/{}",
            channel.service_sid, user, channel.sid
        )),
        "links": {
            "channel": channel_url,
            "member": format!("{channel_url}/Members/{}", member.sid),
        },
    })
}

/// Fires `onUserUpdate` and applies what the hook changed (`friendlyName`,
/// `attributes`), checked as strictly as the caller's own values.
async fn pre_user_update(state: &AppState, hooks: &Hooks, user: &mut User) -> ApiResult<()> {
    use chat_media::webhook::{self, Proceed, Refused};
    const NAME: &str = "onUserUpdate";
    let mut event = hooks.event(state, NAME);
    dispatch::user_params(&mut event, user);
    let Proceed::Modified(map) = hooks.pre(state, &event).await? else {
        return Ok(());
    };
    let invalid = |field: &'static str, e: ApiError| Refused::InvalidModification {
        event: NAME,
        field,
        why: e.message,
    };
    if let Some(n) = ["friendlyName", "friendly_name"]
        .iter()
        .find_map(|f| webhook::modified_text(&map, f))
    {
        user.friendly_name = Some(
            text_param("FriendlyName", &n, limits::FRIENDLY_NAME)
                .map_err(|e| invalid("friendlyName", e))?,
        );
    }
    if let Some(a) = webhook::modified_text(&map, "attributes") {
        user.attributes = attributes_param(Some(&a)).map_err(|e| invalid("attributes", e))?;
    }
    Ok(())
}

/// A user post-event for the outbox, when it fires.
fn post_user(
    state: &AppState,
    hooks: &Hooks,
    name: &'static str,
    user: &User,
) -> Vec<model::OutboxEvent> {
    if !hooks.fires_post(name) {
        return Vec::new();
    }
    let mut event = hooks.event(state, name);
    dispatch::user_params(&mut event, user);
    hooks.post(event, None).into_iter().collect()
}
