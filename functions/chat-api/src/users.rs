use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use chat_media::access::{self, AccessError};
use chat_media::http::{
    code, created, page_json, parse_sid, AdminService, ApiResult, Paging, ServiceScope, TwilioForm,
};
use chat_media::limits;
use chat_media::model::{self, User};
use chat_media::permission::RoleType;
use chat_media::sid::{RoleSid, UserSid};
use chat_media::{ApiError, AppState, Identity};
use serde_json::Value;

use crate::{attributes_param, text_param};

pub async fn create(
    State(state): State<AppState>,
    AdminService(service): AdminService,
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
        service.default_service_role_sid,
    )
    .await?;
    let user = User::new(
        UserSid::generate(),
        service.sid,
        identity,
        role_sid,
        friendly_name,
        attributes,
        model::now(),
    );
    state.store.create_user(&user).await.map_err(|e| {
        if e.condition_failed_at(0) {
            ApiError::conflict(
                code::USER_EXISTS,
                format!("User {} already exists", user.identity),
            )
        } else {
            e.into()
        }
    })?;
    Ok(created(user.to_json(state.view())))
}

pub async fn list(
    State(state): State<AppState>,
    AdminService(service): AdminService,
    Paging(req): Paging,
) -> ApiResult<Json<Value>> {
    let page = state.store.list_users(&service.sid, &req).await?;
    let path = format!("/v2/Services/{}/Users", service.sid);
    Ok(page_json(&state, &path, "users", &req, page, |r, ctx| {
        r.to_json(ctx)
    }))
}

/// GET a user by SID or identity: admins, and users fetching themselves. A user
/// asking for anyone else gets the same 403 whether that user exists or not.
pub async fn fetch(
    State(state): State<AppState>,
    scope: ServiceScope,
    Path((_, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let found = access::user(&state, &scope.sid, &user).await;
    let Some(identity) = scope.caller.identity() else {
        return Ok(Json(found?.to_json(state.view())));
    };
    match found {
        Ok(found) if &found.identity == identity => Ok(Json(found.to_json(state.view()))),
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
